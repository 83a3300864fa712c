"""The suggested prompts of routerbot's Messages tab: the ``SLACK_SUGGESTED_PROMPTS`` setting,
else defaults about the workspace's models and spend that routerbot answers itself (a
``/models`` or ``/costs`` sent as a message runs that command), and two that ask a model.

``manifest.yaml`` lists the same defaults, which Slack shows before the app sets any.
"""

from __future__ import annotations

from bot.config import Settings, SuggestedPrompt

TITLE = "Ask a model, or see what you can use and spend"

DEFAULT_PROMPTS: tuple[SuggestedPrompt, ...] = (
    SuggestedPrompt(title="Which models can I use?", message="/models"),
    SuggestedPrompt(title="What have I spent here?", message="/costs month"),
    SuggestedPrompt(
        title="Explain something simply",
        message="Explain a concept from my work in plain words, with one example. "
        "Ask me which concept first.",
    ),
    SuggestedPrompt(
        title="Tighten my writing",
        message="Make the text I send next clearer and shorter, keeping its meaning. "
        "Ask me for the text first.",
    ),
)


def suggested_prompts(settings: Settings) -> list[dict[str, str]]:
    """The prompts to set, as Slack's API takes them (empty: set none)."""
    prompts = settings.slack_suggested_prompts
    chosen = DEFAULT_PROMPTS if prompts is None else tuple(prompts)
    return [{"title": p.title, "message": p.message} for p in chosen[:4]]
