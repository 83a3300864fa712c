"""Encryption of provider API keys at rest (Fernet, with key rotation), and key masking.

``ROUTERBOT_SECRET_KEY`` holds one or more Fernet keys, comma-separated: the first encrypts,
all of them decrypt. To rotate, put a new key first, keep the old ones after it, run the
rotation (``storage.stores.rotate_keys``), then drop the old keys.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

__all__ = [
    "KeyDecryptError",
    "KeyVault",
    "generate_key",
    "load_or_create_key_file",
    "mask_key",
]

#: Recognisable, non-secret key prefixes, longest first so ``sk-or-v1-`` wins over ``sk-``.
KNOWN_KEY_PREFIXES: tuple[str, ...] = (
    "sk-or-v1-",
    "sk-proj-",
    "sk-ant-",
    "sk-or-",
    "fw_",
    "sk-",
)

ELLIPSIS = "…"


class KeyDecryptError(Exception):
    """A stored key cannot be decrypted with the configured ``ROUTERBOT_SECRET_KEY``."""

    def __init__(self) -> None:
        super().__init__(
            "A stored API key cannot be decrypted: ROUTERBOT_SECRET_KEY does not match the key "
            "it was encrypted with. Restore the previous key, or list it after the new one "
            "(comma-separated) while rotating; otherwise set the API key again."
        )


def generate_key() -> str:
    """A fresh Fernet key, as text suitable for ``ROUTERBOT_SECRET_KEY``."""
    return Fernet.generate_key().decode("ascii")


class KeyVault:
    """Encrypts and decrypts secrets with a list of Fernet keys (the first one encrypts)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("ROUTERBOT_SECRET_KEY is empty: set at least one Fernet key.")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                # ``from None``: the original error may carry the key material in its context.
                raise ValueError(
                    f"ROUTERBOT_SECRET_KEY: key {position} of {len(keys)} is not a valid Fernet "
                    "key (32 url-safe base64-encoded bytes); generate one with "
                    "`python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`."
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_config(cls, keys: str) -> KeyVault:
        """Parse ``ROUTERBOT_SECRET_KEY``: comma-separated keys, blanks around them ignored."""
        parts = [part.strip() for part in keys.split(",")]
        # A trailing comma is a harmless typo; an empty key in the middle is a mistake to report.
        while parts and not parts[-1]:
            parts.pop()
        return cls(parts)

    #: Also available as a module function; here for callers that only import the class.
    generate_key = staticmethod(generate_key)

    def __repr__(self) -> str:
        return f"KeyVault(<{self.key_count} key(s)>)"

    def encrypt(self, secret: SecretStr) -> bytes:
        return self._fernet.encrypt(secret.get_secret_value().encode("utf-8"))

    def decrypt(self, token: bytes) -> SecretStr:
        try:
            plain = self._fernet.decrypt(token)
        except InvalidToken:
            raise KeyDecryptError() from None
        return SecretStr(plain.decode("utf-8"))

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt ``token`` with the first key (it may have been made with any key)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise KeyDecryptError() from None


def mask_key(key: str) -> str:
    """A recognisable but useless form of an API key: ``sk-or-v1-…9f3a``.

    A known prefix is kept (it is not secret); of the rest, at most the last 4 characters are
    shown, fewer for short keys, none for very short ones.
    """
    key = key.strip()
    prefix = next((p for p in KNOWN_KEY_PREFIXES if key.startswith(p)), "")
    body = key[len(prefix) :]
    if len(body) >= 16:
        tail = body[-4:]
    elif len(body) >= 8:
        tail = body[-2:]
    else:
        tail = ""
    return f"{prefix}{ELLIPSIS}{tail}"


def load_or_create_key_file(path: Path) -> tuple[str, bool]:
    """Read the console's Fernet key from ``path``, creating it (mode 0600) if absent.

    Returns ``(key, created)``. Creation is atomic: the key is written to a private temporary
    file and hard-linked into place, so two consoles starting at once agree on one key and
    neither ever reads a half-written file.
    """
    try:
        return _read_key_file(path), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = generate_key()
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".secret-", suffix=".tmp")
    try:
        # mkstemp already creates the file 0600; fchmod guards against unusual umask handling.
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return _read_key_file(path), False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return key, True


def _read_key_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # A key readable by others is as good as published; tighten rather than refuse.
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    raw = path.read_bytes()
    try:
        key = raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} does not hold a valid Fernet key (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start} is not ASCII)"
        ) from None
    if not key:
        raise ValueError(f"{path} is empty")
    return key
