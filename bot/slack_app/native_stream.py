"""Streams one answer with Slack's native streaming methods: ``chat.startStream``,
``chat.appendStream`` and ``chat.stopStream``.

A streamed message is always a reply in a thread. ``/chat`` posts the question alone as a
channel message (``chat.postMessage``) and streams the answer into that message's thread;
mentions and thread follow-ups stream into the thread they came from. The question (or the
thread's first message) stays the root, so replies in the thread continue the conversation.

Cadence, as in :class:`~bot.slack_app.streaming.AnswerStream`: the provider stream only fills a
buffer; a flusher task sends what has arrived, at most once per ``interval`` per message, and its
interim calls also draw on a per-workspace budget (the streaming methods are Tier 4), so an
interim append may be skipped, never the final call. The stream starts lazily with the first
text (``chat.startStream`` carrying it), later text is appended, and ``chat.stopStream`` carries
the rest, a blank line and the cost footer. A part the end of the answer finds not yet started
(all of a quick answer, an error before the first token) is posted whole with one
``chat.postMessage``. Answer messages carry ``markdown_text``, as streams do.

Parts: each message stays within ``limit`` characters, fence lines and footer included. Text is
appended until it is ``hold`` characters short of the limit; the rest waits until the part must
end, so the cut can fall on a paragraph, line or word boundary (never inside ``&amp;``). A cut
inside a code block closes the fence at the end of that part and reopens it, info string
included, at the top of the next part, a new stream in the same thread. Nothing is lost or
repeated: the parts' bodies, in order, are exactly the escaped answer.

Failures:

* ``chat.startStream`` refused with an error in :data:`NATIVE_UNAVAILABLE` (the workspace, token
  or conversation cannot stream): the answer is handed, text so far included, to an
  ``AnswerStream`` (``chat.update``), which continues in the question message just as when
  native streaming is off, and :class:`NativeSupport` remembers the refusal for an hour so later
  answers there go straight to ``chat.update``.
* ``message_not_in_streaming_state`` on an append or the stop (the stream ended or expired on
  Slack's side): the message is finished with ``chat.update`` carrying its whole text.
* An append whose outcome is unknown (no answer, or a 5xx): the stream is stopped and the
  message rewritten whole with ``chat.update``, so no text can appear twice. A stop whose
  outcome is unknown is sent once more: ``message_not_in_streaming_state`` then means the first
  one landed, and the message is rewritten whole.
* Anything else (``not_in_channel``, ``is_archived``, …) reaches the caller, as with
  ``AnswerStream``; interim calls are best-effort and the final call carries everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.format import SLACK_MESSAGE_LIMIT, close_open_fence, reopen_fence
from bot.slack_app.errors import error_code
from bot.slack_app.streaming import (
    EDIT_INTERVAL,
    EMPTY_ANSWER,
    AnswerStream,
    Flusher,
    UpdateBudget,
)
from bot.slack_app.text import escape

log = logging.getLogger(__name__)

#: ``chat.startStream`` errors meaning the whole workspace (app, token, plan) cannot stream.
TEAM_UNAVAILABLE = frozenset(
    {
        "unknown_method",
        "not_allowed_token_type",
        "missing_scope",
        "feature_not_enabled",
        "not_enabled",
    }
)
#: ``chat.startStream`` errors tied to the conversation (its type, what it requires).
CHANNEL_UNAVAILABLE = frozenset(
    {
        "method_not_supported_for_channel_type",
        "channel_type_not_supported",
        "invalid_arguments",
    }
)
NATIVE_UNAVAILABLE = TEAM_UNAVAILABLE | CHANNEL_UNAVAILABLE
NOT_STREAMING = "message_not_in_streaming_state"
#: How long a refusal is remembered.
REMEMBER_SECONDS = 3600.0
#: Tier 4 (100+ a minute per workspace) for interim starts and appends.
APPEND_RATE = 100 / 60
APPEND_BURST = 50.0
#: Interim text stops this far short of the part limit, leaving room to choose a good cut.
HOLD = 400

_Transport = (SlackApiError, aiohttp.ClientError, TimeoutError)


class NativeSupport:
    """Where Slack refused native streaming lately; answers there use ``chat.update`` directly.

    A refusal about the workspace (method, token type, scope, feature) is remembered for the
    team; one about the conversation (its type, its arguments) for that channel only.
    """

    def __init__(
        self, ttl: float = REMEMBER_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._until: dict[str, float] = {}

    def available(self, team_id: str, channel: str) -> bool:
        now = self.clock()
        for key in (team_id, f"{team_id}:{channel}"):
            until = self._until.get(key)
            if until is None:
                continue
            if until > now:
                return False
            del self._until[key]
        return True

    def refuse(self, team_id: str, channel: str, error: str) -> None:
        key = team_id if error in TEAM_UNAVAILABLE else f"{team_id}:{channel}"
        now = self.clock()
        if len(self._until) > 10_000:
            self._until = {k: t for k, t in self._until.items() if t > now}
        self._until[key] = now + self.ttl


class _Refused(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


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


@dataclass(slots=True)
class _Part:
    reopen: str
    ts: str = ""
    body: str = ""
    end: str = ""
    #: False: a plain message (the stream ended on Slack's side), edited with chat.update.
    streaming: bool = True
    touched_at: float = 0.0
    #: An append or edit landed after the message was created.
    edited: bool = False
    done: bool = False

    @property
    def text(self) -> str:
        return self.reopen + self.body


@dataclass(frozen=True, slots=True)
class _Step:
    """Text for the open part (or a new one, starting with ``reopen``); ``end`` set: the part's
    last words (closing fence, footer), after which the next step opens a new part."""

    piece: str
    end: str | None
    reopen: str = ""


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
        on_ended: Callable[[], None] | None = None,
    ) -> None:
        if limit < 100:
            raise ValueError("limit too small to carry code fences")
        self.client = client
        self.channel = channel
        self.team_id = team_id
        self.user_id = user_id
        self.thread_ts = thread_ts
        self.header = header
        self.budget = budget
        self.update_budget = update_budget
        self.support = support
        self.interval = interval
        self.limit = limit
        self.hold = min(hold, limit // 2)
        self.clock = clock
        #: Told when Slack ended a stream on its side (its TTL, or the user's Stop).
        self.on_ended = on_ended
        self._chunks: list[str] = []
        self._parts: list[_Part] = []
        #: How much of the escaped answer the parts hold.
        self._sent = 0
        #: The first line of the next part (a code fence continued across the cut).
        self._next_reopen = ""
        self._header_ts: str | None = None
        self._header_at = 0.0
        self._fallback: AnswerStream | None = None
        self._refused = False
        self._interim_off = False
        self._flusher = Flusher(clock)
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
        self._flusher.start(self._flush_loop(), "slack-native-stream")
        return self.root_ts

    def append(self, delta: str) -> None:
        if not delta:
            return
        if self._fallback is not None:
            self._fallback.append(delta)
            return
        self._chunks.append(delta)
        self._flusher.poke()

    async def finish(self, answer: str, footer: str, notices: tuple[str, ...] = ()) -> None:
        await self._flusher.stop()
        if await self._handed_over():
            assert self._fallback is not None
            await self._fallback.finish(answer, footer, notices)
            return
        body = escape(answer) if answer.strip() else EMPTY_ANSWER
        if notices:
            body = close_open_fence(body) + "\n\n" + "\n".join(escape(n) for n in notices)
        await self._close(body, f"\n\n{escape(footer)}")

    async def fail(self, sentence: str) -> None:
        """The chat failed: the partial text (if any) stays, followed by the reason."""
        await self._flusher.stop()
        if await self._handed_over():
            assert self._fallback is not None
            await self._fallback.fail(sentence)
            return
        partial = escape("".join(self._chunks))
        body = f"{close_open_fence(partial)}\n\n" if partial.strip() else ""
        await self._close(f"{body}⚠ {escape(sentence)}", "")

    async def abort(self) -> None:
        """Stop the flusher without a final text (the caller is going away); an open stream is
        stopped as it stands, best-effort."""
        await self._flusher.stop()
        if self._fallback is not None:
            await self._fallback.abort()
            return
        part = self._open_part()
        if part is not None and part.streaming:
            with contextlib.suppress(*_Transport):
                await self.client.chat_stopStream(channel=self.channel, ts=part.ts)

    # -- flushing -----------------------------------------------------------------------------

    def _due(self) -> float:
        part = self._open_part()
        if part is None:
            return self._next_try
        return max(self._next_try, part.touched_at + self.interval)

    async def _flush_loop(self) -> None:
        while await self._flusher.next_round(self._due):
            steps = self._interim_steps()
            if not steps:
                self._flusher.settle()
                continue
            if self.budget is not None and not self.budget.allow(self.team_id):
                self._next_try = self.clock() + self.interval
                continue
            self._flusher.settle()
            try:
                done = await self._run(steps)
            except _Refused:
                self._refused = True
                try:
                    await self._hand_over()
                except _Transport as exc:
                    log.warning("could not switch the answer to chat.update: %s", error_code(exc))
                return
            except _Transport as exc:
                # Interim calls are best-effort; the final call carries everything.
                log.warning("interim Slack stream call failed: %s", error_code(exc))
                if _settled(exc):
                    self._interim_off = True  # not worth repeating; the final call will tell
                    return
                self._next_try = self.clock() + self.interval
                self._flusher.poke()
                continue
            if not done:
                self._flusher.poke()  # the rest goes out with the next call

    def _interim_steps(self) -> list[_Step]:
        if self._interim_off:
            return []
        part = self._open_part()
        base, new = (part.text, False) if part is not None else (self._next_reopen, True)
        pending = escape("".join(self._chunks))[self._sent :]
        steps = _plan(base, pending, new=new, limit=self.limit, hold=self.hold)
        # A new stream starts with visible text, never with blank lines.
        if steps and steps[-1].end is None and (new or len(steps) > 1):
            last = steps[-1]
            if not (last.reopen + last.piece).strip():
                steps.pop()
        return steps

    async def _close(self, full: str, tail: str) -> None:
        part = self._open_part()
        base, new = (part.text, False) if part is not None else (self._next_reopen, True)
        await self._run(_plan(base, full[self._sent :], new=new, limit=self.limit, tail=tail))

    async def _run(self, steps: list[_Step]) -> bool:
        """Carry out ``steps``; each one's text counts as sent once Slack took it. False: one
        step's outcome is unknown and the rest was left for the next call."""
        for step in steps:
            part = self._open_part()
            if part is None:
                part = _Part(reopen=step.reopen)
                if step.end is None:
                    await self._start(part, step.piece)
                else:
                    await self._post(part, step.piece + step.end)
            elif step.end is None:
                if not await self._extend(part, step.piece):
                    return False
            else:
                await self._end(part, step.piece + step.end)
            part.body += step.piece
            self._sent += len(step.piece)
            if step.end is not None:
                part.end = step.end
                part.done = True
                self._next_reopen = _reopen(part.text, self.limit)
        return True

    def _open_part(self) -> _Part | None:
        if self._parts and not self._parts[-1].done:
            return self._parts[-1]
        return None

    # -- Slack calls --------------------------------------------------------------------------

    async def _start(self, part: _Part, piece: str) -> None:
        text = part.reopen + piece
        recipient: dict[str, Any] = {}
        if self.user_id:
            recipient = {"recipient_team_id": self.team_id, "recipient_user_id": self.user_id}
        try:
            response = await self.client.chat_startStream(
                channel=self.channel, thread_ts=self.root_ts, markdown_text=text, **recipient
            )
        except SlackApiError as exc:
            error = error_code(exc)
            if error not in NATIVE_UNAVAILABLE:
                raise
            log.info("Slack refused native streaming (%s); answering with chat.update", error)
            if self.support is not None:
                self.support.refuse(self.team_id, self.channel, error)
            if not self._parts:
                raise _Refused(error) from None
            # Refused in the middle of an answer: this part becomes a plain, edited message.
            response = await self._post_message(text)
            part.streaming = False
        part.ts = str(response["ts"])
        part.touched_at = self.clock()
        self._parts.append(part)

    async def _post(self, part: _Part, text: str) -> None:
        response = await self._post_message(part.reopen + text)
        part.ts = str(response["ts"])
        part.streaming = False
        part.touched_at = self.clock()
        self._parts.append(part)

    async def _post_message(self, text: str) -> Any:
        return await self.client.chat_postMessage(
            channel=self.channel,
            markdown_text=text,
            thread_ts=self.root_ts,
            unfurl_links=False,
            unfurl_media=False,
        )

    async def _extend(self, part: _Part, text: str) -> bool:
        """Add interim text to an open part; False when it may or may not have landed (the part
        is then rewritten whole next time)."""
        if not part.streaming:
            await self._edit(part, close_open_fence(part.text + text))
            return True
        try:
            await self.client.chat_appendStream(
                channel=self.channel, ts=part.ts, markdown_text=text
            )
        except _Transport as exc:
            if error_code(exc) == NOT_STREAMING:
                part.streaming = False
                self._ended_by_slack()
                await self._edit(part, close_open_fence(part.text + text))
                return True
            if not _unknown_outcome(exc):
                raise
            # Unknown outcome: end the stream; the next edit rewrites the whole text.
            with contextlib.suppress(*_Transport):
                await self.client.chat_stopStream(channel=self.channel, ts=part.ts)
            part.streaming = False
            part.edited = True
            part.touched_at = self.clock()
            return False
        part.edited = True
        part.touched_at = self.clock()
        return True

    async def _end(self, part: _Part, text: str) -> None:
        """The part's last words: ``chat.stopStream`` (or the whole text by ``chat.update``)."""
        if part.edited:
            # The last call keeps the once-a-second spacing too.
            delay = part.touched_at + self.interval - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
        if not part.streaming:
            await self._edit(part, part.text + text)
            return
        for attempt in (1, 2):
            try:
                await self.client.chat_stopStream(
                    channel=self.channel, ts=part.ts, markdown_text=text or None
                )
            except _Transport as exc:
                if error_code(exc) == NOT_STREAMING:
                    part.streaming = False
                    self._ended_by_slack()
                    await self._edit(part, part.text + text)
                    return
                if attempt == 2 or not _unknown_outcome(exc):
                    raise
                # Did it land? A second stop tells: if so, it answers NOT_STREAMING.
                await asyncio.sleep(self.interval)
                continue
            part.edited = True
            part.touched_at = self.clock()
            return

    def _ended_by_slack(self) -> None:
        if self.on_ended is not None:
            self.on_ended()

    async def _edit(self, part: _Part, text: str) -> None:
        await self.client.chat_update(channel=self.channel, ts=part.ts, markdown_text=text)
        part.edited = True
        part.touched_at = self.clock()

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
        )
        if self._header_ts is not None:
            fallback.adopt(self._header_ts, self.header, self._header_at)
        else:
            await fallback.open()
        # No await from here on: text arriving meanwhile is in the chunks, later text goes on.
        fallback.append("".join(self._chunks))
        self._fallback = fallback


