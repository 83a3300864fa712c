"""Slack front-end (slack-bolt, async): slash commands, streamed answers, the key modal, OAuth,
and the AI app (direct messages in the Messages tab, Slack's Stop, the Home tab, charts).

Start it with ``routerbot slack`` (:func:`run_slack`), or embed it with :func:`serve_slack`.
The app manifest to create the Slack app from is ``manifest.yaml`` beside this file.
"""

from bot.slack_app.app import SlackFrontend, slack_configured, slack_mode
from bot.slack_app.server import run_slack, serve_slack

__all__ = ["SlackFrontend", "run_slack", "serve_slack", "slack_configured", "slack_mode"]
