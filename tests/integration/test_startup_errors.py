"""Start-up with a broken file: routerbot stops with one line that names the file and the
problem (exit status 2), never a bare exception or a variable that was not set."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.pricing import ModelSettings, ModelSettingsError
from storage.crypto import generate_key
from tests.fakes.openrouter import DEFAULT_KEY, FakeOpenRouter
from tests.integration.test_console import console_env, run_console

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenRouter]:
    async with FakeOpenRouter() as server:
        yield server


async def stops(env: dict[str, str], cwd: Path) -> str:
    out, err, code = await run_console(env, ["/models"], cwd)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    return line


def settings_json(pricing: dict[str, object]) -> str:
    return json.dumps({"version": 1, "pricing": {"openrouter": pricing}})


async def test_a_settings_file_with_a_bad_byte_is_named(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    bad = tmp_path / "models.json"
    bad.write_bytes(
        settings_json({"a/caf-X": {"inputCostPer1M": 1, "outputCostPer1M": 1}})
        .replace("X", "\udce9")
        .encode("utf-8", "surrogateescape")
    )
    line = await stops(console_env(tmp_path, fake, ROUTERBOT_MODEL_SETTINGS=str(bad)), tmp_path)
    assert str(bad) in line
    assert "not UTF-8 text (line 1, column 50: byte 0xe9)" in line


@pytest.mark.parametrize(
    ("model_id", "where"),
    [
        ("openai/gpt 4o", "pricing.openrouter.openai/gpt 4o"),
        ("-dash/first", "pricing.openrouter.-dash/first"),
    ],
)
def test_a_recommended_id_no_command_could_name_is_refused(
    tmp_path: Path, model_id: str, where: str
) -> None:
    path = tmp_path / "models.json"
    path.write_text(settings_json({model_id: {"inputCostPer1M": 1, "outputCostPer1M": 1}}))
    with pytest.raises(ModelSettingsError) as refused:
        ModelSettings.load(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: field {where}: ")
    assert f"`{model_id}` is not a model id" in message


def test_model_defaults_ids_are_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    data = json.loads(settings_json({"a/b": {"inputCostPer1M": 1, "outputCostPer1M": 1}}))
    data["modelDefaults"] = {"openrouter": {"a b": {"temperature": 1}}}
    path.write_text(json.dumps(data))
    with pytest.raises(ModelSettingsError, match=r"field modelDefaults\.openrouter\.a b: "):
        ModelSettings.load(path)


def test_the_shipped_settings_file_is_valid() -> None:
    assert ModelSettings.load(REPO / "defaultModelSettings.json").recommended()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not a fernet key\n", "does not hold a valid Fernet key"),
        (b"\xff\xfe" + generate_key().encode(), "byte 0xff at offset 0 is not ASCII"),
        (b"\n", "is empty"),
    ],
)
async def test_a_corrupt_generated_key_file_is_named_not_the_variable(
    fake: FakeOpenRouter, tmp_path: Path, content: bytes, problem: str
) -> None:
    key_file = tmp_path / "data" / "secret.key"
    key_file.parent.mkdir(mode=0o700)
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    line = await stops(console_env(tmp_path, fake), tmp_path)
    assert str(key_file) in line and problem in line
    # The variable is not set: the file is at fault, and the way out is said.
    assert "ROUTERBOT_SECRET_KEY is invalid" not in line and "ROUTERBOT_SECRET_KEY:" not in line
    assert "deleting the file makes a new key" in line


async def test_a_dotenv_with_a_bad_byte_is_named(fake: FakeOpenRouter, tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(
        f"ROUTERBOT_SECRET_KEY={generate_key()}\nROUTERBOT_APP_TITLE=caf\xe9\n".encode("latin-1")
    )
    line = await stops(console_env(tmp_path, fake), tmp_path)
    assert str(tmp_path / ".env") in line
    assert "not UTF-8 text (line 2, column 24: byte 0xe9)" in line


@pytest.mark.parametrize("key", ["sk-or-v1 with space", "sk-or-v1-caf\u00e9-key"])
async def test_a_fallback_key_no_header_can_carry_stops_start_up(
    fake: FakeOpenRouter, tmp_path: Path, key: str
) -> None:
    env = console_env(tmp_path, fake, OPENROUTER_API_KEY=key)
    out, err, code = await run_console(env, ["/chat hi"], tmp_path)
    assert code == 2 and out == ""
    assert "OPENROUTER_API_KEY: does not look like an API key" in err
    assert key not in err
    assert fake.chat_requests == []


async def test_a_fallback_key_is_cleaned_like_a_pasted_one(
    fake: FakeOpenRouter, tmp_path: Path
) -> None:
    env = console_env(
        tmp_path,
        fake,
        OPENROUTER_API_KEY=f"\u201c{DEFAULT_KEY}\u200b\u201d",
        ROUTERBOT_SECRET_KEY=generate_key(),
    )
    out, err, code = await run_console(env, ["/chat hi"], tmp_path)
    assert code == 0, err
    assert "echo: hi" in out
    assert fake.chat_requests[-1].headers["Authorization"] == f"Bearer {DEFAULT_KEY}"
