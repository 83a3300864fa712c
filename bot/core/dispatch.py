"""Runs parsed commands against the ProviderService and renders neutral replies.

Every failure becomes one short sentence: usage errors, permissions, provider errors, and, for
anything unexpected, a generic sentence (the traceback goes to the log, never to chat).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from adapters.errors import ProviderError
from bot.core import commands as c
from bot.core.budgets import BudgetState, render_budget_states
from bot.core.errors import UserFacingError
from bot.core.format import format_price, format_usd
from bot.core.pricing import nano_to_usd
from bot.core.replies import ErrorReply, Invocation, KeyPromptReply, Reply, TextReply
from bot.core.service import PROVIDER_NAMES, CostReport, KeyStatus, ProviderService
from bot.core.text import clean_text
from storage.db import is_database_outage
from storage.stores import UsageTotals

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong inside routerbot; the error was logged. Please try again."
DATABASE_UNAVAILABLE = (
    "routerbot cannot reach its database right now (a restart or an outage); "
    "please try again in a minute."
)


def failure_sentence(exc: BaseException | None) -> str:
    """The one sentence for an unexpected failure: the database's own when it is unreachable
    or locked for now (the request may well work in a minute), else the generic one."""
    return DATABASE_UNAVAILABLE if exc is not None and is_database_outage(exc) else INTERNAL_ERROR


class Dispatcher:
    """The one entry point front-ends call: text or a command in, replies out."""

    def __init__(self, service: ProviderService) -> None:
        self.service = service

    async def run_text(self, ctx: Invocation, text: str) -> AsyncIterator[Reply]:
        """Run a command as typed; the text is cleaned here like at every other edge."""
        try:
            command = c.parse(clean_text(text))
        except UserFacingError as exc:
            yield ErrorReply(exc.message, private=True)
            return
        async for reply in self.run(ctx, command):
            yield reply

    async def run(
        self, ctx: Invocation, command: c.Command, *, anchors: Sequence[str] = ()
    ) -> AsyncIterator[Reply]:
        """Run ``command``; ``anchors`` go to a chat (see :meth:`ProviderService.chat`)."""
        try:
            async for reply in self._run(ctx, command, anchors):
                yield reply
        except UserFacingError as exc:
            yield ErrorReply(exc.message, private=exc.private or _is_private(command))
        except ProviderError as exc:
            yield ErrorReply(exc.user_message, private=_is_private(command))
        except Exception as exc:
            log.exception("command %s failed", type(command).__name__)
            yield ErrorReply(failure_sentence(exc), private=True)

    async def _run(
        self, ctx: Invocation, command: c.Command, anchors: Sequence[str]
    ) -> AsyncIterator[Reply]:
        s = self.service
        match command:
            case c.Help():
                yield TextReply(c.HELP_TEXT, private=True)
            case c.Chat(prompt=prompt, model=model):
                async for reply in s.chat(ctx, prompt, model, anchors=anchors):
                    yield reply
            case c.ModelsList():
                yield TextReply(await self._models_text(ctx))
            case c.ModelsRecommended():
                yield TextReply(self._recommended_text())
            case c.ModelsAdd(model_id=model_id):
                entry = await s.add_model(ctx, model_id)
                yield TextReply(
                    f"Added `{entry.model_id}` ({format_price(entry.pricing.input_per_1m)} in / "
                    f"{format_price(entry.pricing.output_per_1m)} out per 1M tokens).",
                    private=True,
                )
            case c.ModelsRemove(model_id=model_id):
                was_default = await s.remove_model(ctx, model_id)
                extra = (
                    " It was the default; set a new one with /models default <id>."
                    if was_default
                    else ""
                )
                yield TextReply(f"Removed `{model_id}`.{extra}", private=True)
            case c.ModelsDefault(model_id=model_id):
                await s.set_default_model(ctx, model_id)
                yield TextReply(f"`{model_id}` is now the default model.", private=True)
            case c.ApiKeyModal(provider=provider):
                s.require_admin(ctx, "set the API key")
                yield KeyPromptReply(provider)
            case c.ApiKeySet(key=key, provider=provider):
                status = await s.set_key(ctx, key, provider)
                yield TextReply(
                    f"Saved the {PROVIDER_NAMES.get(status.provider, status.provider)} key "
                    f"{status.masked} for this workspace{_limit_text(status)}.",
                    private=True,
                )
            case c.ApiKeyStatus():
                statuses = await s.key_status(ctx)
                yield TextReply(_key_status_text(statuses), private=True)
            case c.ApiKeyClear(provider=provider):
                cleared = await s.clear_key(ctx, provider)
                text = (
                    "Removed the "
                    + " and ".join(PROVIDER_NAMES.get(p, p) for p in cleared)
                    + " key from this workspace."
                    if cleared
                    else "There was no key to remove."
                )
                yield TextReply(text, private=True)
            case c.Costs(period=period, scope=scope):
                report = await s.costs(ctx, period, scope)
                yield TextReply(render_costs(report, ctx), private=scope == "workspace")
            case c.BudgetShow():
                overview = await s.budget_overview(ctx)
                text = render_budget_states(
                    overview.states, now=overview.now, channel_id=overview.channel_id
                )
                yield TextReply(text, private=True)
            case c.BudgetSet(amount_usd=amount, channel=channel):
                state = await s.set_budget(ctx, amount, channel=channel)
                yield TextReply(_budget_set_text(state), private=True)
            case c.BudgetClear(channel=channel):
                removed = await s.clear_budget(ctx, channel=channel)
                where = "this channel" if channel else "the workspace"
                text = (
                    f"Removed the monthly budget of {where}."
                    if removed
                    else f"There was no monthly budget on {where} to remove."
                )
                yield TextReply(text, private=True)

    async def _models_text(self, ctx: Invocation) -> str:
        entries = await self.service.list_models(ctx)
        if not entries:
            return (
                "No models are allowed in this workspace yet; an admin can add one with "
                "/models add <id> (see /models recommended)."
            )
        lines = ["Models allowed here (USD per 1M tokens, in / out):"]
        for e in entries:
            mark = " — default" if e.is_default else ""
            lines.append(
                f"• `{e.model_id}` {format_price(e.pricing.input_per_1m)} / "
                f"{format_price(e.pricing.output_per_1m)}{mark}"
            )
        if not any(e.is_default for e in entries):
            lines.append(
                "No default model is set; an admin can pick one with /models default <id>."
            )
        return "\n".join(lines)

    def _recommended_text(self) -> str:
        models = self.service.recommended_models()
        lines = ["Recommended models (USD per 1M tokens, in / out / cached in):"]
        for m in models:
            cached = (
                f" / {format_price(m.pricing.cached_input_per_1m)}"
                if m.pricing.cached_input_per_1m is not None
                else ""
            )
            provider = (
                ""
                if m.provider == "openrouter"
                else f" ({PROVIDER_NAMES.get(m.provider, m.provider)})"
            )
            lines.append(
                f"• `{m.model_id}`{provider} {format_price(m.pricing.input_per_1m)} / "
                f"{format_price(m.pricing.output_per_1m)}{cached}"
            )
        return "\n".join(lines)


def _is_private(command: c.Command) -> bool:
    return not isinstance(command, c.Chat | c.ModelsList | c.ModelsRecommended | c.Costs)


def _limit_text(status: KeyStatus) -> str:
    info = status.info
    if info is None:
        return ""
    if info.limit is None:
        return "; the key has no credit limit"
    remaining = info.limit_remaining if info.limit_remaining is not None else info.limit
    return f"; remaining limit {format_usd(remaining)} of {format_usd(info.limit)}"


def _key_status_text(statuses: list[KeyStatus]) -> str:
    if not statuses:
        return "No API key is set for this workspace; set one with /apikey set <key>."
    lines = []
    for st in statuses:
        name = PROVIDER_NAMES.get(st.provider, st.provider)
        if st.problem:
            lines.append(f"{name}: {st.masked} (could not check it: {st.problem})")
        else:
            lines.append(f"{name}: {st.masked}{_limit_text(st)}")
    return "\n".join(lines)


def _budget_set_text(state: BudgetState) -> str:
    limit = format_usd(nano_to_usd(state.limit_nano))
    spent = format_usd(nano_to_usd(state.spent_nano))
    who = "This channel's" if state.scope == "channel" else "The workspace's"
    return (
        f"{who} monthly budget is now {limit}: {spent} spent so far in {state.month:%B %Y} "
        f"({state.percent}%, calendar month, UTC). At 80 % the channel is told once; at 100 % "
        "new chats are refused until the month turns or the limit rises."
    )


def _totals_line(t: UsageTotals) -> str:
    cost = format_usd(nano_to_usd(t.cost_nano))
    if t.computed_cost_chats:
        cost = f"≈{cost}"
    tokens = t.prompt_tokens + t.completion_tokens
    chats = f"{t.chats:,} chat" + ("" if t.chats == 1 else "s")
    extra = f", {t.unknown_cost_chats} of unknown cost" if t.unknown_cost_chats else ""
    return f"{cost} · {chats}{extra} · {tokens:,} tokens"


def render_costs(report: CostReport, ctx: Invocation, top: int = 10) -> str:
    s = report.summary
    where = "this channel" if report.scope == "channel" else "this workspace"
    t = s.totals
    budgets = (
        render_budget_states(report.budgets, now=report.now, channel_id=None)
        if report.scope == "workspace" and report.now is not None
        else None
    )
    if t.chats == 0 and t.failed == 0:
        empty = f"No spend in {where} for {report.window.label}."
        return f"{empty}\n{budgets}" if budgets else empty
    lines = [
        f"Spend in {where} for {report.window.label}: {_totals_line(t)} "
        f"({t.prompt_tokens:,} in / {t.completion_tokens:,} out)"
    ]
    if t.computed_cost_chats:
        lines.append(
            "≈ marks estimates computed from list prices where the provider reported none."
        )
    sections: list[tuple[str, list[tuple[str, UsageTotals]], bool]] = []
    if report.scope == "workspace":
        sections.append(("By channel", s.by_channel, False))
    sections.append(("By model", s.by_model, False))
    sections.append(("By user", s.by_user, True))
    for title, rows, is_user in sections:
        if not rows:
            continue
        lines.append(f"{title}:")
        for key, totals in rows[:top]:
            label = ctx.format_user(key) if is_user else f"`{key}`"
            lines.append(f"• {label} {_totals_line(totals)}")
        if len(rows) > top:
            lines.append(f"• … and {len(rows) - top} more")
    if budgets:
        lines.append(budgets)
    return "\n".join(lines)
