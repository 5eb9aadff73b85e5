"""Team tokens on a real store: hashed at rest, expiry, revocation, the CLI."""

from __future__ import annotations

import time

import pytest

from scanflow.api.errors import Invalid, NotFound, Unauthenticated
from scanflow.api.tokens import Tokens, parse_duration
from scanflow.cli.main import main
from scanflow.store import Store
from scanflow.store.token_models import TokenRecord


@pytest.fixture
def tokens(tmp_path) -> Tokens:
    store = Store.for_state_dir(tmp_path / ".scanflow")
    yield Tokens(store)
    store.close()


def test_a_token_names_its_team_and_scope(tokens: Tokens) -> None:
    made = tokens.create("vision", "read", name="laptop")
    who = tokens.verify(made.token)
    assert (who.team, who.scope, who.admin) == ("vision", "read", False)
    assert tokens.verify(tokens.create("vision", "admin").token).admin


def test_only_a_salted_hash_is_kept(tokens: Tokens, tmp_path) -> None:
    made = tokens.create("vision", "admin")
    secret = made.token.split("_", 2)[2]
    [row] = tokens.list()
    assert row.digest != secret.encode() and len(row.salt) == 16
    assert secret.encode() not in (tmp_path / ".scanflow" / "scanflow.db").read_bytes()
    other = tokens.create("vision", "admin")
    assert tokens.list()[0].salt != tokens.list()[1].salt
    assert tokens.verify(other.token).token_id == other.id


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (None, "no token"),
        ("", "no token"),
        ("hunter2", "malformed token"),
        ("sft_000000000000_" + "x" * 43, "unknown token"),
    ],
)
def test_missing_malformed_and_unknown_tokens_are_refused(tokens, given, reason) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        tokens.verify(given)


def test_a_wrong_secret_is_refused_even_after_the_right_one_was_seen(tokens: Tokens) -> None:
    made = tokens.create("vision", "admin")
    tokens.verify(made.token)  # now remembered as verified
    wrong = made.token[:-4] + ("AAAA" if not made.token.endswith("AAAA") else "BBBB")
    with pytest.raises(Unauthenticated, match="wrong token"):
        tokens.verify(wrong)


def test_expired_and_revoked_tokens_are_refused_at_once(tokens: Tokens) -> None:
    expiring = tokens.create("vision", "read", expires_in=3600)
    tokens.verify(expiring.token)
    with tokens.store.session() as s:  # an hour later
        s.get(TokenRecord, expiring.id).expires_at = time.time() - 1
    with pytest.raises(Unauthenticated, match="has expired"):
        tokens.verify(expiring.token)

    revoked = tokens.create("vision", "admin")
    tokens.verify(revoked.token)
    tokens.revoke(revoked.id)
    with pytest.raises(Unauthenticated, match="was revoked"):
        tokens.verify(revoked.token)
    with pytest.raises(NotFound, match="no token 'nope'"):
        tokens.revoke("nope")


def test_scopes_and_durations_are_checked() -> None:
    assert parse_duration("30d") == 30 * 86400 and parse_duration("90m") == 5400
    with pytest.raises(Invalid, match="not a duration like"):
        parse_duration("soon")


def test_bad_scope_is_refused(tokens: Tokens) -> None:
    with pytest.raises(Invalid, match="scope 'root' is not one of: read, admin"):
        tokens.create("vision", "root")


def test_token_commands(tmp_path, capsys) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "scanflow.yaml").write_text("name: demo\nteam: vision\n")
    base = ["--app", str(app), "server", "token"]
    assert main([*base, "create", "--team", "vision", "--scope", "read", "--expires", "2h"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("sft_")
    store = Store.for_state_dir(app / ".scanflow")
    assert Tokens(store).verify(token).scope == "read"

    assert main([*base, "list", "-o", "json"]) == 0
    listed = capsys.readouterr().out
    assert token.split("_")[1] in listed and token.split("_", 2)[2] not in listed

    assert main([*base, "revoke", token.split("_")[1]]) == 0
    with pytest.raises(Unauthenticated, match="revoked"):
        Tokens(store).verify(token)
    assert main([*base, "create", "--team", "vision", "--scope", "root"]) == 1
    assert "scope 'root' is not one of" in capsys.readouterr().err
    store.close()
