"""Provider faults at every point of a stream, through a running front-end.

Each case scripts the fake OpenRouter (an HTTP error, a 429 or 5xx storm, an error chunk, a
malformed line, a dropped connection or a hang, before the first token or mid-stream; a missing
usage chunk or cost), sends ``/chat`` to the real Slack front-end, and checks what the user saw
(the answer with its footer, or the partial answer and one ``⚠`` line, never a traceback), the
ledger (one row with the right outcome; a failure before any text costs nothing), and that the
very next chat is answered normally. A few cases run through the Discord front-end too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.base import ProviderAdapter
from bot.core.dispatch import INTERNAL_ERROR
from tests.fakes.openrouter import DEFAULT_KEY, Fault
from tests.integration.discord_harness import running_bot
from tests.integration.slack_support import SlackHarness, slack_harness
from tests.integration.worker_support import FOOTER_MARK, check_ledger, has_footer

KEY = "sk-or-v1-fault-suite-key-00000001"
#: Short enough to keep the suite fast, long enough for loopback on a busy 2-core machine.
READ_TIMEOUT = 0.5
ATTEMPTS = 3  # the adapter's first try and its two retries before the first token


@dataclass(frozen=True)
class Case:
    fault: Fault
    #: How many chat requests the fault applies to (``ATTEMPTS``: a storm outlasting retries).
    times: int
    outcome: str
    #: Words the user must see (in the ⚠ line, or in the footer for a successful answer).
    says: str
    requests: int = 1


CASES = {
    "429 with a long Retry-After": Case(
        Fault.http(429, retry_after="30"), 1, "error", "try again in 30 s"
    ),
    "429 storm": Case(
        Fault.http(429, retry_after="1"), ATTEMPTS, "error", "rate limiting", ATTEMPTS
    ),
    "500 once, retried": Case(Fault.http(500), 1, "ok", " out · $", 2),
    "502 storm": Case(Fault.http(502), ATTEMPTS, "error", "down at the provider", ATTEMPTS),
    "503 storm": Case(Fault.http(503), ATTEMPTS, "error", "(503)", ATTEMPTS),
    "error chunk before text": Case(
        Fault.error_chunk(after=0, code=502), ATTEMPTS, "error", "(502)", ATTEMPTS
    ),
    "error chunk mid-stream": Case(Fault.error_chunk(after=3), 1, "cut_off", "cut off"),
    "malformed before text": Case(
        Fault.malformed(after=0), ATTEMPTS, "error", "could not read", ATTEMPTS
    ),
    "malformed mid-stream": Case(Fault.malformed(after=3), 1, "cut_off", "unreadable"),
    "drop before text, retried": Case(Fault.drop(after=0), 1, "ok", " out · $", 2),
    "drop mid-stream": Case(Fault.drop(after=3), 1, "cut_off", "connection to the provider"),
    "hang before text": Case(
        Fault.hang(after=0, seconds=30), ATTEMPTS, "error", "too long", ATTEMPTS
    ),
    "hang mid-stream": Case(Fault.hang(after=3, seconds=30), 1, "cut_off", "stopped responding"),
    "no usage chunk": Case(Fault.no_usage(), 1, "ok", "cost unknown"),
    "no cost in usage": Case(Fault.no_cost(), 1, "ok", "≈$"),
}
ANSWER = "one two three four five six seven eight"


def short_read_timeout(adapter: ProviderAdapter) -> None:
    """A hang is detected by the read timeout (60 s in production): shorten it for the test.
    The adapter keeps its pooled client private; its timeout is a public httpx setting."""
    adapter._client.timeout = httpx.Timeout(5.0, read=READ_TIMEOUT)  # type: ignore[attr-defined]


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("⚠")]


def assert_clear(text: str) -> None:
    """What the user saw is prose: no traceback, no generic "something went wrong"."""
    assert "Traceback" not in text and 'File "' not in text, text
    assert INTERNAL_ERROR not in text, text


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        short_read_timeout(harness.runtime.adapters["openrouter"])
        yield harness


@pytest.mark.parametrize("name", list(CASES))
async def test_provider_fault_through_slack(h: SlackHarness, name: str) -> None:
    case = CASES[name]
    h.openrouter.script(case.fault, answer=ANSWER, times=case.times)
    sent = await h.command("/chat", "fault please")
    assert sent.status == 200
    [message] = h.slack.posted("C1", top_level=True)
    assert h.replies(sent) == []  # the answer's own message says what happened
    assert_clear(message.text)
    warnings = warning_lines(message.text)
    if case.outcome == "ok":
        assert warnings == [] and has_footer(message.text)
        assert case.says in message.text.rsplit("\n", 1)[-1]
    else:
        [warning] = warnings  # exactly one line says what went wrong
        assert case.says in warning, warning
    if case.outcome == "error":
        assert warning.endswith("Nothing was charged.")
        assert not has_footer(message.text)
    if case.outcome == "cut_off":
        assert "one two three" in message.text and "four" not in message.text
        assert has_footer(message.text)  # what the partial answer cost, if it is known
    assert len(h.openrouter.chat_requests) == case.requests

    # The bot answers the next request as if nothing had happened.
    await h.command("/chat", "all good?")
    [_, after] = h.slack.posted("C1", top_level=True)
    assert "echo: all good?" in after.text and FOOTER_MARK in after.text

    check = await check_ledger(h.runtime.settings.database_url)
    assert check.problems == []
    [faulted, fine] = check.rows
    assert (faulted.outcome, fine.outcome) == (case.outcome, "ok")
    if case.outcome == "error":
        assert (faulted.cost_nano, faulted.cost_source) == (0, "none")
    assert check.sqlite_integrity == "ok"


@pytest.mark.parametrize("name", ["503 storm", "drop mid-stream", "hang mid-stream"])
async def test_provider_fault_through_discord(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    async with running_bot(tmp_path, openrouter_api_key=DEFAULT_KEY) as bot:
        short_read_timeout(bot.runtime.adapters["openrouter"])
        bot.openrouter.script(case.fault, answer=ANSWER, times=case.times)
        ix = await bot.slash("chat", prompt="fault please")
        # The deferred message is edited once more than while streaming (which shows a cursor).
        shown = await bot.discord.wait_for(
            lambda: (t := ix.text()) not in ("", "…") and "▌" not in t and t, what="the outcome"
        )
        assert_clear(shown)
        if case.outcome == "error":  # the answer's message becomes the one sentence
            assert "\n" not in shown and case.says in shown, shown
            assert shown.endswith("Nothing was charged.")
        else:
            [warning] = warning_lines(shown)
            assert case.says in warning
        nxt = await bot.slash("chat", prompt="all good?")
        assert (await bot.finished(nxt)).startswith("echo: all good?")
        check = await check_ledger(bot.settings.database_url)
        assert check.problems == []
        assert [r.outcome for r in check.rows] == [case.outcome, "ok"]
