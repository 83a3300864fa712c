"""The terminal front-end: the full command grammar at a prompt or line by line from stdin.

Lines that start with ``/`` are commands; any other line continues the current conversation
(or starts one with the default model). ``--user``, ``--channel`` and ``--member`` say who types
where, so every rule (limits on people, channel policies, access) can be tried from a terminal;
notices meant for others (a direct message to an admin) are printed, marked as such.
Nothing typed is echoed back, so a key pasted with ``/apikey set`` stays only where the
terminal itself showed it. This module must not import slack_bolt or discord: the console
starts fast and works without them.

SIGTERM while a command runs cancels it (a chat records itself as it unwinds, its cost
settled from the provider's record on the way out) and ends the console with status 0; at
the prompt, with nothing in flight, SIGTERM ends the process at once, as by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import importlib
import io
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, TextIO

from bot.console_files import read_files, split_files
from bot.core import commands as c
from bot.core.charts import text_chart
from bot.core.chat.sources import Source
from bot.core.errors import UserFacingError
from bot.core.replies import (
    ChatCompleted,
    ChatDelta,
    ChatFailed,
    ChatStarted,
    CostsReply,
    ErrorReply,
    Invocation,
    KeyPromptReply,
    Notice,
    Reply,
    TextReply,
)
from bot.core.text import clean_text

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.ports import ConversationRef
    from bot.core.pricing import ModelSettings
    from bot.runtime import Runtime

PROMPT = "routerbot> "
#: The console's channel when ``--channel`` is not given.
DEFAULT_CHANNEL = "console"


class Console:
    def __init__(
        self,
        runtime: Runtime,
        *,
        workspace: str,
        user: str,
        out: TextIO,
        interactive: bool,
        channel: str = DEFAULT_CHANNEL,
        member: bool = False,
    ) -> None:
        self.runtime = runtime
        self.out = out
        self.interactive = interactive
        # The operator of a console is its workspace's admin, unless --member says otherwise.
        self.ctx = Invocation(
            platform="console",
            workspace_id=workspace,
            workspace_name=workspace,
            channel_id=channel,
            user_id=user,
            is_admin=not member,
            format_channel=lambda c: f"#{c}",
        )
        self.conversation: ConversationRef | None = None
        #: Notices arrive before the answer ends; they are printed after it.
        self._notices: list[Notice] = []
        #: The conversation the last answer was recorded in, looked up only when a follow-up
        #: continues it: a lookup after every answer would be a database transaction per chat.
        self._last_conversation_id: int | None = None

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    async def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        if line.lower() in ("/quit", "/exit"):
            raise EOFError
        if not line.startswith("/"):
            await self._follow_up(line)
            return
        line, paths = split_files(line)
        try:
            command = c.parse(line)
            if isinstance(command, c.Chat) and paths:
                files = await read_files(paths)
                command = dataclasses.replace(command, attachments=files)
        except UserFacingError as exc:
            self.write(f"{exc.message}\n")
            return
        if isinstance(command, c.Chat):
            self.conversation, self._last_conversation_id = None, None
        await self._render(self.runtime.dispatcher.run(self.ctx, command))

    async def _follow_up(self, text: str) -> None:
        dispatcher = self.runtime.dispatcher
        if self._last_conversation_id is not None:
            conversation_id, self._last_conversation_id = self._last_conversation_id, None
            self.conversation = await dispatcher.conversation(self.ctx, conversation_id)
        await self._render(dispatcher.follow_up(self.ctx, self.conversation, text))

    async def _render(self, replies: object) -> None:
        streamed = False
        async for reply in replies:  # type: ignore[attr-defined]
            streamed = await self._render_one(reply, streamed)
        for notice in self._notices:
            self.write(f"{self._notice_text(notice)}\n")
        self._notices.clear()

    def _notice_text(self, notice: Notice) -> str:
        if notice.audience == "direct":
            return f"(direct message to {notice.user_id}) {notice.text}"
        if notice.audience == "asker":
            return f"(only you see this) {notice.text}"
        return f"(to #{self.ctx.channel_id}) {notice.text}"

    async def _render_one(self, reply: Reply, streamed: bool) -> bool:
        match reply:
            case ChatStarted():
                return False
            case ChatDelta(text=text):
                self.write(text)
                return True
            case ChatCompleted():
                if not streamed and reply.text:
                    self.write(reply.text)
                if reply.text:
                    self.write("\n")
                for notice in reply.notices:
                    self.write(f"{notice}\n")
                self.write(source_lines(reply.sources))
                self.write(f"— {reply.footer}\n")
                if reply.conversation_id:
                    self._last_conversation_id = reply.conversation_id
                return False
            case ChatFailed(text=text) | ErrorReply(text=text):
                if streamed:
                    self.write("\n")
                self.write(f"{text}\n")
                return False
            case CostsReply(text=text, chart=chart) if chart is not None:
                self.write(f"{text}\n\n{text_chart(chart)}\n")
                return False
            case TextReply(text=text):
                self.write(f"{text}\n")
                return False
            case KeyPromptReply(provider=provider):
                await self._prompt_key(provider)
                return False
            case Notice():
                self._notices.append(reply)
                return streamed
        return streamed

    async def _prompt_key(self, provider: str | None) -> None:
        if not self.interactive:
            self.write("Use /apikey set <key> to set the key.\n")
            return
        key = await asyncio.to_thread(getpass.getpass, "API key (input hidden): ")
        if not key.strip():
            self.write("No key entered; nothing was stored.\n")
            return
        from pydantic import SecretStr

        command = c.ApiKeySet(SecretStr(key.strip()), provider)
        await self._render(self.runtime.dispatcher.run(self.ctx, command))


async def read_line(stdin: TextIO, interactive: bool) -> str | None:
    """The next line typed, cleaned (:func:`~bot.core.text.clean_text`); None at the end.

    Piped input is read as bytes, so a byte that is not UTF-8 becomes U+FFFD here instead of
    an exception, or a surrogate that no HTTP client can encode, further in.
    """
    if interactive:
        return clean_text(await asyncio.to_thread(input, PROMPT))
    buffer: BinaryIO | None = getattr(stdin, "buffer", None)
    raw: str | bytes = await asyncio.to_thread(
        buffer.readline if buffer is not None else stdin.readline
    )
    return clean_text(raw) if raw else None


def source_lines(sources: tuple[Source, ...]) -> str:
    """Sources as plain lines: a terminal shows links as they are."""
    if not sources:
        return ""
    listed = "".join(f"  {n}. {s.title} — {s.url}\n" for n, s in enumerate(sources, start=1))
    return f"Sources:\n{listed}"


class SigtermGuard:
    """SIGTERM while a command runs cancels it (once) and marks the console ``terminated``;
    at the prompt, with nothing in flight, it ends the process at once, as by default (a
    reader thread blocked on stdin could not be cancelled anyway)."""

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.busy = False
        self.terminated = False
        self._loop = asyncio.get_running_loop()
        self._installed = False

    def install(self) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows, a thread
            self._loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            self._loop.remove_signal_handler(signal.SIGTERM)
            self._installed = False

    @contextlib.contextmanager
    def command(self) -> Iterator[None]:
        self.busy = True
        try:
            yield
        finally:
            self.busy = False

    def _on_sigterm(self) -> None:
        if self.busy and self.task is not None:
            if not self.terminated:
                self.terminated = True
                self.task.cancel()
            return
        self.uninstall()
        sys.stdout.flush()
        signal.raise_signal(signal.SIGTERM)


async def load_runtime(
    settings: Settings, model_settings: ModelSettings
) -> tuple[Runtime, str | None]:
    """Import and build the runtime; the heavy imports (SQLAlchemy, httpx) run off the loop."""
    runtime_module = await asyncio.to_thread(importlib.import_module, "bot.runtime")
    built: tuple[Runtime, str | None] = await runtime_module.build_runtime(
        settings, allow_generated_key=True, model_settings=model_settings
    )
    # At once, not at the first command: what a console killed before this one left (its
    # chat in flight, its budget hold) is settled while this one waits at the prompt.
    built[0].start()
    return built


async def run_console(
    settings: Settings,
    model_settings: ModelSettings,
    *,
    workspace: str,
    user: str,
    channel: str = DEFAULT_CHANNEL,
    member: bool = False,
    stdin: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    interactive: bool | None = None,
) -> None:
    """Run the console until EOF or /quit.

    On a TTY the prompt appears at once while the database and providers load in the
    background; the first command waits for them if it has to.
    """
    if interactive is None:
        interactive = stdin.isatty() and out.isatty()
    if interactive and isinstance(stdin, io.TextIOWrapper):
        # input() decodes the terminal's bytes with stdin's error handler; "strict" (the
        # default under a UTF-8 locale) would end the console at the first bad byte.
        stdin.reconfigure(errors="surrogateescape")
    loading = asyncio.create_task(load_runtime(settings, model_settings))
    console: Console | None = None
    sigterm = SigtermGuard(asyncio.current_task())
    sigterm.install()
    try:
        if interactive:
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401  (line editing and history for input())
            role = "a member" if member else "an admin"
            out.write(
                f"routerbot console — workspace {workspace}, #{channel}, {user} ({role}). "
                "Type /help, /quit to leave; plain text chats.\n"
            )
            out.flush()
        while True:
            try:
                line = await read_line(stdin, interactive)
                if line is None:
                    break
                with sigterm.command():
                    if console is None:
                        runtime, warning = await loading
                        if warning:
                            err.write(f"{warning}\n")
                            err.flush()
                        console = Console(
                            runtime,
                            workspace=workspace,
                            user=user,
                            out=out,
                            interactive=interactive,
                            channel=channel,
                            member=member,
                        )
                    await console.handle_line(line)
            except asyncio.CancelledError:
                if not sigterm.terminated or sigterm.task is None:
                    raise
                sigterm.task.uncancel()
                err.write("routerbot console: stopped by SIGTERM.\n")
                err.flush()
                break
            except EOFError:
                if interactive:
                    out.write("\n")
                break
            except KeyboardInterrupt:
                out.write("\n")
                if not interactive:
                    break
    finally:
        sigterm.uninstall()
        if not loading.done():
            loading.cancel()
        with contextlib.suppress(BaseException):
            runtime, _ = await loading
            await runtime.aclose()
