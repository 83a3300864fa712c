"""Richer chats on Slack over real HTTP: files shared with a mention, a thread reply or a DM
are fetched with the bot's token and reach the model as content parts; limits (bytes, pixels)
and models without the input kind are refused in one sentence; ``/chat --web`` lists its
sources as links without previews and counts its searches; ``--effort`` goes through; the
ledger's costs are exactly what the provider charged (or computed the same way)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openrouter import Fault
from tests.fakes.openrouter_richer import REASONING_TEXT
from tests.integration.richer_support import (
    RICH_ID,
    TEXT_ONLY_ID,
    charged_nano,
    data_url,
    enrich,
    pdf,
    png,
)
from tests.integration.slack_support import SlackHarness, slack_harness

KEY = "sk-or-v1-test-key-one-0001"
MIB = 1024 * 1024


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(f"sqlite:///{tmp_path / 'slack.db'}", keys=(KEY,)) as harness:
        await harness.set_key("T1", KEY)
        await enrich(harness.openrouter, harness.runtime.catalogue)
        yield harness


def mention(text: str, ts: str, files: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "channel": "C1",
        "user": "U1",
        "text": f"<@UBOTT1> {text}",
        "ts": ts,
        "files": files,
        **extra,
    }


def ephemeral(h: SlackHarness) -> str:
    [notice] = h.slack.ephemerals
    return str(notice["text"])


# -- files ------------------------------------------------------------------------------------


async def test_a_mentioned_image_and_a_replied_pdf_reach_the_model(h: SlackHarness) -> None:
    image = png(320, 200)
    shared = h.slack.share_file("T1", "chart.png", "image/png", image)
    await h.event(mention("what does this show?", "1800000000.000100", [shared]), event_id="E1")

    [download] = h.slack.file_downloads
    assert download.token == h.teams["T1"].bot_token and download.complete
    body = h.openrouter.chat_requests[-1].json
    assert body["model"] == RICH_ID
    assert body["messages"][-1]["content"] == [
        {"type": "text", "text": "what does this show?"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", image)}},
    ]
    assert "plugins" not in body
    [answer] = h.slack.thread("C1", "1800000000.000100")
    assert answer.text.startswith("echo: what does this show?")

    report = pdf(3)
    shared_pdf = h.slack.share_file("T1", "q3 report.pdf", "application/pdf", report)
    reply = {
        "type": "message",
        "channel": "C1",
        "user": "U1",
        "text": "and this report?",
        "ts": "1800000000.000200",
        "thread_ts": "1800000000.000100",
        "subtype": "file_share",
        "files": [shared_pdf],
    }
    await h.event(reply, event_id="E2")
    body = h.openrouter.chat_requests[-1].json
    first, _answer, newest = body["messages"]
    # The history keeps a reference to the image, never its bytes.
    size = f"{len(image):,} bytes" if len(image) < 1024 else f"{len(image) / 1024:.0f} KB"
    assert first["content"] == (
        f"what does this show?\n[attached: chart.png, PNG image 320×200, {size}]"
    )
    assert "base64" not in first["content"]
    assert newest["content"][1] == {
        "type": "file",
        "file": {"filename": "q3 report.pdf", "file_data": data_url("application/pdf", report)},
    }
    assert body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "native"}}]
    assert len(h.slack.thread("C1", "1800000000.000100")) == 2
    # Never re-posted: routerbot uploads nothing.
    assert h.slack.calls_to("files.getUploadURLExternal") == []
    assert h.slack.calls_to("files.completeUploadExternal") == []


async def test_a_text_file_is_inlined_and_details_come_from_files_info(h: SlackHarness) -> None:
    notes = "- ship on Friday\n- café opens at 9"
    shared = h.slack.share_file(
        "T1", "notes.md", "text/markdown", notes.encode(), check_file_info=True
    )
    await h.event(mention("summarise", "1800000000.000300", [shared]), event_id="E3")
    assert [c.args["file"] for c in h.slack.calls_to("files.info")] == [shared["id"]]
    content = h.openrouter.chat_requests[-1].json["messages"][-1]["content"]
    assert content == f"summarise\n\n--- notes.md ---\n{notes}\n--- end of notes.md ---"


async def test_a_model_without_image_input_is_refused_naming_models_that_take_images(
    h: SlackHarness,
) -> None:
    shared = h.slack.share_file("T1", "cat.png", "image/png", png())
    text = f"--model {TEXT_ONLY_ID} what is this?"
    await h.event(mention(text, "1800000000.000400", [shared]), event_id="E4")
    assert ephemeral(h) == (
        f"`{TEXT_ONLY_ID}` does not take images; allowlisted models that do: `{RICH_ID}` "
        "(ask one of them with --model <id>). Nothing was sent."
    )
    assert h.openrouter.chat_requests == []
    assert await h.usage_rows() == []


@pytest.mark.parametrize(
    ("name", "mimetype", "data", "size", "problem"),
    [
        ("big.png", "image/png", b"x", 6 * MIB, "`big.png` is too large: images may be at most"),
        ("clip.mp4", "video/mp4", b"x", 10, "`clip.mp4` is not a kind of file I can pass on"),
    ],
)
async def test_declared_limits_refuse_before_any_download(
    h: SlackHarness, name: str, mimetype: str, data: bytes, size: int, problem: str
) -> None:
    shared = h.slack.share_file("T1", name, mimetype, data, size=size)
    await h.event(mention("look", "1800000000.000500", [shared]), event_id="E5")
    assert ephemeral(h).startswith(problem)
    assert h.slack.file_downloads == []
    assert h.openrouter.chat_requests == []


async def test_a_file_bigger_than_slack_said_is_cut_off_at_the_cap(h: SlackHarness) -> None:
    body = b"\x89PNG\r\n\x1a\n" + b"\0" * (24 * MIB)
    shared = h.slack.share_file("T1", "liar.png", "image/png", body, size=2048)
    await h.event(mention("look", "1800000000.000600", [shared]), event_id="E6")
    assert ephemeral(h).startswith("`liar.png` is too large: images may be at most 5.0 MB")
    [download] = h.slack.file_downloads
    assert not download.complete and download.sent < 24 * MIB
    assert h.openrouter.chat_requests == []


async def test_too_many_pixels_is_refused(h: SlackHarness) -> None:
    shared = h.slack.share_file("T1", "strip.png", "image/png", png(9000, 8))
    await h.event(mention("look", "1800000000.000700", [shared]), event_id="E7")
    assert ephemeral(h).startswith("`strip.png` has 9,000×8 pixels; images may be at most 8,000")
    assert h.openrouter.chat_requests == []


async def test_a_file_the_bot_token_cannot_read_is_refused(h: SlackHarness) -> None:
    h.slack.add_team("T2")
    elsewhere = h.slack.share_file("T2", "secret.pdf", "application/pdf", pdf(1))
    await h.event(mention("read it", "1800000000.000800", [elsewhere]), event_id="E8")
    [download] = h.slack.file_downloads
    assert download.token == h.teams["T1"].bot_token and not download.authorized
    assert ephemeral(h).startswith("I could not download `secret.pdf` from the chat")
    assert h.openrouter.chat_requests == []


# -- web search ---------------------------------------------------------------------------------

FOOTER = re.compile(rf"{re.escape(RICH_ID)} · [\d,]+ in · [\d,]+ out · 2 searches · \$[\d.]+ · ")


async def test_web_search_lists_sources_without_previews_and_records_the_searches(
    h: SlackHarness,
) -> None:
    pages = [
        ("https://news.example/a", "Rain & <wind> | today"),
        ("https://news.example/a#more", "again"),
        ("https://news.example/b?x=1&y=2", "B"),
        *[(f"https://more.example/{i}", f"More {i}") for i in range(6)],
    ]
    h.openrouter.script(answer="It rains.", web_searches=2, citations=pages)
    await h.command("/chat", "--web what is the weather?")

    body = h.openrouter.chat_requests[-1].json
    assert body["tools"] == [
        {"type": "openrouter:web_search", "parameters": {"max_results": 5, "max_uses": 3}}
    ]
    [message] = h.slack.posted("C1")
    assert (
        "It rains.\n\n*Sources*\n"
        "1. <https://news.example/a|Rain &amp; &lt;wind&gt; ¦ today>\n"
        "2. <https://news.example/b?x=1&amp;y=2|B>\n"
        "3. <https://more.example/0|More 0>\n"
        "4. <https://more.example/1|More 1>\n"
        "5. <https://more.example/2|More 2>\n\n"
    ) in message.text
    assert FOOTER.search(message.text), message.text
    for call in h.slack.calls_to("chat.postMessage"):
        assert call.args.get("unfurl_links") in (False, "false", "0", 0)
        assert call.args.get("unfurl_media") in (False, "false", "0", 0)

    [row] = await h.usage_rows()
    assert (row.web_search_requests, row.web_search_cost_nano) == (2, 20_000_000)
    assert row.cost_source == "reported"
    assert row.cost_nano == charged_nano(h.openrouter, row.generation_id)


async def test_computed_cost_includes_the_searches_when_none_is_reported(
    h: SlackHarness,
) -> None:
    h.openrouter.script(Fault.no_cost(), web_searches=2)
    await h.command("/chat", "--web news?")
    [row] = await h.usage_rows()
    assert row.cost_source == "computed"
    assert row.cost_nano == charged_nano(h.openrouter, row.generation_id)
    [message] = h.slack.posted("C1")
    assert " · 2 searches · ≈$" in message.text


async def test_web_search_needs_a_model_that_calls_tools(h: SlackHarness) -> None:
    sent = await h.command("/chat", f"--web --model {TEXT_ONLY_ID} news?")
    text = h.reply_text(sent)
    assert text.startswith(f"`{TEXT_ONLY_ID}` cannot call tools, so it cannot search the web;")
    assert f"`{RICH_ID}`" in text and h.openrouter.chat_requests == []


# -- reasoning effort -------------------------------------------------------------------------


async def test_effort_goes_through_and_reasoning_is_counted_never_shown(h: SlackHarness) -> None:
    await h.command("/chat", "--effort high think hard")
    body = h.openrouter.chat_requests[-1].json
    assert body["reasoning"] == {"effort": "high"}
    [message] = h.slack.posted("C1")
    assert re.search(r" · [\d,]+ out \(1,024 reasoning\) · \$", message.text), message.text
    assert all(REASONING_TEXT not in text for text in message.history)
    [row] = await h.usage_rows()
    assert row.reasoning_tokens == 1024


async def test_effort_on_a_model_that_does_not_reason_is_one_sentence(h: SlackHarness) -> None:
    sent = await h.command("/chat", f"--model {TEXT_ONLY_ID} --effort low hi")
    assert h.reply_text(sent).startswith(f"`{TEXT_ONLY_ID}` has no reasoning effort to set;")
    assert h.openrouter.chat_requests == []


# -- the AI app's direct messages (native streaming) ------------------------------------------


@pytest.fixture
async def dm(tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with slack_harness(
        f"sqlite:///{tmp_path / 'dm.db'}", keys=(KEY,), streaming="auto"
    ) as harness:
        await harness.set_key("T1", KEY)
        await enrich(harness.openrouter, harness.runtime.catalogue)
        yield harness


def direct(text: str, ts: str, files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "channel": "D1",
        "channel_type": "im",
        "user": "U1",
        "text": text,
        "ts": ts,
        "event_ts": ts,
    }
    if files:
        event["files"] = files
        event["subtype"] = "file_share"
    return event


async def test_a_direct_message_with_a_file_and_a_web_search_streams_natively(
    dm: SlackHarness,
) -> None:
    image = png(64, 64)
    shared = dm.slack.share_file("T1", "photo.webp.png", "image/png", image)
    await dm.event(direct("what is in this photo?", "1800000100.000100", [shared]), event_id="D1")
    content = dm.openrouter.chat_requests[-1].json["messages"][-1]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": data_url("image/png", image)}}
    [download] = dm.slack.file_downloads
    assert download.token == dm.teams["T1"].bot_token

    dm.openrouter.script(web_searches=1, citations=[("https://docs.example/(x)", "Docs [v2]")])
    await dm.event(direct("/chat --web what changed?", "1800000200.000100"), event_id="D2")
    assert dm.openrouter.chat_requests[-1].json["tools"][0]["type"] == "openrouter:web_search"
    [answer] = dm.slack.thread("D1", "1800000200.000100")
    assert "**Sources**\n1. [Docs \\[v2\\]](https://docs.example/%28x%29)" in answer.text
    assert " · 1 search · $" in answer.text
