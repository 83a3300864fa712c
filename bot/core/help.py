"""The words of the grammar for people: each command's usage line and the ``/help`` text."""

from __future__ import annotations

from bot.core.chat.grammar import CHAT_USAGE
from bot.core.errors import UsageError
from bot.core.policy_commands import USAGE as POLICY_USAGE

USAGE = {
    "models": (
        "Usage: /models [list | recommended | search <words> | info <id> | add <id> | "
        "remove <id> | default <id> [--channel]]"
    ),
    "chat": CHAT_USAGE,
    "apikey": "Usage: /apikey [set <key> | status | clear]",
    "costs": "Usage: /costs [today|week|month|30d|all] or /costs workspace|me [period]",
    "help": "Usage: /help",
    **POLICY_USAGE,
}

HELP_TEXT = """\
routerbot commands:
• /chat [--model <id>] <prompt> — ask a model; replies continue the conversation
• /chat --web <prompt> · /chat --effort low|medium|high <prompt> — let it search the web, \
set how hard it reasons; attach images, PDFs or text files to a mention or reply
• /models — the models this workspace may use (default marked)
• /models recommended — recommended models and their prices
• /models search <words> · /models info <id> — find models the provider serves today
• /models add|remove|default <id> — manage the allowlist (admins)
• /apikey set <key> · /apikey status · /apikey clear — the key that pays (admins)
• /costs [today|week|month|30d|all] — this channel's spend
• /costs workspace [period] — spend by channel (admins)
• /costs me [period] — your own spend and your monthly limit
• /budget · /budget set <usd> [--channel | --user <user> | --each-user] · /budget clear […] \
— monthly limits for the workspace, this channel, a person, everyone (admins)
• /models default <id> --channel — this channel's default model (admins)
• /prompt · /prompt set [--channel] <text> · /prompt clear [--channel] — the system prompt \
(setting it: admins)
• /access · /access channel on|off · /access user <user> on|off — who may chat (changing it: \
admins)
• /audit [n] — the latest admin changes (admins)"""


def usage_error(word: str, problem: str | None = None) -> UsageError:
    """The usage of ``/word``, after what was wrong with the command if that is known."""
    text = USAGE[word]
    return UsageError(f"{problem} {text}" if problem else text)
