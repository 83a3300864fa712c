"""Syncs the command tree only when it changed (Discord rate-limits command writes).

The hash of the exact JSON discord.py would send is kept in a small file under
ROUTERBOT_DATA_DIR, per application and API base. A file rather than a database row: it
needs no schema change, and the worst case, a fresh host syncing once more, is harmless
because the bulk overwrite is idempotent. Only the process running shard 0 syncs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger(__name__)

STATE_FILE = "discord-commands.json"


def tree_digest(tree: app_commands.CommandTree[Any]) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file


async def sync_if_changed(
    tree: app_commands.CommandTree[Any], *, application_id: int, api_base: str, data_dir: Path
) -> bool:
    """Sync the global commands when their JSON differs from the last sync; True if synced."""
    path = data_dir / STATE_FILE
    key = f"{api_base}#{application_id}"
    digest = tree_digest(tree)
    state = await asyncio.to_thread(_read, path)
    if state.get(key) == digest:
        log.info("application commands unchanged; not syncing")
        return False
    try:
        synced = await tree.sync()
    except discord.HTTPException as exc:
        # The commands registered last time keep working; try again on the next start.
        log.error("could not sync application commands: %s", exc)
        return False
    state[key] = digest
    await asyncio.to_thread(_write, path, state)
    log.info("synced %d application commands", len(synced))
    return True
