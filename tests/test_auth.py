"""The application token: made once per state folder, private, checked in constant time."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from scanflow.auth import TOKEN_ENV, app_token, authorized, bearer, token_path
from scanflow.errors import ScanflowError


def test_one_private_token_per_state_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert app_token(tmp_path / "a", create=False) is None
    first = app_token(tmp_path / "a")
    assert first and len(first) >= 40 and app_token(tmp_path / "a") == first
    assert stat.S_IMODE(token_path(tmp_path / "a").stat().st_mode) == 0o600
    assert app_token(tmp_path / "b") != first
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    assert app_token(tmp_path / "a") == "from-the-environment"


def test_an_empty_token_file_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token_path(tmp_path).write_text("")
    with pytest.raises(ScanflowError, match="is empty; delete it"):
        app_token(tmp_path)


def test_only_the_right_bearer_token_is_authorized() -> None:
    header = bearer("s3cret")["authorization"]
    assert authorized(header, "s3cret") and authorized(header.encode(), "s3cret")
    assert not authorized("Bearer wrong", "s3cret")
    assert not authorized("Basic s3cret", "s3cret")
    assert not authorized(None, "s3cret") and not authorized("", "s3cret")
    assert authorized(None, None) and bearer(None) == {}
