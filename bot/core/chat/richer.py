"""What a chat adds to its text: attached files, web search, reasoning effort.

:func:`plan` decides, before anything is sent or held, what goes to the model: images as
image parts and PDFs as file parts when the model's catalogue entry accepts that input kind,
text files inlined into the message; OpenRouter's web search tool for models that call tools;
``reasoning.effort`` for models that reason. Where the model cannot, the chat is refused with
one sentence naming the allowlisted models that can. Where the catalogue does not know the
model (no snapshot yet, another provider), the request goes as asked and the provider decides.

The :class:`Plan` also says what these add to the budget estimate (see README, Budgets):

* each image ``width × height / 750`` prompt tokens (85 to 2,500); each PDF page 3,000;
  text files as the message's own characters;
* web search: at most :data:`WEB_MAX_USES` searches of :data:`WEB_MAX_RESULTS` results, each
  result about :data:`WEB_RESULT_TOKENS` prompt tokens, each search at the catalogue's
  ``pricing.web_search`` (else Exa's $4 per 1,000 results);
* reasoning: :data:`REASONING_TOKENS` more completion tokens for the effort asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from adapters.base import (
    ChatMessage,
    ContentPart,
    Effort,
    FilePart,
    ImagePart,
    ModelPricing,
    Usage,
    WebSearch,
)
from adapters.catalogue import CatalogueEntry
from adapters.registry import display_name
from bot.core.catalogue import Catalogue
from bot.core.catalogue.sync import PROVIDER
from bot.core.chat.attachments import Attachment, Inspected, inspect_all
from bot.core.deps import Deps
from bot.core.errors import UserFacingError
from bot.core.ports import AllowedModelRow
from bot.core.pricing import settle_cost

__all__ = [
    "EXA_PRICE_PER_RESULT",
    "REASONING_TOKENS",
    "WEB_MAX_RESULTS",
    "WEB_MAX_USES",
    "WEB_RESULT_TOKENS",
    "ChatExtras",
    "Plan",
    "plan",
]

WEB_MAX_RESULTS = 5
WEB_MAX_USES = 3
#: OpenRouter's Exa engine (used where a model has no native search): $4 per 1,000 results.
EXA_PRICE_PER_RESULT = Decimal("0.004")
#: Prompt tokens one search result adds (Exa's excerpts run 2,000–4,000 characters).
WEB_RESULT_TOKENS = 1000
#: Completion tokens a reasoning effort may spend beyond the answer itself.
REASONING_TOKENS: dict[str, int] = {"low": 1024, "medium": 4096, "high": 16384}
#: At most this many model ids are named in a refusal.
NAMED_MODELS = 5


class CannotTake(UserFacingError):
    """The chat's model cannot take what was asked (a file kind, web search, an effort)."""


@dataclass(frozen=True, slots=True)
class ChatExtras:
    """What the asker added to the prompt: files (downloaded by the front-end), ``--web``,
    ``--effort``."""

    attachments: tuple[Attachment, ...] = ()
    web: bool = False
    effort: Effort | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """What goes with the prompt, and what it adds to the estimate."""

    files: tuple[Inspected, ...] = ()
    web_search: WebSearch | None = None
    effort: Effort | None = None
    #: USD per search (None: no search, or no known price).
    search_price: Decimal | None = None

    def user_message(self, prompt: str) -> ChatMessage:
        """The newest message: the prompt, text files inlined after it, the other files as
        content parts."""
        text = prompt
        parts: list[ContentPart] = []
        for file in self.files:
            name = file.attachment.name
            if file.kind == "text":
                text += f"\n\n--- {name} ---\n{file.text}\n--- end of {name} ---"
            elif file.kind == "image":
                parts.append(ImagePart(file.media_type, file.attachment.data))
            else:
                parts.append(FilePart(name, file.media_type, file.attachment.data))
        return ChatMessage(role="user", content=text, parts=tuple(parts))

    def stored_prompt(self, prompt: str) -> str:
        """The prompt as the conversation's history keeps it: a reference to each file."""
        if not self.files:
            return prompt
        return prompt + "\n" + "\n".join(file.reference for file in self.files)

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens beyond the message text: images, PDF pages, search results."""
        searched = (
            self.web_search.max_uses * self.web_search.max_results * WEB_RESULT_TOKENS
            if self.web_search is not None
            else 0
        )
        return sum(file.tokens for file in self.files) + searched

    @property
    def completion_tokens(self) -> int:
        return REASONING_TOKENS[self.effort] if self.effort is not None else 0

    def pricing(self, pricing: ModelPricing) -> ModelPricing:
        """``pricing`` with the price per search, so a computed cost includes the searches."""
        if self.web_search is None:
            return pricing
        return dataclasses.replace(pricing, web_search_per_request=self.search_price)

    def prompt_nano(self, pricing: ModelPricing) -> int:
        """What the additions to the prompt (files, search results) and the searches may cost
        at most: the part of a chat's worst case that its answer's cap does not bound."""
        searches = self.web_search.max_uses if self.web_search is not None else 0
        usage = Usage(prompt_tokens=self.prompt_tokens, web_search_requests=searches)
        return settle_cost(usage, self.pricing(pricing)).nano or 0

    def estimate_nano(self, pricing: ModelPricing) -> int:
        """What the additions may cost at most, beyond the text's own estimate."""
        searches = self.web_search.max_uses if self.web_search is not None else 0
        usage = Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            web_search_requests=searches,
        )
        return settle_cost(usage, self.pricing(pricing)).nano or 0


