"""The tamper-evident audit trail: chaining, verification, retention, the CLI, the page, and
the account events that feed it.

A note on what the chain cannot do: records deleted from the *end* of the trail leave no gap
in what remains, so a verifier that only reads the table (another process, a later run) sees a
shorter, intact trail. The desk that wrote the last record remembers it and does notice; see
test_deleting_the_newest_records_is_seen_only_by_the_writer.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

import services.audit as audit_module
from config import Settings
from database.engine import Databases
from services.accounts import UserView
from services.audit import GENESIS_HASH, AuditTrail, chain_hash
from services.clock import IST, FixedClock
from tests.conftest import (
    OTHER_STRONG_PASSWORD,
    STRONG_PASSWORD,
    csrf_token,
    desk_env,
    desk_of,
    login,
    make_user,
    post_form,
    run_flask_cli,
)

JSON = {"Accept": "application/json"}
NEW_KEY = re.compile(r'id="api-key-value">([0-9a-f]+)</code>')


class Side(StrEnum):
    BUY = "BUY"


@pytest.fixture
def trail(app: Flask) -> AuditTrail:
    return desk_of(app).audit


@pytest.fixture
def databases(app: Flask) -> Databases:
    return desk_of(app).databases


def sql(databases: Databases, statement: str, **params: Any) -> list[Any]:
    with databases.engines["main"].begin() as connection:  # type: ignore[index]
        result = connection.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def table_dump(databases: Databases) -> str:
    """Every stored audit field and the desk settings, as one text to search for secrets."""
    rows = sql(databases, "SELECT * FROM audit_events")
    settings = sql(databases, "SELECT * FROM desk_settings")
    return "\n".join(repr(tuple(row)) for row in [*rows, *settings])


def fill(trail: AuditTrail, count: int, action: str = "test.event") -> None:
    for index in range(count):
        trail.record(action, actor="tester", user_id=1, subject=f"item {index}")
    trail.flush()


def seqs(databases: Databases) -> list[int]:
    return [row[0] for row in sql(databases, "SELECT seq FROM audit_events ORDER BY seq")]


def actions(trail: AuditTrail, **filters: Any) -> list[str]:
    trail.flush()
    return [record.action for record in trail.events(**filters)]


# --- chaining ------------------------------------------------------------------------------------


def test_records_chain_and_verify_intact(trail: AuditTrail, clock: FixedClock) -> None:
    trail.record(
        "order.placed",
        actor="trader",
        user_id=7,
        subject="SBIN NSE",
        details={
            "price": Decimal("812.35"),
            "side": Side.BUY,
            "at": datetime(2026, 11, 23, 9, 15, tzinfo=IST),
            "tags": ("ui", 3),
            "other": object,
            "nested": {"api_key": "abc123", "qty": 5},
            "password": "hunter2",
            "Secret-Token": "s3",
            "note": "₹ लाभ",
        },
    )
    fill(trail, 4)
    result = trail.verify()
    assert result.intact and result.checked == 5
    assert result.first_broken_seq is None and result.problem == ""

    newest, *_, first = trail.events()
    assert newest.seq == 5 and first.seq == 1
    assert first.prev_hash == GENESIS_HASH and first.at == clock.now()
    assert first.details == {
        "price": "812.35",
        "side": "BUY",
        "at": "2026-11-23T09:15:00+05:30",
        "tags": ["ui", 3],
        "other": str(object),
        "nested": {"api_key": "[redacted]", "qty": 5},
        "password": "[redacted]",
        "Secret-Token": "[redacted]",
        "note": "₹ लाभ",
    }
    # The hash is SHA-256 over the previous hash and the canonical JSON of the record.
    canonical = json.dumps(
        {
            "seq": 1,
            "at": clock.now().astimezone(UTC).isoformat(timespec="microseconds"),
            "user_id": 7,
            "actor": "trader",
            "action": "order.placed",
            "subject": "SBIN NSE",
            "details": first.details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert first.hash == hashlib.sha256((GENESIS_HASH + canonical).encode()).hexdigest()
    assert newest.prev_hash == trail.events(limit=2)[1].hash


def test_an_empty_trail_is_intact(trail: AuditTrail) -> None:
    assert trail.verify() == audit_module.AuditVerification(True, 0, None, "")


def test_record_never_fails_the_caller(trail: AuditTrail) -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")

    trail.record("odd.details", actor="tester", details={"value": Hostile()})
    trail.record("x" * 200, actor="a" * 200, subject="s" * 500)
    trail.flush()
    records = trail.events()
    assert len(records) == 2 and trail.verify().intact
    assert len(records[0].action) == 64 and len(records[0].subject) == 128
    assert records[1].details == {"unrecordable": "details could not be converted"}


def test_events_filter_and_page(trail: AuditTrail) -> None:
    for index in range(6):
        trail.record("auth.login" if index % 2 else "apikey.created", actor="t", user_id=index % 3)
    trail.flush()
    assert [r.seq for r in trail.events()] == [6, 5, 4, 3, 2, 1]
    assert [r.seq for r in trail.events(limit=2, before_seq=5)] == [4, 3]
    assert [r.seq for r in trail.events(action_prefix="auth")] == [6, 4, 2]
    assert [r.seq for r in trail.events(user_id=0)] == [4, 1]
    assert trail.events(action_prefix="auth_") == []  # "_" is a character, not a wildcard


# --- tampering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("details", '{"price":"1"}'),
        ("action", "order.cancelled"),
        ("at", "2020-01-01 00:00:00.000000"),
        ("actor", "someone-else"),
        ("subject", "RELIANCE NSE"),
        ("user_id", 99),
    ],
)
def test_an_edited_record_is_found_at_its_seq(
    trail: AuditTrail, databases: Databases, column: str, value: object
) -> None:
    fill(trail, 6)
    statement = f"UPDATE audit_events SET {column} = :value WHERE seq = 4"  # noqa: S608
    sql(databases, statement, value=value)
    result = trail.verify()
    assert not result.intact
    assert result.first_broken_seq == 4 and result.checked == 3
    assert result.problem == "record 4 was edited: its hash does not match its contents"


def test_a_reformatted_details_text_counts_as_an_edit(
    trail: AuditTrail, databases: Databases
) -> None:
    trail.record("t", actor="a", details={"a": 1, "b": 2})
    trail.flush()
    sql(databases, """UPDATE audit_events SET details = '{"b": 2, "a": 1}'""")
    assert trail.verify().first_broken_seq == 1


def test_a_deleted_record_is_found(trail: AuditTrail, databases: Databases) -> None:
    fill(trail, 6)
    sql(databases, "DELETE FROM audit_events WHERE seq = 3")
    result = trail.verify()
    assert (result.intact, result.first_broken_seq, result.checked) == (False, 3, 2)
    assert result.problem == "record 3 is missing: record 4 follows record 2"

    sql(databases, "DELETE FROM audit_events WHERE seq IN (1, 4)")
    result = trail.verify()
    assert result.first_broken_seq == 1
    assert result.problem == "record 1 is missing: record 2 follows the start of the trail"


def test_several_deleted_records_are_named(trail: AuditTrail, databases: Databases) -> None:
    fill(trail, 8)
    sql(databases, "DELETE FROM audit_events WHERE seq BETWEEN 3 AND 5")
    assert trail.verify().problem == "records 3 to 5 are missing: record 6 follows record 2"


def test_a_changed_previous_hash_is_found(trail: AuditTrail, databases: Databases) -> None:
    fill(trail, 5)
    sql(databases, "UPDATE audit_events SET prev_hash = :h WHERE seq = 3", h="f" * 64)
    result = trail.verify()
    assert (result.first_broken_seq, result.checked) == (3, 2)
    assert result.problem == "record 3's previous hash does not match record 2"


def test_a_rechained_forgery_breaks_at_the_next_link(
    trail: AuditTrail, databases: Databases
) -> None:
    """Someone who edits a record and recomputes its hash still breaks the next link."""
    fill(trail, 4)
    row = sql(databases, "SELECT * FROM audit_events WHERE seq = 2")[0]
    forged = chain_hash(
        row.prev_hash,
        seq=2,
        at=datetime.fromisoformat(row.at).replace(tzinfo=UTC),
        user_id=row.user_id,
        actor=row.actor,
        action="account.password_changed",
        subject=row.subject,
        details_json=row.details,
    )
    sql(
        databases,
        "UPDATE audit_events SET action = 'account.password_changed', hash = :h WHERE seq = 2",
        h=forged,
    )
    result = trail.verify()
    assert result.first_broken_seq == 3
    assert result.problem == "record 3's previous hash does not match record 2"


def test_deleting_the_newest_records_is_seen_only_by_the_writer(
    trail: AuditTrail, settings: Settings, clock: FixedClock, databases: Databases
) -> None:
    fill(trail, 6)
    sql(databases, "DELETE FROM audit_events WHERE seq > 4")
    result = trail.verify()
    assert (result.intact, result.first_broken_seq, result.checked) == (False, 5, 4)
    assert result.problem == (
        "record 5 is missing: the trail ends at record 4 but this desk wrote up to record 6"
    )
    # A verifier that did not write them (another process, a later start) cannot tell: the
    # remaining chain is intact. That is the limit of a hash chain, documented above.
    elsewhere = Databases.from_settings(settings)
    try:
        assert AuditTrail(elsewhere, clock, 30).verify().intact
    finally:
        elsewhere.dispose()


# --- concurrency ---------------------------------------------------------------------------


def test_eight_threads_make_one_contiguous_chain(trail: AuditTrail, databases: Databases) -> None:
    def work(worker: int) -> None:
        for index in range(200):
            trail.record("load.test", actor=f"w{worker}", subject=str(index))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trail.flush()
    assert seqs(databases) == list(range(1, 1601))
    result = trail.verify()
    assert result.intact and result.checked == 1600


@pytest.fixture
def second_process(settings: Settings, clock: FixedClock) -> Iterator[AuditTrail]:
    """Another desk process on the same database: its own engines, its own writer."""
    databases = Databases.from_settings(settings)
    other = AuditTrail(databases, clock, 2555)
    yield other
    other.close()
    databases.dispose()


def test_two_processes_interleave_into_one_chain(
    trail: AuditTrail,
    second_process: AuditTrail,
    databases: Databases,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tail_reads = 0
    read_tail = audit_module._read_tail

    def counting(connection: Any) -> Any:
        nonlocal tail_reads
        tail_reads += 1
        return read_tail(connection)

    monkeypatch.setattr(audit_module, "_read_tail", counting)
    # Alternating, each writer's remembered tail is stale every time: the insert collides and
    # the writer re-reads the tail and chains again.
    for round_ in range(10):
        for writer, name in ((trail, "a"), (second_process, "b")):
            for index in range(3):
                writer.record("interleave", actor=name, subject=f"{round_}.{index}")
            writer.flush()
    assert tail_reads >= 10

    # And at the same time, from threads in both.
    def work(writer: AuditTrail, name: str) -> None:
        for index in range(150):
            writer.record("race", actor=name, subject=str(index))
            if index % 25 == 0:
                writer.flush()
        writer.flush()

    threads = [
        threading.Thread(target=work, args=(writer, f"{name}{n}"))
        for n in range(2)
        for writer, name in ((trail, "a"), (second_process, "b"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seqs(databases) == list(range(1, 60 + 600 + 1))
    assert trail.verify().intact
    assert second_process.verify().intact


# --- retention -------------------------------------------------------------------------------


def test_purge_keeps_the_rest_verifiable(
    trail: AuditTrail, databases: Databases, clock: FixedClock
) -> None:
    fill(trail, 5, "old.event")
    clock.advance(timedelta(days=2000))
    fill(trail, 3, "recent.event")
    assert trail.purge_expired() == 0  # nothing is seven years old yet

    clock.advance(timedelta(days=600))  # the first five are now older than 2555 days
    assert trail.purge_expired() == 5
    assert seqs(databases) == [6, 7, 8, 9]
    anchor = sql(databases, "SELECT value FROM desk_settings WHERE key = 'audit_anchor'")
    stored = json.loads(anchor[0][0])
    assert stored["seq"] == 5 and len(stored["hash"]) == 64
    purged = trail.events(limit=1)[0]
    assert purged.action == "audit.purged" and purged.actor == "system"
    assert purged.details == {"purged": 5, "through_seq": 5, "retention_days": 2555}
    result = trail.verify()
    assert result.intact and result.checked == 4

    # Deleting the oldest remaining record is still seen, against the checkpoint.
    sql(databases, "DELETE FROM audit_events WHERE seq = 6")
    result = trail.verify()
    assert result.first_broken_seq == 6
    assert result.problem == (
        "record 6 is missing: record 7 follows the retention checkpoint (record 5)"
    )


def test_purging_everything_continues_the_chain_from_the_checkpoint(
    trail: AuditTrail, databases: Databases, clock: FixedClock
) -> None:
    fill(trail, 3)
    clock.advance(timedelta(days=2556))
    assert trail.purge_expired() == 3
    fill(trail, 2)
    assert seqs(databases) == [4, 5, 6]
    assert trail.verify().intact
    sql(databases, "UPDATE audit_events SET prev_hash = :h WHERE seq = 4", h="0" * 64)
    assert trail.verify().problem == (
        "record 4's previous hash does not match the retention checkpoint (record 3)"
    )


# --- the command line --------------------------------------------------------------------------


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def test_cli_verify_exit_codes(app: Flask, trail: AuditTrail, databases: Databases) -> None:
    fill(trail, 3)
    intact = cli(app, "audit", "verify")
    assert intact.exit_code == 0, intact.output
    assert intact.output.strip() == "Audit trail intact: 3 records verified."

    sql(databases, "UPDATE audit_events SET subject = 'x' WHERE seq = 2")
    broken = cli(app, "audit", "verify")
    assert broken.exit_code == 1
    assert "Audit trail broken at record 2: record 2 was edited" in broken.output


def test_cli_export(app: Flask, trail: AuditTrail, tmp_path: Path) -> None:
    trader = make_user(app, "trader")
    other = make_user(app, "other")
    trail.record("apikey.created", actor="trader", user_id=trader.id, details={"p": "1.50"})
    trail.record("apikey.created", actor="other", user_id=other.id)
    trail.flush()

    result = cli(app, "audit", "export")
    assert result.exit_code == 0, result.output
    table = list(csv.reader(io.StringIO(result.stdout)))
    assert table[0] == [
        "seq", "at", "user_id", "actor", "action", "subject", "details", "prev_hash", "hash",
    ]  # fmt: skip
    assert [row[0] for row in table[1:]] == ["1", "2", "3", "4"]  # oldest first
    assert table[3][1] == "2026-11-23T10:00:00.000000+05:30"  # IST
    assert json.loads(table[3][6]) == {"p": "1.50"}
    assert "Exported 4 audit records." in result.stderr

    out = tmp_path / "trader.csv"
    result = cli(app, "audit", "export", "--user", "trader", "--output", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert {row["user_id"] for row in rows} == {str(trader.id)}
    assert [row["action"] for row in rows] == ["user.created", "apikey.created"]
    assert cli(app, "audit", "export", "--user", "ghost").exit_code == 1


def test_export_csv_counts_rows_in_chunks(
    trail: AuditTrail, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "VERIFY_CHUNK", 7)
    fill(trail, 30)
    out = io.StringIO()
    assert trail.export_csv(out) == 30
    assert len(out.getvalue().splitlines()) == 31
    assert trail.verify().checked == 30


def test_cli_purge(app: Flask, trail: AuditTrail, clock: FixedClock) -> None:
    fill(trail, 2)
    clock.advance(timedelta(days=2556))
    result = cli(app, "audit", "purge")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Purged 2 audit records older than 2555 days."
    assert cli(app, "audit", "verify").exit_code == 0


def test_cli_account_commands_leave_records(app: Flask, trail: AuditTrail) -> None:
    def run(*args: str) -> str:
        result = cli(app, *args)
        assert result.exit_code == 0, result.output
        return str(result.output)

    run("user", "create", "ops", "--email", "ops@example.com", "--password", STRONG_PASSWORD)
    run("user", "reset-password", "ops", "--password", OTHER_STRONG_PASSWORD)
    key = run("apikey", "create", "ops").strip().splitlines()[-1]
    run("apikey", "revoke", "ops")
    run("sandbox", "reset", "ops")
    trail.flush()
    records = list(reversed(trail.events()))
    assert [(r.action, r.actor, r.subject) for r in records] == [
        ("user.created", "cli", "ops"),
        ("account.password_reset", "cli", "ops"),
        ("apikey.created", "cli", key[:6]),
        ("apikey.revoked", "cli", key[:6]),
        ("sandbox.reset", "cli", "ops"),
    ]
    dump = table_dump(desk_of(app).databases)
    for secret in (key, STRONG_PASSWORD, OTHER_STRONG_PASSWORD):
        assert secret not in dump


# --- the page ----------------------------------------------------------------------------------


@pytest.fixture
def admin(app: Flask) -> UserView:
    return make_user(app, "boss", admin=True)


@pytest.fixture
def trader(app: Flask) -> UserView:
    return make_user(app, "trader")


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def test_page_shows_an_intact_chain_and_every_record_to_an_admin(
    app: Flask, admin: UserView, trader: UserView
) -> None:
    page = signed_in(app, "boss").get("/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # user.created x2, then the admin's sign-in.
    assert 'role="status" data-field="chain">Audit trail intact — 3 records verified<' in html
    assert "<caption>Audit records</caption>" in html
    assert html.count("<tr data-seq=") == 3
    assert ">trader<" in html and ">auth.login<" in html
    assert 'href="/audit/export.csv"' in html and ">Export CSV<" in html


def test_page_shows_where_the_chain_breaks(
    app: Flask, admin: UserView, trader: UserView, databases: Databases
) -> None:
    client = signed_in(app, "trader")
    desk_of(app).audit.flush()
    sql(databases, "UPDATE audit_events SET actor = 'nobody' WHERE seq = 2")
    html = client.get("/audit").get_data(as_text=True)
    assert (
        'role="alert" data-field="chain">Audit trail broken at record 2: record 2 was edited: '
        "its hash does not match its contents<"
    ) in html


def test_a_trader_sees_only_their_own_records(
    app: Flask, admin: UserView, trader: UserView, trail: AuditTrail
) -> None:
    trail.record("apikey.created", actor="boss", user_id=admin.id, subject="bbbbbb")
    client = signed_in(app, "trader")
    html = client.get("/audit").get_data(as_text=True)
    assert "bbbbbb" not in html and ">boss<" not in html
    assert html.count("<tr data-seq=") == 2  # created, signed in
    exported = client.get("/audit/export.csv")
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    assert exported.headers["Content-Disposition"].startswith('attachment; filename="dalal-audit')
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {row["user_id"] for row in rows} == {str(trader.id)}
    admin_rows = list(
        csv.DictReader(io.StringIO(signed_in(app, "boss").get("/audit/export.csv").text))
    )
    assert len(admin_rows) == len(trail.events()) > len(rows)


def test_page_filters_and_pages(
    app: Flask, admin: UserView, trail: AuditTrail, monkeypatch: pytest.MonkeyPatch
) -> None:
    import blueprints.audit

    monkeypatch.setattr(blueprints.audit, "PAGE_SIZE", 4)
    fill(trail, 9, "sandbox.reset")
    client = signed_in(app, "boss")
    html = client.get("/audit?action=sandbox").get_data(as_text=True)
    assert html.count("<tr data-seq=") == 4 and "auth.login" not in html
    # The boss's user.created is record 1; the resets are 2-10, the sign-in 11.
    assert 'href="/audit?action=sandbox&amp;before=7">Older<' in html
    html = client.get("/audit?action=sandbox&before=7").get_data(as_text=True)
    assert '<tr data-seq="6">' in html and '<tr data-seq="7">' not in html
    last = client.get("/audit?action=sandbox&before=3").get_data(as_text=True)
    assert last.count("<tr data-seq=") == 1 and ">Older<" not in last
    assert ">Newest<" in html
    empty = client.get("/audit?action=nothing.like.this").get_data(as_text=True)
    assert "No audit records whose action starts with" in empty


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("before=abc", "&#39;before&#39; must be a record number"),
        ("before=-1", "&#39;before&#39; must be a record number"),
        ("before=99999999999999999999999", "&#39;before&#39; must be a record number"),
        ("action=%3Cscript%3E", "The action filter takes the start of an action name"),
        ("action=" + "a" * 65, "The action filter takes the start of an action name"),
    ],
)
def test_bad_parameters_get_a_clear_400(
    app: Flask, admin: UserView, query: str, message: str
) -> None:
    response = signed_in(app, "boss").get(f"/audit?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_the_page_needs_a_signed_in_user(app: Flask, admin: UserView) -> None:
    for path in ("/audit", "/audit/export.csv"):
        response = app.test_client().get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


# --- what the account pages record -----------------------------------------------------------


def test_sign_in_out_and_failures_are_recorded(
    app: Flask, client: FlaskClient, trader: UserView, trail: AuditTrail
) -> None:
    assert login(client, "trader", "Wrong-Password-123").status_code == 401
    assert login(client, "nobody", STRONG_PASSWORD).status_code == 401
    assert login(client, "trader").status_code == 302
    assert post_form(client, "/settings", "/logout", {}).status_code == 302
    trail.flush()
    records = trail.events(action_prefix="auth")
    assert [(r.action, r.actor, r.subject, r.user_id) for r in reversed(records)] == [
        ("auth.login_failed", "anonymous", "trader", None),
        ("auth.login_failed", "anonymous", "nobody", None),
        ("auth.login", "trader", "trader", trader.id),
        ("auth.logout", "trader", "trader", trader.id),
    ]
    assert records[1].details == {"ip": "127.0.0.1", "two_factor": False}
    dump = table_dump(desk_of(app).databases)
    assert "Wrong-Password-123" not in dump and STRONG_PASSWORD not in dump


def test_api_key_and_password_changes_are_recorded_without_secrets(
    app: Flask, trader: UserView, trail: AuditTrail
) -> None:
    client = signed_in(app, "trader")
    keys = []
    for _ in range(2):
        page = post_form(client, "/apikey", "/apikey/generate", {}).get_data(as_text=True)
        match = NEW_KEY.search(page)
        assert match
        keys.append(match.group(1))
    trail.flush()
    created = trail.events(action_prefix="apikey")
    assert [r.subject for r in created] == [keys[1][:6], keys[0][:6]]
    assert post_form(client, "/apikey", "/apikey/revoke", {}).status_code == 302
    post_form(
        client,
        "/settings",
        "/settings/password",
        {
            "current": STRONG_PASSWORD,
            "new": OTHER_STRONG_PASSWORD,
            "confirm": OTHER_STRONG_PASSWORD,
        },
    )
    post_form(client, "/settings", "/settings/profile", {"email": "new@example.com"})
    trail.flush()
    records = list(reversed(trail.events()))
    by_action = [(r.action, r.actor, r.subject) for r in records if r.action != "auth.login"]
    info_prefix = created[0].subject
    assert by_action == [
        ("user.created", "system", "trader"),
        ("apikey.created", "trader", created[1].subject),
        ("apikey.created", "trader", info_prefix),
        ("apikey.revoked", "trader", info_prefix),
        ("account.password_changed", "trader", "trader"),
        ("account.email_changed", "trader", "trader"),
    ]
    assert created[0].details == {"regenerated": True, "replaced_prefix": created[1].subject}
    assert records[-1].details == {"from": "trader@example.com", "to": "new@example.com"}
    dump = table_dump(desk_of(app).databases)
    for secret in (*keys, STRONG_PASSWORD, OTHER_STRONG_PASSWORD):
        assert secret not in dump


def test_two_factor_and_sandbox_reset_are_recorded(
    app: Flask, trader: UserView, admin: UserView, trail: AuditTrail, clock: FixedClock
) -> None:
    import pyotp

    client = signed_in(app, "trader")
    post_form(client, "/settings", "/settings/2fa/begin", {})
    enrollment = desk_of(app).two_factor.pending(trader.id)
    assert enrollment is not None
    code = pyotp.TOTP(enrollment.secret).at(clock.now())
    assert (
        post_form(client, "/settings", "/settings/2fa/confirm", {"code": code}).status_code == 200
    )
    clock.advance(timedelta(seconds=60))
    code = pyotp.TOTP(enrollment.secret).at(clock.now())
    post_form(
        client, "/settings", "/settings/2fa/disable", {"password": STRONG_PASSWORD, "code": code}
    )
    token = csrf_token(client.get("/sandbox").data)
    assert (
        client.post("/sandbox/reset", data={"csrf_token": token}, headers=JSON).status_code == 200
    )
    boss = signed_in(app, "boss")
    token = csrf_token(boss.get("/sandbox").data)
    boss.post("/sandbox/reset", data={"csrf_token": token, "username": "trader"}, headers=JSON)
    trail.flush()
    records = list(reversed(trail.events(user_id=trader.id)))
    assert [(r.action, r.actor, r.subject) for r in records if r.action != "auth.login"] == [
        ("user.created", "system", "trader"),
        ("twofactor.enabled", "trader", "trader"),
        ("twofactor.disabled", "trader", "trader"),
        ("sandbox.reset", "trader", "trader"),
        ("sandbox.reset", "boss", "trader"),
    ]
    assert records[-1].details == {"available_cash": "10000000", "reset_count": 2}
    dump = table_dump(desk_of(app).databases)
    assert enrollment.secret not in dump and STRONG_PASSWORD not in dump
    assert trail.verify().intact


def test_a_cli_process_writes_its_records_before_it_exits(tmp_path: Path) -> None:
    """The writer thread is a daemon: the process must flush at exit, or records are lost."""
    env = {**os.environ, **desk_env(tmp_path), "DALAL_ENV_FILE": str(tmp_path / ".env")}
    created = run_flask_cli(
        env, "user", "create", "ops", "--email", "ops@example.com", "--password", STRONG_PASSWORD
    )
    assert created.returncode == 0, created.stderr
    verified = run_flask_cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == "Audit trail intact: 1 record verified."
    exported = run_flask_cli(env, "audit", "export")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(row["action"], row["actor"], row["subject"]) for row in rows] == [
        ("user.created", "cli", "ops")
    ]
