"""The one entry point of the core: every command and every follow-up from every front-end.

Text or a parsed command goes in, neutral replies come out. Every failure becomes one short
sentence: usage errors, permissions, provider errors, and, for anything unexpected, a generic
sentence (the traceback goes to the log, never to chat).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from adapters.errors import ProviderError
from bot.core import allowlist, audit, keys, people, permissions, policies
from bot.core import commands as c
from bot.core.catalogue.discovery import info_reply, search_reply
from bot.core.chat.attachments import Attachment
from bot.core.chat.richer import ChatExtras
from bot.core.errors import UserFacingError
from bot.core.messages import provider_sentence
from bot.core.ports import ConversationRef, is_database_outage
from bot.core.replies import (
    CostsReply,
    ErrorReply,
    Invocation,
    KeyPromptReply,
    Reply,
    TextReply,
)
from bot.core.service import ProviderService
from bot.core.spend import texts as spend_texts
from bot.core.spend.costs import costs_chart
from bot.core.text import clean_text

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


def _is_private(command: c.Command) -> bool:
    if isinstance(command, c.Costs):
        return command.scope != "channel"
    return not isinstance(command, c.Chat | c.ModelsList | c.ModelsRecommended)


class Dispatcher:
    def __init__(self, service: ProviderService) -> None:
        self.service = service

    async def run_text(self, ctx: Invocation, text: str) -> AsyncGenerator[Reply, None]:
        """Run a command as typed; the text is cleaned here like at every other edge."""
        try:
            command = c.parse(clean_text(text))
        except UserFacingError as exc:
            yield ErrorReply(exc.message, private=True)
            return
        async with aclosing(self.run(ctx, command)) as replies:
            async for reply in replies:
                yield reply

    async def run(
        self, ctx: Invocation, command: c.Command, *, anchors: Sequence[str] = ()
    ) -> AsyncGenerator[Reply, None]:
        """Run ``command``; ``anchors`` go to a chat (see :meth:`Chats.chat`)."""
        async with aclosing(self._guarded(self._run(ctx, command, anchors), command)) as replies:
            async for reply in replies:
                yield reply

    async def find_conversation(self, ctx: Invocation, anchor: str) -> ConversationRef | None:
        """The conversation that replies to platform message ``anchor`` continue, if any."""
        return await self.service.chats.find_conversation(ctx, anchor)

    async def conversation(self, ctx: Invocation, conversation_id: int) -> ConversationRef | None:
        return await self.service.chats.conversation(ctx, conversation_id)

    async def remember(self, ctx: Invocation, conversation_id: int, anchors: Sequence[str]) -> None:
        """Replies to these platform messages (posted after the answer was recorded) continue
        the conversation too."""
        await self.service.chats.attach_anchors(ctx, conversation_id, anchors)

    async def follow_up(
        self,
        ctx: Invocation,
        conversation: ConversationRef | None,
        text: str,
        *,
        anchors: Sequence[str] = (),
        attachments: Sequence[Attachment] = (),
    ) -> AsyncGenerator[Reply, None]:
        """Continue ``conversation`` (its model, its history) with ``text`` and the files
        attached to it; None starts one with the default model. Same replies and guarantees
        as a ``/chat``."""
        chat = c.Chat(prompt=text)
        extras = ChatExtras(attachments=tuple(attachments))
        replies = self.service.chats.chat(
            ctx, text, conversation=conversation, anchors=anchors, extras=extras
        )
        async with aclosing(self._guarded(replies, chat)) as guarded:
            async for reply in guarded:
                yield reply

    async def _guarded(
        self, replies: AsyncGenerator[Reply, None], command: c.Command
    ) -> AsyncGenerator[Reply, None]:
        try:
            # aclosing: when the front-end closes this stream early, the chat below is
            # closed at once too (and records itself), not whenever it is collected.
            async with aclosing(replies):
                async for reply in replies:
                    yield reply
        except UserFacingError as exc:
            yield ErrorReply(exc.message, private=exc.private or _is_private(command))
        except ProviderError as exc:
            yield ErrorReply(provider_sentence(exc), private=_is_private(command))
        except Exception as exc:
            log.exception("command %s failed", type(command).__name__)
            yield ErrorReply(failure_sentence(exc), private=True)

    async def _run(
        self, ctx: Invocation, command: c.Command, anchors: Sequence[str]
    ) -> AsyncGenerator[Reply, None]:
        s = self.service
        match command:
            case c.Help():
                yield TextReply(c.HELP_TEXT, private=True)
            case c.Chat(prompt=prompt, model=model):
                extras = ChatExtras(command.attachments, command.web, command.effort)
                replies = s.chats.chat(ctx, prompt, model, anchors=anchors, extras=extras)
                async with aclosing(replies) as chat:
                    async for reply in chat:
                        yield reply
            case c.ModelsList():
                entries = await s.allowlist.list_models(ctx)
                yield TextReply(allowlist.models_text(entries, s.catalogue))
            case c.ModelsRecommended():
                yield TextReply(allowlist.recommended_text(s.allowlist.recommended_models()))
            case c.ModelsSearch(words=words):
                entries = await s.allowlist.list_models(ctx)
                yield TextReply(await search_reply(s.catalogue, entries, words), private=True)
            case c.ModelsInfo(model_id=model_id):
                entries = await s.allowlist.list_models(ctx)
                yield TextReply(await info_reply(s.catalogue, entries, model_id), private=True)
            case c.ModelsAdd(model_id=model_id):
                entry = await s.allowlist.add_model(ctx, model_id)
                yield TextReply(allowlist.added_text(entry), private=True)
            case c.ModelsRemove(model_id=model_id):
                was_default = await s.allowlist.remove_model(ctx, model_id)
                yield TextReply(allowlist.removed_text(model_id, was_default), private=True)
            case c.ModelsDefault(model_id=model_id, channel=channel):
                changed = await s.allowlist.set_default_model(ctx, model_id, channel=channel)
                text = allowlist.default_text(model_id, channel=channel, changed=changed)
                yield TextReply(text, private=True)
            case c.ApiKeyModal(provider=provider):
                permissions.require_admin(s.settings, ctx, "set the API key")
                yield KeyPromptReply(provider)
            case c.ApiKeySet(key=key, provider=provider):
                status = await s.keys.set_key(ctx, key, provider)
                yield TextReply(keys.saved_text(status), private=True)
            case c.ApiKeyStatus():
                yield TextReply(keys.status_text(await s.keys.key_status(ctx)), private=True)
            case c.ApiKeyClear(provider=provider):
                yield TextReply(
                    keys.cleared_text(await s.keys.clear_key(ctx, provider)), private=True
                )
            case c.Costs(period=period, scope=scope):
                report = await s.spend.costs(ctx, period, scope)
                yield CostsReply(
                    spend_texts.render_costs(report, ctx),
                    private=scope != "channel",
                    chart=costs_chart(report),
                )
            case c.BudgetShow():
                overview = await s.spend.budget_overview(ctx)
                text = spend_texts.render_budget_states(
                    overview.states,
                    now=overview.now,
                    channel_id=overview.channel_id,
                    format_channel=ctx.format_channel,
                    format_user=ctx.format_user,
                    me=ctx.user_id,
                )
                yield TextReply(text, private=True)
            case c.BudgetSet(amount_usd=amount, channel=channel, user=user, each_user=each):
                state = await s.spend.set_budget(
                    ctx, amount, channel=channel, user=user, each_user=each
                )
                yield TextReply(spend_texts.budget_set_text(state, ctx.format_user), private=True)
            case c.BudgetClear(channel=channel, user=user, each_user=each):
                removed = await s.spend.clear_budget(
                    ctx, channel=channel, user=user, each_user=each
                )
                person = ctx.format_user(people.user_id(ctx, user)) if user else None
                text = spend_texts.budget_cleared_text(
                    removed, channel=channel, person=person, each_user=each
                )
                yield TextReply(text, private=True)
            case c.PromptShow():
                yield TextReply(policies.prompt_text(await s.policies.policy(ctx)), private=True)
            case c.PromptSet(text=prompt, channel=channel):
                await s.policies.set_prompt(ctx, prompt, channel=channel)
                text = policies.prompt_changed_text(set_=True, channel=channel, changed=True)
                yield TextReply(text, private=True)
            case c.PromptClear(channel=channel):
                changed = await s.policies.set_prompt(ctx, None, channel=channel)
                text = policies.prompt_changed_text(set_=False, channel=channel, changed=changed)
                yield TextReply(text, private=True)
            case c.AccessShow():
                access = await s.policies.access(ctx)
                yield TextReply(policies.access_text(access, ctx), private=True)
            case c.AccessChannel(on=on):
                changed = await s.policies.set_channel_access(ctx, on=on)
                text = policies.access_changed_text(who="this channel", on=on, changed=changed)
                yield TextReply(text, private=True)
            case c.AccessUser(user=user, on=on):
                changed = await s.policies.set_user_access(ctx, user, on=on)
                who = ctx.format_user(people.user_id(ctx, user))
                text = policies.access_changed_text(who=who, on=on, changed=changed)
                yield TextReply(text, private=True)
            case c.AuditShow(count=count):
                rows = await s.audit.latest(ctx, count)
                yield TextReply(audit.audit_text(rows, ctx), private=True)
