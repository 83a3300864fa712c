"""The budget rules of SPEC §5 as integer arithmetic: which limits bind a chat, whether it may
start, how long its answer may be, and what it holds while it runs. No I/O: the guard
(:mod:`bot.core.spend.guard`) reads the limits under the lock and applies these.

For a chat whose prompt is estimated at ``P`` nano-USD (from its characters, see
:func:`estimate_prompt_tokens`) and whose model's output costs ``o`` nano-USD per 1M tokens,
with ``left_i = limit_i - spent_i - held_i`` for every limit ``i`` that applies and
``L = min_i left_i``::

    room       = floor((L - P) * 1e6 / o)                       answer tokens that fit
    admitted   = every spent_i < limit_i  and  room >= MIN_ANSWER_TOKENS
    allowance  = clamp(floor(L * 1e6 / (HOLD_SHARE * o)), ALLOWANCE_FLOOR_TOKENS, ceiling)
    max_tokens = min(room, allowance)                           sent as max_completion_tokens
    hold       = P + ceil(max_tokens * o / 1e6)                 <= L, by the choice of room

The provider stops the answer at ``max_tokens`` (reasoning tokens count inside it), so a
chat costs at most ``hold + (its real prompt cost - P)``: whatever the concurrency, each
limit's spend stays within ``limit + sum over its chats of max(0, real prompt cost - P)``.
``ceiling`` is the model's ``maxCompletionTokens`` from the settings file, else
:data:`ANSWER_CEILING_TOKENS`. A model whose output is free is bounded by its prompt alone;
a model without a known price cannot be bounded, and is refused while a limit applies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from adapters.base import ChatMessage
from bot.core.errors import BudgetExceeded
from bot.core.ports import EACH_USER, WORKSPACE_BUDGET, BudgetRow, Standing
from bot.core.spend.texts import BudgetState, refusal, too_close, unbounded

#: A chat is admitted only with room for this much answer: fewer tokens (about 190 words)
#: would cut nearly every answer short, after paying for the prompt.
MIN_ANSWER_TOKENS = 256
#: While enough is left, a chat may hold room for at least this many answer tokens ...
ALLOWANCE_FLOOR_TOKENS = 1_000
#: ... and otherwise a tenth of what is left, so one chat never holds a whole limit and
#: others are refused while it runs.
HOLD_SHARE = 10
#: The longest answer a chat under a limit asks for when the settings file names no
#: ``maxCompletionTokens`` for its model (most models answer up to 8,192 tokens or more).
ANSWER_CEILING_TOKENS = 8_192
#: Pessimistic about text: English averages about 4 characters a token, code and other
#: scripts fewer; the per-message overhead covers the chat template's role markers.
CHARS_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4
TOKENS_PER_REQUEST = 3

_MILLION = 1_000_000


def estimate_prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    chars = sum(len(m.content) for m in messages)
    return (
        math.ceil(chars / CHARS_PER_TOKEN)
        + TOKENS_PER_MESSAGE * len(messages)
        + (TOKENS_PER_REQUEST)
    )


def tokens_cost_nano(tokens: int, nano_per_1m: int) -> int:
    """What ``tokens`` cost at ``nano_per_1m``, rounded up (a bound, never an understatement)."""
    return -(-tokens * nano_per_1m // _MILLION)


@dataclass(frozen=True, slots=True)
class Ask:
    """What a chat asks of its limits.

    ``prompt_nano`` None: the model has no known price, so its cost cannot be bounded.
    ``output_nano_per_1m`` None: the worst case is ``prompt_nano`` itself (a fixed amount).
    """

    prompt_nano: int | None
    output_nano_per_1m: int | None = None
    ceiling_tokens: int = ANSWER_CEILING_TOKENS
    model: str = ""


@dataclass(frozen=True, slots=True)
class Admission:
    hold_nano: int
    #: The answer's cap (None: no cap because of the limits).
    max_tokens: int | None
    #: The limit with the least left: the one a capped answer's notice names.
    tightest: BudgetState
    #: Whether the limits made ``max_tokens`` shorter than the model's own ceiling.
    capped: bool


def binding(budgets: Sequence[BudgetRow], user_id: str) -> list[BudgetRow]:
    """The limits that bind ``user_id``: a person's own limit overrides the each-user one."""
    own = any(b.user_id == user_id and user_id for b in budgets)
    return [
        b
        for b in budgets
        if b.user_id in (WORKSPACE_BUDGET, user_id) or (b.user_id == EACH_USER and not own)
    ]


def state_of(budget: BudgetRow, standing: Standing, month: datetime, user_id: str) -> BudgetState:
    """Where ``budget`` stands, from the spend and holds of the scopes a chat meets."""
    if budget.user_id != WORKSPACE_BUDGET:
        scope, channel = "user", None
        spent, held = standing.user_spent, standing.user_held
    elif budget.channel_id == WORKSPACE_BUDGET:
        scope, channel = "workspace", None
        spent, held = standing.workspace_spent, standing.workspace_held
    else:
        scope, channel = "channel", budget.channel_id
        spent, held = standing.channel_spent, standing.channel_held
    return BudgetState(
        scope=scope,  # type: ignore[arg-type]
        channel_id=channel,
        limit_nano=budget.limit_nano,
        spent_nano=spent,
        reserved_nano=held,
        month=month,
        user_id=user_id if scope == "user" else None,
        each_user=budget.user_id == EACH_USER,
        budget_id=budget.id,
        set_by=budget.set_by,
    )


def admit(states: Sequence[BudgetState], ask: Ask) -> Admission:
    """Admit a chat against ``states`` (at least one), or raise :class:`BudgetExceeded` with
    the sentence that says which limit refused it and who can change that."""
    for state in states:
        if state.exhausted:
            raise BudgetExceeded(refusal(state, 0))
    tightest = min(states, key=lambda s: s.left_nano)
    left = tightest.left_nano
    if ask.prompt_nano is None:
        raise BudgetExceeded(unbounded(tightest, ask.model))
    prompt, price = ask.prompt_nano, ask.output_nano_per_1m
    if price is None or price == 0:
        # A fixed amount, or an answer that costs nothing: the prompt is the whole bound.
        if left <= 0 or prompt > left:
            raise BudgetExceeded(too_close(tightest, prompt))
        return Admission(prompt, None, tightest, capped=False)
    room = (left - prompt) * _MILLION // price if left > prompt else 0
    if room < MIN_ANSWER_TOKENS:
        raise BudgetExceeded(
            too_close(tightest, prompt + tokens_cost_nano(MIN_ANSWER_TOKENS, price))
        )
    share = left * _MILLION // (HOLD_SHARE * price)
    allowance = min(ask.ceiling_tokens, max(ALLOWANCE_FLOOR_TOKENS, share))
    max_tokens = min(room, allowance)
    hold = prompt + tokens_cost_nano(max_tokens, price)
    return Admission(hold, max_tokens, tightest, capped=max_tokens < ask.ceiling_tokens)