# -- cutting parts ----------------------------------------------------------------------------


def _plan(
    base: str,
    pending: str,
    *,
    new: bool,
    limit: int,
    hold: int = 0,
    tail: str | None = None,
) -> list[_Step]:
    """What to send of ``pending``, given the open part's text ``base`` (``new``: the part is not
    posted yet and ``base`` is its reopened fence). Interim (``tail`` None): everything up to
    ``hold`` short of the limit, cutting only when the text no longer fits. Final: everything,
    the last part ending with ``tail``."""
    steps: list[_Step] = []
    if new and tail is not None and not pending.strip():
        base = ""  # only blank text left: no code block to continue
    reopen = base if new else ""
    while True:
        candidate = base + pending
        size = len(candidate) + len(_closing(candidate))
        if tail is not None:
            closing = _closing(candidate)
            if size + len(tail) <= limit:
                steps.append(_Step(pending, closing + tail, reopen))
                return steps
            if size <= limit:
                steps.append(_Step(pending, closing, reopen))
                if tail:
                    steps.append(_Step("", tail.lstrip("\n")[:limit]))
                return steps
        elif size <= limit - hold:
            if pending:
                steps.append(_Step(pending, None, reopen))
            return steps
        elif size <= limit:
            shown = _shown(base, pending, limit - hold)
            if shown:
                steps.append(_Step(shown, None, reopen))
            return steps
        cut = _cut(candidate, len(base), limit, new=new)
        steps.append(_Step(candidate[len(base) : cut], _closing(candidate[:cut]), reopen))
        reopen = _reopen(candidate[:cut], limit)
        base, pending, new = reopen, candidate[cut:], True