NO_EXTRAS = Plan()


async def plan(
    deps: Deps, *, workspace_id: int, model: AllowedModelRow, extras: ChatExtras | None
) -> Plan:
    """What goes with the prompt to ``model``; raises a UserFacingError (one sentence) when
    the model cannot take it or a file is refused. Nothing has been sent or held yet."""
    if extras is None or extras == ChatExtras():
        return NO_EXTRAS
    catalogue = deps.catalogue if model.provider == PROVIDER else None
    entry = catalogue.entry(model.model_id) if catalogue is not None else None
    files = tuple(await inspect_all(extras.attachments))
    kinds = {file.kind for file in files}
    if "image" in kinds and _lacks(entry, "image", inputs=True):
        await _refuse(deps, workspace_id, model, "does not take images", _DO, _takes("image"))
    if "pdf" in kinds and _lacks(entry, "file", inputs=True):
        await _refuse(deps, workspace_id, model, "does not take PDF files", _DO, _takes("file"))
    if extras.effort is not None and _lacks(entry, "reasoning", inputs=False):
        problem = "has no reasoning effort to set"
        await _refuse(deps, workspace_id, model, problem, _DO, _supports("reasoning"))
    web_search, price = None, None
    if extras.web:
        if model.provider != PROVIDER:
            raise CannotTake(
                f"Web search works only with {display_name(PROVIDER)} models; "
                f"`{model.model_id}` is served by {display_name(model.provider)}."
            )
        if _lacks(entry, "tools", inputs=False):
            problem = "cannot call tools, so it cannot search the web"
            await _refuse(deps, workspace_id, model, problem, _CAN, _supports("tools"))
        web_search = WebSearch(max_results=WEB_MAX_RESULTS, max_uses=WEB_MAX_USES)
        listed = entry.pricing.web_search_per_request if entry is not None else None
        price = listed if listed is not None else EXA_PRICE_PER_RESULT * WEB_MAX_RESULTS
    return Plan(files, web_search, extras.effort, price)


Able = Callable[[CatalogueEntry], bool]
#: How a refusal says "models that do / no model does".
_DO, _CAN = ("do", "does"), ("can", "can")


def _takes(modality: str) -> Able:
    return lambda entry: modality in entry.input_modalities


def _supports(parameter: str) -> Able:
    return lambda entry: parameter in entry.supported_parameters


def _lacks(entry: CatalogueEntry | None, what: str, *, inputs: bool) -> bool:
    """Whether the catalogue says the model lacks ``what``. A model the catalogue does not
    know, or lists no capabilities for, lacks nothing: the provider decides."""
    if entry is None:
        return False
    known = entry.input_modalities if inputs else entry.supported_parameters
    return bool(known) and what not in known


async def _refuse(
    deps: Deps,
    workspace_id: int,
    model: AllowedModelRow,
    problem: str,
    verbs: tuple[str, str],
    able: Able,
) -> None:
    names = await _able_models(deps, workspace_id, able)
    if names:
        listed = ", ".join(f"`{name}`" for name in names[:NAMED_MODELS])
        hint = f"allowlisted models that {verbs[0]}: {listed} (ask one of them with --model <id>)"
    else:
        hint = f"no model on this workspace's allowlist {verbs[1]} (an admin can add one)"
    raise CannotTake(f"`{model.model_id}` {problem}; {hint}. Nothing was sent.")


def cannot_at_provider(model_id: str, feature: str) -> str:
    """The provider refused a request the catalogue did not rule out (it did not know the
    model's capabilities): no endpoint of the model supports ``feature``."""
    return (
        f"No provider serving `{model_id}` supports {feature}; ask a model that does "
        "(/models info <id> lists a model's input kinds)."
    )


async def _able_models(deps: Deps, workspace_id: int, able: Able) -> list[str]:
    catalogue: Catalogue | None = deps.catalogue
    if catalogue is None:
        return []
    async with deps.store.transaction() as tx:
        rows = await tx.allowlist.all(workspace_id)
    names = []
    for row in rows:
        entry = catalogue.entry(row.model_id) if row.provider == PROVIDER else None
        if entry is not None and row.unavailable_reason is None and able(entry):
            names.append(row.model_id)
    return names
