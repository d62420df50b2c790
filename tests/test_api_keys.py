"""API keys at rest and their verification cost."""

from __future__ import annotations

import re
from typing import Literal

import pytest
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import select

from database.models import ApiKey
from services import passwords
from services.accounts import UserView
from services.errors import InvalidApiKey, NotFound
from tests.conftest import desk_of, make_user


def test_key_is_64_lowercase_hex_and_stored_only_hashed(app: Flask, user: UserView) -> None:
    key = desk_of(app).api_keys.create(user.id)
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    with desk_of(app).databases.session() as session:
        row = session.scalars(select(ApiKey)).one()
        stored = [row.key_digest, row.key_hash, row.key_prefix]
    assert all(key not in value for value in stored)
    assert row.key_hash.startswith("$argon2id$")
    assert row.key_prefix == key[:6]


def test_verify_returns_the_owner(app: Flask, user: UserView) -> None:
    key = desk_of(app).api_keys.create(user.id)
    owner = desk_of(app).api_keys.verify(key)
    assert (owner.user_id, owner.username, owner.broker) == (user.id, "trader", "sandbox")


@pytest.mark.parametrize("bad", ["", "x", "0" * 64, "g" * 64, "a" * 300])
def test_bad_keys_are_refused(app: Flask, user: UserView, bad: str) -> None:
    desk_of(app).api_keys.create(user.id)
    with pytest.raises(InvalidApiKey, match="Invalid openalgo apikey"):
        desk_of(app).api_keys.verify(bad)


def test_regenerating_kills_the_old_key(app: Flask, user: UserView) -> None:
    keys = desk_of(app).api_keys
    old = keys.create(user.id)
    keys.verify(old)
    new = keys.create(user.id)
    assert new != old
    assert keys.verify(new).user_id == user.id
    with pytest.raises(InvalidApiKey):
        keys.verify(old)


def test_revoke_stops_a_cached_key(app: Flask, user: UserView) -> None:
    keys = desk_of(app).api_keys
    key = keys.create(user.id)
    keys.verify(key)  # now cached
    assert keys.revoke(user.id) is True
    with pytest.raises(InvalidApiKey):
        keys.verify(key)
    assert keys.revoke(user.id) is False


def test_keys_of_two_users_are_independent(app: Flask, user: UserView) -> None:
    other = make_user(app, "second")
    keys = desk_of(app).api_keys
    mine, theirs = keys.create(user.id), keys.create(other.id)
    keys.revoke(other.id)
    assert keys.verify(mine).user_id == user.id
    with pytest.raises(InvalidApiKey):
        keys.verify(theirs)


def test_key_for_unknown_user_is_not_found(app: Flask) -> None:
    with pytest.raises(NotFound):
        desk_of(app).api_keys.create(999)


def test_argon2_runs_once_per_key_not_per_request(
    app: Flask, user: UserView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost target (well under 1 ms after first use) is measured in bench/bench_apikey.py;
    here, the reason for it: later checks use the digest index and skip Argon2."""
    calls: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, stored: str | bytes, secret: str | bytes) -> Literal[True]:
            calls.append(str(stored))
            return super().verify(stored, secret)

    keys = desk_of(app).api_keys
    key = keys.create(user.id)
    make_user(app, "second")  # a second user, so a scan would show up as extra checks
    keys.create(desk_of(app).accounts.get_by_username("second").id)
    monkeypatch.setattr(passwords, "_hasher", CountingHasher())
    for _ in range(50):
        keys.verify(key)
    assert len(calls) == 1
    with pytest.raises(InvalidApiKey):
        keys.verify("f" * 64)
    assert len(calls) == 1  # an unknown key costs no hash at all


def test_another_process_stops_accepting_a_revoked_key_within_the_ttl(
    app: Flask, user: UserView, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from services import api_keys
    from services.api_keys import ApiKeyService

    monkeypatch.setattr(api_keys, "OWNER_TTL_SECONDS", 0.05)
    desk = desk_of(app)
    here = desk.api_keys
    # A second service on the same database stands for another worker process.
    elsewhere = ApiKeyService(desk.databases, desk.settings.api_key_pepper, desk.clock)
    key = here.create(user.id)
    assert elsewhere.verify(key).user_id == user.id
    here.revoke(user.id)
    with pytest.raises(InvalidApiKey):
        here.verify(key)  # this process: at once
    assert elsewhere.verify(key).user_id == user.id  # the other: still within its second
    time.sleep(0.06)
    with pytest.raises(InvalidApiKey):
        elsewhere.verify(key)
