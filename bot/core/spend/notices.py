"""Budget notices as replies (SPEC §5): who hears that a limit reached 80 % or 100 %, in what
words, and the notice under an answer that the limits cut short.

Who hears what:

* a workspace or channel limit at 80 %: a line under the answer that crossed it (in the
  channel, as before); at 100 %: a message of its own in the channel, since from then on
  everyone's chats there are refused;
* a person's limit (their own or the each-user one): that person, privately;
* and the admin who set the limit, by direct message, at 80 % and at 100 %.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.format import format_usd
from bot.core.periods import next_month_start
from bot.core.pricing import nano_to_usd
from bot.core.replies import Invocation, Notice
from bot.core.spend.guard import Crossing
from bot.core.spend.texts import BudgetState, notice


def _usd(nano: int) -> str:
    return format_usd(nano_to_usd(nano))


def _spent_in(state: BudgetState) -> str:
    return f"{_usd(state.spent_nano)} spent in {state.month:%B %Y}, UTC"


def _turn(state: BudgetState) -> str:
    nxt = next_month_start(state.month)
    return f"{nxt.day} {nxt:%B} (UTC)"


def capped_notice(state: BudgetState, max_tokens: int) -> str:
    """Under an answer the provider stopped at the cap the limits set."""
    change = "/budget set --user" if state.scope == "user" else "/budget set"
    return (
        f"⚠ The answer stopped at {max_tokens:,} tokens to stay within {state.whose()} "
        f"{_usd(state.limit_nano)} monthly budget ({_usd(max(state.left_nano, 0))} was left "
        f"for chats starting then); an admin can raise the limit with {change}."
    )


def person_notice(state: BudgetState) -> str:
    """To the person whose own (or each-person) limit reached 80 % or 100 %."""
    limit = f"your {_usd(state.limit_nano)}"
    if state.each_user:
        limit = f"the {_usd(state.limit_nano)} each-person"
    if state.exhausted:
        return (
            f"⚠ You have used {limit} monthly budget ({_spent_in(state)}); your new chats are "
            f"refused until {_turn(state)} or an admin raises it."
        )
    return f"⚠ You have used {state.percent}% of {limit} monthly budget ({_spent_in(state)})."


def _limit_name(state: BudgetState, ctx: Invocation) -> str:
    limit = _usd(state.limit_nano)
    if state.scope == "workspace":
        return f"the workspace's {limit} monthly budget"
    if state.scope == "channel":
        return f"the {limit} monthly budget of channel {ctx.format_channel(state.channel_id or '')}"
    person = ctx.format_user(state.user_id or "")
    if state.each_user:
        return f"the {limit} each-person monthly budget, for {person}"
    return f"{person}'s {limit} monthly budget"


def admin_notice(state: BudgetState, ctx: Invocation) -> str:
    """To the admin who set the limit."""
    name = _limit_name(state, ctx)
    if state.exhausted:
        return (
            f"⚠ A budget you set is used up: {name} ({_spent_in(state)}). Chats it covers are "
            f"refused until {_turn(state)} unless it is raised with /budget set."
        )
    return f"⚠ A budget you set has reached {state.percent}%: {name} ({_spent_in(state)})."


def notice_replies(
    crossings: Sequence[Crossing], ctx: Invocation
) -> tuple[list[str], list[Notice]]:
    """The lines to put under the answer, and the notices to deliver on their own."""
    inline: list[str] = []
    separate: list[Notice] = []
    for crossing in crossings:
        state = crossing.state
        if state.scope == "user":
            separate.append(Notice(person_notice(state), "asker"))
        elif crossing.level == 80:
            inline.append(notice(state))
        else:
            separate.append(Notice(notice(state), "channel"))
        if state.set_by:
            separate.append(Notice(admin_notice(state, ctx), "direct", user_id=state.set_by))
    return inline, separate
