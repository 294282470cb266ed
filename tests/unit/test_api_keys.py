"""KeyChecker and the settings that feed it: upstream's key order, exact comparison, key files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth import KeyChecker
from gateway.errors import UNAUTHORIZED_MESSAGE, Unauthorized
from gateway.settings import Settings

KEYS = ["alpha-key-1", "beta-key-2"]


def test_no_keys_means_no_auth() -> None:
    checker = KeyChecker([])
    assert not checker.enabled
    checker.check(None, None, None)
    checker.check("anything", "Bearer x", "y")


@pytest.mark.parametrize(
    ("query", "header", "body"),
    [
        ("alpha-key-1", None, None),
        (None, "Bearer beta-key-2", None),
        (None, "bearer   alpha-key-1  ", None),
        (None, None, "beta-key-2"),
        ("alpha-key-1", "Bearer wrong", "wrong"),  # the query wins
        (None, "Bearer alpha-key-1", "wrong"),  # then the header
    ],
)
def test_accepted(query: str | None, header: str | None, body: str | None) -> None:
    KeyChecker(KEYS).check(query, header, body)


@pytest.mark.parametrize(
    ("query", "header", "body"),
    [
        (None, None, None),
        ("", "", ""),
        ("wrong", None, "alpha-key-1"),  # a wrong key first is not rescued by a right one later
        (None, "Bearer wrong", "alpha-key-1"),
        (None, "Basic alpha-key-1", None),
        (None, "alpha-key-1", None),
        ("ALPHA-KEY-1", None, None),
        ("alpha-key-", None, None),
        ("alpha-key-11", None, None),
        ("\u00e9alpha-key-1", None, None),
    ],
)
def test_refused(query: str | None, header: str | None, body: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        KeyChecker(KEYS).check(query, header, body)
    assert info.value.status_code == 401
    assert info.value.body() == {"message": UNAUTHORIZED_MESSAGE}


def test_keys_from_env_list_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("\n file-key \n\n")
    monkeypatch.setenv("GATEWAY_API_KEYS", " env-1 , env-2 ,")
    monkeypatch.setenv("GATEWAY_API_KEYS_FILE", str(key_file))
    settings = Settings()
    keys = [k.get_secret_value() for k in settings.accepted_keys()]
    assert keys == ["env-1", "env-2", "file-key"]
    assert "env-1" not in repr(settings.accepted_keys())  # SecretStr hides them in reprs
