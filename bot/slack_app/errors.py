"""Reading Slack Web API failures: the short error code to show and log, whatever the body.

A 5xx from Slack (or a proxy in front of it) often has an HTML or plain-text body, so
``SlackApiError.response`` holds a string, not a dict; ``response.get`` would then raise
while routerbot is wording the error.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError


def error_code(exc: BaseException) -> str:
    """``channel_not_found``, ``http_503`` … for a Slack error; a short cause otherwise."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        data = getattr(response, "data", None)
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        status = getattr(response, "status_code", None)
        return f"http_{status}" if status else "unknown_error"
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return "Slack could not be reached"
    return type(exc).__name__
