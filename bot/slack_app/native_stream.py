"""Streams one answer with Slack's native streaming methods (``chat.startStream``,
``chat.appendStream``, ``chat.stopStream``): the answer's life cycle, its pacing and its
fall-back to ``chat.update``.

A streamed message is always a reply in a thread. ``/chat`` posts the question alone as a
channel message (``chat.postMessage``) and streams the answer into that message's thread;
mentions and thread follow-ups stream into the thread they came from. The question (or the
thread's first message) stays the root, so replies in the thread continue the conversation.

Cadence, as in :class:`~bot.slack_app.streaming.AnswerStream`: the provider stream only fills a
buffer; the core's live loop (:mod:`bot.core.live`) sends what has arrived, at most once per
``interval`` per message, and its interim calls also draw on a per-workspace budget (the
streaming methods are Tier 4), so an interim append may be skipped, never the final call. The
stream starts lazily with the first text (``chat.startStream`` carrying it), later text is
appended, and ``chat.stopStream`` carries the rest, a blank line and the cost footer. A part the
end of the answer finds not yet started (all of a quick answer, an error before the first
token) is posted whole with one ``chat.postMessage``.

Where the answer is cut into parts: :mod:`bot.slack_app.native_plan`. How each part is written
and what each Slack failure does to it: :mod:`bot.slack_app.native_part`. When Slack refuses
native streaming on the first part, the answer is handed, text so far included, to an
``AnswerStream`` (``chat.update``), which continues in the question message just as when native
streaming is off; :class:`~bot.slack_app.native_support.NativeSupport` remembers the refusal so
later answers there go straight to ``chat.update``. Interim calls are best-effort and the final
call carries everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.chat.sources import Source
from bot.core.format import SLACK_MESSAGE_LIMIT, close_open_fence
from bot.core.live import EDIT_INTERVAL, LiveLoop, Sleep, Spacing
from bot.slack_app.errors import error_code
from bot.slack_app.native_part import TRANSPORT, Part, PartWriter, Refused, settled
from bot.slack_app.native_plan import HOLD, Step, continued_fence, plan
from bot.slack_app.native_support import NativeSupport
from bot.slack_app.streaming import EMPTY_ANSWER, AnswerStream, UpdateBudget
from bot.slack_app.text import escape, source_links

log = logging.getLogger(__name__)

#: Tier 4 (100+ a minute per workspace) for interim starts and appends.
APPEND_RATE = 100 / 60
APPEND_BURST = 50.0


@dataclass(frozen=True, slots=True)
class StreamedPart:
    """One message of a streamed answer: ``reopen`` (a code fence continued from the previous
    part) + ``body`` (a slice of the escaped answer) + ``end`` (a closing fence, the footer)."""

    ts: str
    reopen: str
    body: str
    end: str

    @property
    def text(self) -> str:
        return self.reopen + self.body + self.end


class NativeAnswerStream:
    """One answer streamed natively; same life cycle as ``AnswerStream``: ``open``, ``append``,
    then ``finish`` or ``fail`` (or ``abort``)."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        team_id: str,
        user_id: str | None,
        thread_ts: str | None = None,
        header: str = "",
        budget: UpdateBudget | None = None,
        update_budget: UpdateBudget | None = None,
        support: NativeSupport | None = None,
        interval: float = EDIT_INTERVAL,
        limit: int = SLACK_MESSAGE_LIMIT,
        hold: int = HOLD,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        on_ended: Callable[[], None] | None = None,
    ) -> None:
        if limit < 100:
            raise ValueError("limit too small to carry code fences")
        self.client = client
        self.channel = channel
        self.team_id = team_id
        self.thread_ts = thread_ts
        self.header = header
        self.budget = budget
        self.update_budget = update_budget
        self.interval = interval
        self.limit = limit
        self.hold = min(hold, limit // 2)
        self.clock = clock
        self.sleep = sleep
        self._spacing = Spacing(interval, clock=clock, sleep=sleep)
        self._writer = PartWriter(
            client,
            channel=channel,
            team_id=team_id,
            user_id=user_id,
            support=support,
            spacing=self._spacing,
            on_ended=on_ended,
        )
        self._live = LiveLoop(self, name="slack-native-stream", clock=clock, sleep=sleep)
        self._chunks: list[str] = []
        self._parts: list[Part] = []
        #: How much of the escaped answer the parts hold.
        self._sent = 0
        #: The first line of the next part (a code fence continued across the cut).
        self._next_reopen = ""
        self._header_ts: str | None = None
        self._header_at = 0.0
        self._fallback: AnswerStream | None = None
        self._refused = False
        self._interim_off = False
        self._next_try = 0.0

    # -- what the caller sees -----------------------------------------------------------------

    @property
    def root_ts(self) -> str:
        """The thread's first message: the question for ``/chat``, else the thread given."""
        if self.thread_ts is not None:
            return self.thread_ts
        assert self._header_ts is not None, "open() first"
        return self._header_ts

    @property
    def first_ts(self) -> str:
        if self._fallback is not None:
            return self._fallback.first_ts
        if self._header_ts is not None:
            return self._header_ts
        return self._parts[0].ts if self._parts else self.root_ts

    @property
    def message_ts(self) -> list[str]:
        if self._fallback is not None:
            return self._fallback.message_ts
        head = [self._header_ts] if self._header_ts else []
        return head + [p.ts for p in self._parts]

    @property
    def fell_back(self) -> bool:
        """Slack refused native streaming and ``chat.update`` carries this answer."""
        return self._fallback is not None

    @property
    def parts(self) -> list[StreamedPart]:
        return [StreamedPart(p.ts, p.reopen, p.body, p.end) for p in self._parts]

    async def open(self) -> str:
        """Post the question (``/chat``); raises ``SlackApiError`` when Slack refuses it. In a
        thread nothing is posted until the first text."""
        if self.header:
            response = await self.client.chat_postMessage(
                channel=self.channel,
                text=self.header,
                thread_ts=self.thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
            self._header_ts = str(response["ts"])
            self._header_at = self.clock()
        return self.root_ts

    def append(self, delta: str) -> None:
        if not delta:
            return
        if self._fallback is not None:
            self._fallback.append(delta)
            return
        self._chunks.append(delta)
        self._live.poke()

    async def finish(
        self,
        answer: str,
        footer: str,
        notices: tuple[str, ...] = (),
        sources: Sequence[Source] = (),
    ) -> None:
        """The whole answer, then the notices, the sources (as links) and the footer."""
        await self._live.stop()
        if await self._handed_over():
            assert self._fallback is not None
            await self._fallback.finish(answer, footer, notices, sources)
            return
        body = escape(answer) if answer.strip() else EMPTY_ANSWER
        if notices:
            body = close_open_fence(body) + "\n\n" + "\n".join(escape(n) for n in notices)
        if sources:
            links = source_links(sources, markdown=True)
            body = close_open_fence(body) + "\n\n" + links
        await self._close(body, f"\n\n{escape(footer)}")

    async def fail(self, sentence: str) -> None:
        """The chat failed: the partial text (if any) stays, followed by the reason."""
        await self._live.stop()
        if await self._handed_over():
            assert self._fallback is not None
            await self._fallback.fail(sentence)
            return
        partial = escape("".join(self._chunks))
        body = f"{close_open_fence(partial)}\n\n" if partial.strip() else ""
        await self._close(f"{body}⚠ {escape(sentence)}", "")

    async def abort(self) -> None:
        """Stop the interim calls without a final text (the caller is going away); an open
        stream is stopped as it stands, best-effort."""
        await self._live.stop()
        if self._fallback is not None:
            await self._fallback.abort()
            return
        part = self._open_part()
        if part is not None:
            await self._writer.stop_quietly(part)

    # -- interim calls (the live loop's sink) -------------------------------------------------

    def due(self) -> float:
        part = self._open_part()
        if part is None:
            return self._next_try
        return max(self._next_try, self._spacing.due(part.ts))

    async def show(self) -> bool:
        steps = self._interim_steps()
        if not steps:
            return False
        if self.budget is not None and not self.budget.allow(self.team_id):
            self._next_try = self.clock() + self.interval
            return True
        try:
            done = await self._run(steps)
        except Refused:
            self._refused = True
            try:
                await self._hand_over()
            except TRANSPORT as exc:
                log.warning("could not switch the answer to chat.update: %s", error_code(exc))
            return False
        except TRANSPORT as exc:
            # Interim calls are best-effort; the final call carries everything.
            log.warning("interim Slack stream call failed: %s", error_code(exc))
            if settled(exc):
                self._interim_off = True  # not worth repeating; the final call will tell
                return False
            self._next_try = self.clock() + self.interval
            return True
        return not done  # the rest goes out with the next call

    def _interim_steps(self) -> list[Step]:
        if self._interim_off or self._refused:
            return []
        part = self._open_part()
        base, new = (part.text, False) if part is not None else (self._next_reopen, True)
        pending = escape("".join(self._chunks))[self._sent :]
        steps = plan(base, pending, new=new, limit=self.limit, hold=self.hold)
        # A new stream starts with visible text, never with blank lines.
        if steps and steps[-1].end is None and (new or len(steps) > 1):
            last = steps[-1]
            if not (last.reopen + last.piece).strip():
                steps.pop()
        return steps

    # -- carrying out the plan ----------------------------------------------------------------

    async def _close(self, full: str, tail: str) -> None:
        part = self._open_part()
        base, new = (part.text, False) if part is not None else (self._next_reopen, True)
        await self._run(plan(base, full[self._sent :], new=new, limit=self.limit, tail=tail))

    async def _run(self, steps: list[Step]) -> bool:
        """Carry out ``steps``; each one's text counts as sent once Slack took it. False: one
        step's outcome is unknown and the rest was left for the next call."""
        for step in steps:
            part = self._open_part()
            if part is None:
                part = Part(reopen=step.reopen)
                if step.end is None:
                    first = not self._parts
                    await self._writer.start(part, step.piece, thread_ts=self.root_ts, first=first)
                else:
                    await self._writer.post(part, step.piece + step.end, thread_ts=self.root_ts)
                self._parts.append(part)
            elif step.end is None:
                if not await self._writer.extend(part, step.piece):
                    return False
            else:
                await self._writer.end(part, step.piece + step.end)
            part.body += step.piece
            self._sent += len(step.piece)
            if step.end is not None:
                part.end = step.end
                part.done = True
                self._next_reopen = continued_fence(part.text, self.limit)
        return True

    def _open_part(self) -> Part | None:
        if self._parts and not self._parts[-1].done:
            return self._parts[-1]
        return None

    # -- falling back -------------------------------------------------------------------------

    async def _handed_over(self) -> bool:
        """Whether ``chat.update`` carries this answer (handing it over now if Slack refused
        native streaming and the hand-over has not happened yet)."""
        if self._refused and self._fallback is None:
            await self._hand_over()
        return self._fallback is not None

    async def _hand_over(self) -> None:
        fallback = AnswerStream(
            self.client,
            channel=self.channel,
            team_id=self.team_id,
            thread_ts=self.thread_ts,
            header=self.header,
            budget=self.update_budget,
            interval=self.interval,
            limit=self.limit,
            clock=self.clock,
            sleep=self.sleep,
        )
        if self._header_ts is not None:
            fallback.adopt(self._header_ts, self.header, self._header_at)
        else:
            await fallback.open()
        # No await from here on: text arriving meanwhile is in the chunks, later text goes on.
        fallback.append("".join(self._chunks))
        self._fallback = fallback
