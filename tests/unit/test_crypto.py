"""KeyVault (MultiFernet encryption and rotation), key masking, and the console's key file."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from storage.crypto import (
    ELLIPSIS,
    KNOWN_KEY_PREFIXES,
    KeyDecryptError,
    KeyVault,
    generate_key,
    load_or_create_key_file,
    mask_key,
)

API_KEY = "sk-or-v1-" + "0123456789abcdef" * 4


def test_round_trip() -> None:
    vault = KeyVault.from_config(generate_key())
    token = vault.encrypt(SecretStr(API_KEY))
    assert API_KEY.encode() not in token
    decrypted = vault.decrypt(token)
    assert isinstance(decrypted, SecretStr)
    assert decrypted.get_secret_value() == API_KEY


def test_from_config_tolerates_blanks_and_a_trailing_comma() -> None:
    old, new = generate_key(), generate_key()
    vault = KeyVault.from_config(f" {new} ,\t{old},")
    assert vault.key_count == 2
    assert vault.decrypt(KeyVault.from_config(old).encrypt(SecretStr("x"))).get_secret_value()


def test_rotation_old_ciphertext_still_decrypts_and_rotate_moves_it_to_the_new_key() -> None:
    old, new = generate_key(), generate_key()
    old_token = KeyVault.from_config(old).encrypt(SecretStr(API_KEY))

    rotating = KeyVault.from_config(f"{new},{old}")
    assert rotating.decrypt(old_token).get_secret_value() == API_KEY

    rotated = rotating.rotate(old_token)
    assert rotated != old_token
    # Only the new key is needed afterwards; the old one alone no longer opens it.
    assert KeyVault.from_config(new).decrypt(rotated).get_secret_value() == API_KEY
    with pytest.raises(KeyDecryptError):
        KeyVault.from_config(old).decrypt(rotated)


def test_new_ciphertext_uses_the_first_key() -> None:
    first, second = generate_key(), generate_key()
    token = KeyVault.from_config(f"{first},{second}").encrypt(SecretStr(API_KEY))
    assert Fernet(first.encode()).decrypt(token) == API_KEY.encode()


def test_wrong_key_gives_a_clear_error() -> None:
    token = KeyVault.from_config(generate_key()).encrypt(SecretStr(API_KEY))
    other = KeyVault.from_config(generate_key())
    with pytest.raises(KeyDecryptError) as excinfo:
        other.decrypt(token)
    message = str(excinfo.value)
    assert "ROUTERBOT_SECRET_KEY" in message
    assert "does not match" in message
    assert excinfo.value.__cause__ is None
    with pytest.raises(KeyDecryptError):
        other.rotate(token)


def test_garbage_token_gives_the_same_error() -> None:
    with pytest.raises(KeyDecryptError):
        KeyVault.from_config(generate_key()).decrypt(b"not a fernet token")


@pytest.mark.parametrize(
    ("config", "position"),
    [
        ("{good},not-a-valid-fernet-key-SECRETISH,{good}", "key 2 of 3"),
        ("SECRETISH-short", "key 1 of 1"),
        ("{good},,{good}", "key 2 of 3"),
        ("{good},ключ-SECRETISH", "key 2 of 2"),
    ],
)
def test_bad_key_names_its_position_but_not_its_value(config: str, position: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        KeyVault.from_config(config.format(good=generate_key()))
    message = str(excinfo.value)
    assert position in message
    assert "SECRETISH" not in message
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__


@pytest.mark.parametrize("config", ["", " ", ",", " , "])
def test_empty_config_is_rejected(config: str) -> None:
    with pytest.raises(ValueError, match="ROUTERBOT_SECRET_KEY"):
        KeyVault.from_config(config)


def test_repr_does_not_show_keys() -> None:
    key = generate_key()
    assert key not in repr(KeyVault.from_config(key))


def test_generate_key_makes_distinct_valid_keys() -> None:
    keys = {generate_key() for _ in range(5)} | {KeyVault.generate_key()}
    assert len(keys) == 6
    for key in keys:
        Fernet(key.encode())


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("sk-or-v1-" + "a" * 60 + "9f3a", "sk-or-v1-…9f3a"),
        ("  sk-or-v1-" + "b" * 60 + "9f3a\n", "sk-or-v1-…9f3a"),
        ("fw_" + "c" * 20 + "WXYZ", "fw_…WXYZ"),
        ("sk-ant-api03-" + "d" * 40 + "1234", "sk-ant-…1234"),
        ("sk-proj-" + "e" * 40 + "5678", "sk-proj-…5678"),
        ("sk-" + "f" * 44 + "abcd", "sk-…abcd"),
        ("x" * 28 + "tail", "…tail"),  # unknown shape: no head at all
        ("sk-or-v1-0123456789", "sk-or-v1-…89"),  # short body: two chars
        ("sk-12345678", "sk-…78"),
        ("sk-1234567", "sk-…"),  # very short: nothing of it
        ("abc", "…"),
        ("", "…"),
    ],
)
def test_mask_key(key: str, masked: str) -> None:
    assert mask_key(key) == masked


key_bodies = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), exclude_characters="…"
    ),
    max_size=120,
)


@given(prefix=st.sampled_from(("", *KNOWN_KEY_PREFIXES)), body=key_bodies)
def test_mask_never_shows_more_than_four_trailing_chars(prefix: str, body: str) -> None:
    key = prefix + body
    masked = mask_key(key)
    shown_prefix, sep, tail = masked.partition(ELLIPSIS)
    assert sep == ELLIPSIS
    # Only a known (non-secret) prefix may precede the ellipsis, and it is part of the key.
    assert shown_prefix in ("", *KNOWN_KEY_PREFIXES)
    assert key.startswith(shown_prefix)
    secret_body = key[len(shown_prefix) :]
    assert len(tail) <= 4
    assert secret_body.endswith(tail)
    if len(secret_body) < 16:
        assert len(tail) <= 2
    assert len(masked) <= 40  # fits ProviderKey.masked


def test_key_file_is_created_private_with_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nested" / "secret.key"
    key, created = load_or_create_key_file(path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key
    KeyVault.from_config(key)  # a usable Fernet key
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind

    again, created_again = load_or_create_key_file(path)
    assert (again, created_again) == (key, False)


def test_key_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    key = generate_key()
    path.write_text(key + "\n")
    path.chmod(0o644)
    assert load_or_create_key_file(path) == (key, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_empty_key_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(ValueError, match="empty"):
        load_or_create_key_file(path)


def test_concurrent_creators_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: load_or_create_key_file(path), range(16)))
    assert len({key for key, _ in results}) == 1
    assert sum(created for _, created in results) == 1