def _shown(base: str, pending: str, room: int) -> str:
    """The longest start of ``pending`` that keeps ``base`` + it + a closing fence in ``room``."""
    k = _entity_safe(pending, max(0, room - len(base)))
    while k > 0 and len(base) + k + len(_closing(base + pending[:k])) > room:
        k = _entity_safe(pending, k - 1)
    return pending[:k]


def _cut(text: str, start: int, limit: int, *, new: bool) -> int:
    """Where the part ``text`` (posted up to ``start``) ends: the best boundary that leaves room
    for a closing fence. A new part always takes at least one character."""
    low = start + 1 if new else start
    high = limit
    while True:
        cut = max(_boundary(text, start, high), low)
        if cut + len(_closing(text[:cut])) <= limit or high <= low:
            return cut
        high = min(high - 1, limit - len(_closing(text[:cut])))


def _boundary(text: str, start: int, high: int) -> int:
    window = text[:high]
    for sep in ("\n\n", "\n", " "):
        index = window.rfind(sep)
        if index > high // 4 and index + len(sep) > start:
            return index + len(sep)
    return max(_entity_safe(text, high), start)


def _entity_safe(text: str, index: int) -> int:
    """``index``, moved back so it does not split ``&amp;``, ``&lt;`` or ``&gt;``."""
    amp = text.rfind("&", max(0, index - 4), index)
    if amp != -1:
        for entity in ("&amp;", "&lt;", "&gt;"):
            if text.startswith(entity, amp) and amp + len(entity) > index:
                return amp
    return index


def _closing(text: str) -> str:
    """What :func:`close_open_fence` adds to ``text``."""
    return close_open_fence(text)[len(text) :]


_MARKER = re.compile(r"[`~]+")


def _reopen(text: str, limit: int) -> str:
    line = reopen_fence(text)
    if len(line) > limit // 8:
        match = _MARKER.match(line)
        marker = match.group() if match else ""
        line = f"{marker}\n" if marker and len(marker) < limit // 8 else ""
    return line


def _unknown_outcome(exc: BaseException) -> bool:
    """No answer, or no JSON one (a 5xx): the call may or may not have landed."""
    if not isinstance(exc, SlackApiError):
        return True
    error = error_code(exc)
    return error.startswith("http_") or error == "unknown_error"


def _settled(exc: BaseException) -> bool:
    """Slack answered with an error that repeating will not change (the call did not land)."""
    return not _unknown_outcome(exc) and error_code(exc) != "ratelimited"
