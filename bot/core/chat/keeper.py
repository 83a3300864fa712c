"""One task per process that keeps its leases and settles what dead processes left behind.

Every renewal interval (``ROUTERBOT_LEASE_RENEW_SECONDS``) it renews this process's leases
while chats run (``FlightLog.renew``: one transaction, none when idle) and starts a sweep
(``Settler.sweep``) unless one is still running; a sweep also runs at start, so a console
settles at once what a console killed before it left. At shutdown, after the front-end has
finished or cancelled its chats (a cancelled chat is recorded, its cost left to settle), one
last sweep settles them from the provider's record if it can within ``grace``; what is left
is settled by the next process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.core.chat.flights import FlightLog
from bot.core.chat.settle import Settler

log = logging.getLogger(__name__)

#: Seconds a shutdown waits for its last sweep (then the next process settles the rest).
SHUTDOWN_SWEEP_SECONDS = 10.0


class LeaseKeeper:
    def __init__(self, flights: FlightLog, settler: Settler, *, every: float) -> None:
        self.flights = flights
        self.settler = settler
        self.every = every
        self._task: asyncio.Task[None] | None = None
        self._sweep: asyncio.Task[int] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start the loop (once: several front-ends in one process share it)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="lease keeper")

    async def _run(self) -> None:
        while True:
            try:
                await self.flights.renew()
            except Exception:
                log.warning("could not renew this process's leases", exc_info=True)
            if self._sweep is None or self._sweep.done():
                self._sweep = asyncio.create_task(self._sweep_once(), name="settle chats")
            await asyncio.sleep(self.every)

    async def _sweep_once(self) -> int:
        try:
            return await self.settler.sweep()
        except Exception:
            log.warning("could not look for chats to settle", exc_info=True)
            return 0

    async def sweep_now(self) -> int:
        """One sweep, awaited (after the running one, if any)."""
        if self._sweep is not None and not self._sweep.done():
            await asyncio.wait({self._sweep})
        return await self._sweep_once()

    async def aclose(self, grace: float = SHUTDOWN_SWEEP_SECONDS) -> None:
        """Stop; settle this process's cancelled chats (and any other due) within ``grace``."""
        was_running = self._task is not None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flights.aclose()
        if not was_running:
            return
        try:
            async with asyncio.timeout(grace):
                await self.sweep_now()
        except TimeoutError:
            log.warning("left chats to settle to the next process (shutdown)")
        if self._sweep is not None and not self._sweep.done():
            self._sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep
