"""The application commands of SPEC §2: ``chat``, ``models``, ``apikey``, ``costs``, ``budget``,
``help`` (and, from :mod:`bot.discord_app.governance`, ``prompt``, ``access``, ``audit``).
Each builds a core command from typed options and hands it to the :class:`Bridge`.

Discord sets ``default_permissions`` per top-level command, not per subcommand, so only the
all-admin groups (``apikey``, ``budget``) carry ``manage_guild``; ``models`` and ``costs``
mix member and admin actions. Either way the server-side check in the bridge decides.
"""

from __future__ import annotations

from typing import Any, Literal

import discord
from discord import app_commands
from pydantic import SecretStr

from bot.core import commands as c
from bot.core.errors import UsageError
from bot.core.text import clean_key, clean_text
from bot.discord_app.bridge import Bridge
from bot.discord_app.choices import catalogue_choices
from bot.discord_app.governance import Access, Prompt, audit_command
from bot.discord_app.modal import open_key_modal
from bot.discord_app.render import say

HELP_TEXT = """\
**routerbot** — governed, cost-visible LLM access.
• `/chat prompt:<text> [model:<id>] [file:<image, PDF or text>] [web] [effort]` — ask a \
model (web: let it search; effort: how hard it reasons); reply to the answer to continue, \
with files too
• `/models list` · `/models recommended` — allowed models (default marked) and prices
• `/models search words:<words>` · `/models info id:<id>` — find models the provider serves
• `/models add|remove|default id:<id>` — manage the allowlist (admins)
• `/apikey set` — paste the key in a private form · `/apikey status` · `/apikey clear` (admins)
• `/costs [period] [scope]` — this channel's spend; scope `me` your own and your limit; \
`workspace` by channel (admins)
• `/budget show|set|clear [channel] [user] [each_user]` — monthly limits for the server, this \
channel, a member, or everyone (admins)
• `/models default id:<id> channel:True` — this channel's default model (admins)
• `/prompt show|set|clear [channel]` — the system prompt chats send (setting it: admins)
• `/access show|channel|user` — who may chat (changing it: admins)
• `/audit [count]` — the latest admin changes (admins)"""

EMPTY_PROMPT = "The prompt is empty."

AppCommand = app_commands.Command[Any, ..., Any] | app_commands.Group


def _sentence(exc: UsageError) -> str:
    """The problem without the text-grammar usage line (Discord's options are typed)."""
    return exc.message.split(" Usage: ", 1)[0]


async def _validated(interaction: discord.Interaction, model_id: str) -> str | None:
    """The model id when well-formed; otherwise the member is told (ephemeral) and None."""
    try:
        return c.validate_model_id(clean_text(model_id).strip())
    except UsageError as exc:
        await say(interaction, _sentence(exc))
        return None


def build_commands(bridge: Bridge) -> list[AppCommand]:
    @app_commands.command(name="chat", description="Ask a model; the answer ends with its cost")
    @app_commands.describe(
        prompt="What to ask",
        model="A model from /models (default if empty)",
        file="An image, a PDF or a text file for the model to read",
        web="Let the model search the web (sources are listed under the answer)",
        effort="How hard the model reasons, for models that do",
    )
    @app_commands.guild_only()
    async def chat(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        model: app_commands.Range[str, 1, 200] | None = None,
        file: discord.Attachment | None = None,
        web: bool = False,
        effort: Literal["low", "medium", "high"] | None = None,
    ) -> None:
        if model is not None and (model := await _validated(interaction, model)) is None:
            return
        if not (prompt := clean_text(prompt).strip()):  # it held only control characters
            await say(interaction, EMPTY_PROMPT)
            return
        command = c.Chat(prompt=prompt, model=model, web=web, effort=effort)
        await bridge.chat(interaction, command, [file] if file is not None else [])

    @chat.autocomplete("model")
    async def chat_model(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await bridge.models.choices(bridge.ctx(interaction), clean_text(current))

    @app_commands.command(name="costs", description="What this channel (or server) has spent")
    @app_commands.describe(
        period="The window (default: this calendar month, UTC)",
        scope="channel: this channel; me: your own and your limit; workspace: by channel (admins)",
    )
    @app_commands.guild_only()
    async def costs(
        interaction: discord.Interaction,
        period: Literal["today", "week", "month", "30d", "all"] = "month",
        scope: Literal["channel", "workspace", "me"] = "channel",
    ) -> None:
        command = c.Costs(period=period, scope=scope)
        await bridge.run(interaction, command, ephemeral=scope != "channel")

    @app_commands.command(name="help", description="The routerbot commands, short")
    @app_commands.guild_only()
    async def help_(interaction: discord.Interaction) -> None:
        await say(interaction, HELP_TEXT)

    commands: list[AppCommand] = [
        chat,
        costs,
        help_,
        Models(bridge),
        ApiKey(bridge),
        Budget(bridge),
        Prompt(bridge),
        Access(bridge),
        audit_command(bridge),
    ]
    for command in commands:
        # Installed to servers only: a user-installed copy would have no server to bill.
        command.allowed_installs = app_commands.AppInstallationType(guild=True, user=False)
    return commands


@app_commands.guild_only()
class Models(app_commands.Group, name="models", description="The models this server may use"):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    @app_commands.command(name="list", description="Allowed models, prices, the default marked")
    async def list_(self, interaction: discord.Interaction) -> None:
        await self.bridge.run(interaction, c.ModelsList(), ephemeral=False)

    @app_commands.command(name="recommended", description="Recommended models and their prices")
    async def recommended(self, interaction: discord.Interaction) -> None:
        await self.bridge.run(interaction, c.ModelsRecommended(), ephemeral=False)

    @app_commands.command(name="search", description="Models the provider serves, by words")
    @app_commands.describe(words="Words in the model's id or name, e.g. claude sonnet")
    async def search(
        self, interaction: discord.Interaction, words: app_commands.Range[str, 1, 200]
    ) -> None:
        try:
            command = c.parse(f"/models search {words}")
        except UsageError as exc:
            await say(interaction, _sentence(exc))
            return
        await self.bridge.run(interaction, command, ephemeral=True)

    @app_commands.command(name="info", description="One model: prices, context, input kinds")
    @app_commands.describe(id="The model id, e.g. openai/gpt-5-mini")
    async def info(self, interaction: discord.Interaction, id: str) -> None:
        if (model_id := await _validated(interaction, id)) is not None:
            await self.bridge.run(interaction, c.ModelsInfo(model_id), ephemeral=True)

    @app_commands.command(name="add", description="Allow a model (admins)")
    @app_commands.describe(id="The model id, e.g. openai/gpt-5-mini")
    async def add(self, interaction: discord.Interaction, id: str) -> None:
        if (model_id := await _validated(interaction, id)) is not None:
            await self.bridge.run(interaction, c.ModelsAdd(model_id), ephemeral=True)

    @add.autocomplete("id")
    @info.autocomplete("id")
    async def catalogue_ids(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return catalogue_choices(self.bridge.service.catalogue, current)

    @app_commands.command(name="remove", description="Disallow a model (admins)")
    @app_commands.describe(id="The model id")
    async def remove(self, interaction: discord.Interaction, id: str) -> None:
        if (model_id := await _validated(interaction, id)) is not None:
            await self.bridge.run(interaction, c.ModelsRemove(model_id), ephemeral=True)

    @app_commands.command(name="default", description="Set the default model (admins)")
    @app_commands.describe(
        id="An allowed model id", channel="This channel's default, not the server's"
    )
    async def default(
        self, interaction: discord.Interaction, id: str, channel: bool = False
    ) -> None:
        if (model_id := await _validated(interaction, id)) is not None:
            command = c.ModelsDefault(model_id, channel=channel)
            await self.bridge.run(interaction, command, ephemeral=True)

    @remove.autocomplete("id")
    @default.autocomplete("id")
    async def allowed_ids(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.bridge.models.choices(self.bridge.ctx(interaction), clean_text(current))


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ApiKey(app_commands.Group, name="apikey", description="The API key that pays (admins)"):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    @app_commands.command(name="set", description="Set the key; leave `key` empty for a form")
    @app_commands.describe(key="Better left empty: a private form keeps it out of any message")
    async def set_(self, interaction: discord.Interaction, key: str | None = None) -> None:
        if key is None:
            await open_key_modal(self.bridge, interaction)
            return
        command = c.ApiKeySet(SecretStr(clean_key(key)))
        await self.bridge.run(interaction, command, ephemeral=True)

    @app_commands.command(name="status", description="The masked key and its remaining credit")
    async def status(self, interaction: discord.Interaction) -> None:
        await self.bridge.run(interaction, c.ApiKeyStatus(), ephemeral=True)

    @app_commands.command(name="clear", description="Remove the server's key")
    async def clear(self, interaction: discord.Interaction) -> None:
        await self.bridge.run(interaction, c.ApiKeyClear(), ephemeral=True)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Budget(app_commands.Group, name="budget", description="Monthly spend limits (admins)"):
    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    @app_commands.command(name="show", description="The limits and this month's spend")
    async def show(self, interaction: discord.Interaction) -> None:
        await self.bridge.run(interaction, c.BudgetShow(), ephemeral=True)

    @app_commands.command(name="set", description="Set a monthly limit in USD")
    @app_commands.describe(
        amount="USD per calendar month, e.g. 50 or 12.50",
        channel="Limit this channel instead of the whole server",
        user="Limit one member, everywhere in the server",
        each_user="Limit everyone without a limit of their own",
    )
    async def set_(
        self,
        interaction: discord.Interaction,
        amount: str,
        channel: bool = False,
        user: discord.User | None = None,
        each_user: bool = False,
    ) -> None:
        try:
            usd = c.parse_usd(clean_text(amount))
            scope = _scope(channel, user, each_user)
        except UsageError as exc:
            await say(interaction, _sentence(exc))
            return
        command = c.BudgetSet(usd, channel=scope[0], user=scope[1], each_user=scope[2])
        await self.bridge.run(interaction, command, ephemeral=True)

    @app_commands.command(name="clear", description="Remove a monthly limit")
    @app_commands.describe(
        channel="Clear this channel's limit instead of the server's",
        user="Clear one member's limit",
        each_user="Clear the limit of everyone without their own",
    )
    async def clear(
        self,
        interaction: discord.Interaction,
        channel: bool = False,
        user: discord.User | None = None,
        each_user: bool = False,
    ) -> None:
        try:
            scope = _scope(channel, user, each_user)
        except UsageError as exc:
            await say(interaction, _sentence(exc))
            return
        command = c.BudgetClear(channel=scope[0], user=scope[1], each_user=scope[2])
        await self.bridge.run(interaction, command, ephemeral=True)


def _scope(
    channel: bool, user: discord.User | None, each_user: bool
) -> tuple[bool, str | None, bool]:
    """A budget's scope from the typed options: at most one of them."""
    if channel + (user is not None) + each_user > 1:
        raise UsageError("Give one of channel, user and each_user.")
    return channel, str(user.id) if user is not None else None, each_user
