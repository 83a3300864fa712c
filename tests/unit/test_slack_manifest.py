"""The Slack app manifest validates against Slack's manifest schema as far as it is published.

Slack publishes no JSON Schema for app manifests. What it does publish is the manifest's type
in its own SDK: ``Manifest`` in ``@slack/web-api`` (``packages/web-api/src/types/request/
manifest.ts`` of slackapi/node-slack-sdk, as of commit 4322e14f, 2026-08), with the field
limits of the manifest reference in its doc comments, and the bot scopes and events as string
unions. :data:`SCHEMA` is that type transcribed into JSON Schema (nested objects closed, so a
misspelt key fails). Two names postdate the SDK's lists and are added from Slack's reference
pages: the scope ``assistant:write`` (docs.slack.dev/reference/scopes/assistant.write) and the
event ``agent_session_stopped`` (docs.slack.dev/reference/events/agent_session_stopped).

On top of the schema: what routerbot itself needs (its scopes are ``BOT_SCOPES``, the events
its listeners handle are subscribed, each message event has its history scope) and the
suggested prompts are the ones the app sets by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from bot.slack_app.app import BOT_SCOPES
from bot.slack_app.prompts import DEFAULT_PROMPTS

MANIFEST = Path(__file__).resolve().parents[2] / "bot" / "slack_app" / "manifest.yaml"


def _names(text: str) -> list[str]:
    return text.split()


BOT_SCOPE_NAMES = _names("""
app_mentions:read bookmarks:read bookmarks:write calls:read calls:write channels:history
channels:join channels:manage channels:read channels:write.invites channels:write.topic
chat:write chat:write.customize chat:write.public commands conversations.connect:manage
conversations.connect:read conversations.connect:write datastore:read datastore:write
dnd:read emoji:read files:read files:write groups:history groups:read groups:write
groups:write.invites groups:write.topic im:history im:read im:write incoming-webhook
links.embed:write links:read links:write metadata.message:read mpim:history mpim:read
mpim:write mpim:write.invites mpim:write.topic none pins:read pins:write reactions:read
reactions:write reminders:read reminders:write remote_files:read remote_files:share
remote_files:write team.billing:read team.preferences:read team:read tokens.basic
triggers:read triggers:write usergroups:read usergroups:write users.profile:read users:read
users:read.email users:write workflow.steps:execute
assistant:write
""")

EVENT_NAMES = _names("""
app_context_changed app_home_opened app_mention app_rate_limited app_requested
app_uninstalled assistant_thread_context_changed assistant_thread_started call_rejected
channel_archive channel_created channel_deleted channel_history_changed channel_id_changed
channel_left channel_rename channel_shared channel_unarchive channel_unshared dnd_updated
dnd_updated_user email_domain_changed emoji_changed entity_details_requested file_change
file_comment_added file_comment_deleted file_comment_edited file_created file_deleted
file_public file_shared file_unshared grid_migration_finished grid_migration_started
group_archive group_close group_deleted group_history_changed group_left group_open
group_rename group_unarchive im_close im_created im_history_changed im_open invite_requested
link_shared member_joined_channel member_left_channel message message.app_home
message.channels message.groups message.im message.mpim message_metadata_deleted
message_metadata_posted message_metadata_updated pin_added pin_removed reaction_added
reaction_removed resources_added resources_removed scope_denied scope_granted
shared_channel_invite_accepted shared_channel_invite_approved shared_channel_invite_declined
shared_channel_invite_received star_added star_removed subteam_created
subteam_members_changed subteam_self_added subteam_self_removed subteam_updated
team_access_granted team_access_revoked team_domain_change team_join team_rename
tokens_revoked url_verification user_change user_huddle_changed user_profile_changed
user_resource_denied user_resource_granted user_resource_removed user_status_changed
workflow_deleted workflow_published workflow_step_deleted workflow_step_execute
workflow_unpublished
agent_session_stopped
""")


def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}
_HTTPS = {"type": "string", "pattern": r"^https://"}
_PROMPTS = {
    "type": "array",
    "maxItems": 4,
    "items": _closed({"title": _STRING, "message": _STRING}, ("title", "message")),
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["display_information"],
    "properties": {
        "_metadata": _closed(
            {"major_version": {"enum": [1, 2]}, "minor_version": {"type": "integer"}}
        ),
        "display_information": _closed(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 35},
                "description": {"type": "string", "maxLength": 140},
                "long_description": {"type": "string", "minLength": 175, "maxLength": 4000},
                "background_color": {
                    "type": "string",
                    "pattern": r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
                },
            },
            ("name",),
        ),
        "features": _closed(
            {
                "agent_view": _closed(
                    {
                        "agent_description": {"type": "string", "maxLength": 300},
                        "suggested_prompts": _PROMPTS,
                        "actions": {
                            "type": "array",
                            "items": _closed(
                                {"name": _STRING, "description": _STRING}, ("name", "description")
                            ),
                        },
                    }
                ),
                "assistant_view": _closed(
                    {"assistant_description": _STRING, "suggested_prompts": _PROMPTS},
                    ("assistant_description",),
                ),
                "app_home": _closed(
                    {
                        "home_tab_enabled": _BOOL,
                        "messages_tab_enabled": _BOOL,
                        "messages_tab_read_only_enabled": _BOOL,
                    }
                ),
                "bot_user": _closed(
                    {
                        "display_name": {
                            "type": "string",
                            "maxLength": 80,
                            "pattern": r"^[a-z0-9._-]+$",
                        },
                        "always_online": _BOOL,
                    },
                    ("display_name",),
                ),
                "shortcuts": {"type": "array", "maxItems": 10},
                "slash_commands": {
                    "type": "array",
                    "maxItems": 50,
                    "items": _closed(
                        {
                            "command": {"type": "string", "pattern": "^/", "maxLength": 32},
                            "description": {"type": "string", "maxLength": 2000},
                            "should_escape": _BOOL,
                            "url": _HTTPS,
                            "usage_hint": {"type": "string", "maxLength": 1000},
                        },
                        ("command", "description"),
                    ),
                },
                "unfurl_domains": {"type": "array", "maxItems": 5, "items": _STRING},
            }
        ),
        "oauth_config": _closed(
            {
                "redirect_urls": {"type": "array", "maxItems": 1000, "items": _HTTPS},
                "scopes": _closed(
                    {
                        "bot": {
                            "type": "array",
                            "maxItems": 255,
                            "uniqueItems": True,
                            "items": {"enum": BOT_SCOPE_NAMES},
                        },
                        "user": {"type": "array", "maxItems": 255},
                        "bot_optional": {"type": "array", "items": {"enum": BOT_SCOPE_NAMES}},
                        "user_optional": {"type": "array"},
                    }
                ),
                "token_management_enabled": _BOOL,
            }
        ),
        "settings": _closed(
            {
                "allowed_ip_address_ranges": {"type": "array", "maxItems": 50},
                "event_subscriptions": _closed(
                    {
                        "request_url": _HTTPS,
                        "bot_events": {
                            "type": "array",
                            "maxItems": 100,
                            "uniqueItems": True,
                            "items": {"enum": EVENT_NAMES},
                        },
                        "user_events": {"type": "array", "maxItems": 100},
                        "metadata_subscriptions": {"type": "array", "minItems": 1, "maxItems": 20},
                    }
                ),
                "incoming_webhooks": _closed({"incoming_webhooks_enabled": _BOOL}),
                "interactivity": _closed(
                    {
                        "is_enabled": _BOOL,
                        "request_url": _HTTPS,
                        "message_menu_options_url": _HTTPS,
                    },
                    ("is_enabled",),
                ),
                "org_deploy_enabled": _BOOL,
                "socket_mode_enabled": _BOOL,
                "token_rotation_enabled": _BOOL,
                "function_runtime": _STRING,
            }
        ),
        "functions": {"type": "object"},
    },
}


def _manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(data, dict)
    return data


def test_the_manifest_validates_against_slacks_published_manifest_type() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(_manifest(), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_the_schema_catches_what_slack_would_refuse() -> None:
    manifest = _manifest()
    broken = [
        {**manifest, "features": {**manifest["features"], "agent_veiw": {}}},
        {
            **manifest,
            "features": {
                **manifest["features"],
                "agent_view": {"suggested_prompts": [{"title": "t", "message": "m"}] * 5},
            },
        },
        {
            **manifest,
            "oauth_config": {"scopes": {"bot": ["assistant:writes"]}},
        },
    ]
    for candidate in broken:
        errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(candidate))
        assert errors, candidate


def test_the_manifest_asks_for_what_routerbot_uses() -> None:
    manifest = _manifest()
    features, settings = manifest["features"], manifest["settings"]
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    events = settings["event_subscriptions"]["bot_events"]
    assert sorted(scopes) == sorted(BOT_SCOPES)
    # An AI app: the agent view (not the retiring assistant view), its scope and events.
    assert "agent_view" in features and "assistant_view" not in features
    assert features["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": False,
    }
    for event in (
        "agent_session_stopped",
        "app_home_opened",
        "assistant_thread_started",
        "assistant_thread_context_changed",
        "message.im",
        "app_mention",
    ):
        assert event in events, event
    needs = {
        "message.im": "im:history",
        "message.channels": "channels:history",
        "message.groups": "groups:history",
        "app_mention": "app_mentions:read",
    }
    for event, scope in needs.items():
        if event in events:
            assert scope in scopes, (event, scope)
    for scope in ("assistant:write", "files:write", "files:read", "chat:write"):
        assert scope in scopes
    # The prompts Slack shows before the app has set any are the app's defaults.
    assert features["agent_view"]["suggested_prompts"] == [
        {"title": p.title, "message": p.message} for p in DEFAULT_PROMPTS
    ]
