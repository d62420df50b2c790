"""API-key verification cost: first use (Argon2) and every later use (digest index + cache).

Target (issue: foundation): verifying a key costs well under a millisecond after first use.
Figures are printed as ratios to baselines measured in the same process:
  - a bare indexed SELECT of one row on the same SQLite database (the floor of any lookup);
  - one Argon2id verification (what every request would pay without the digest index).

Run: `make bench` (or .venv/bin/python bench/bench_apikey.py).
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from config import Settings
from database.engine import Databases
from database.migrate import upgrade_all
from database.models import ApiKey
from services import api_keys
from services.accounts import AccountService
from services.api_keys import ApiKeyService
from services.clock import SystemClock
from services.passwords import verify_secret

USERS = 200


def timed(action: Callable[[], object], rounds: int) -> float:
    """Median seconds per call over `rounds` calls (after a short warm-up)."""
    for _ in range(min(20, rounds)):
        action()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.from_mapping(
            {
                "APP_KEY": secrets.token_hex(32),
                "API_KEY_PEPPER": secrets.token_hex(32),
                "DATABASE_URL": f"sqlite:///{folder}/dalal.db",
                "SANDBOX_DATABASE_URL": f"sqlite:///{folder}/sandbox.db",
                "LATENCY_DATABASE_URL": f"sqlite:///{folder}/latency.db",
                "LOGS_DATABASE_URL": f"sqlite:///{folder}/logs.db",
            }
        )
        upgrade_all(settings)
        databases = Databases.from_settings(settings)
        clock = SystemClock()
        accounts = AccountService(databases, settings.api_key_pepper, clock, "sandbox")
        keys = ApiKeyService(databases, settings.api_key_pepper, clock)

        # Many users with keys, so a scan would show; the last key is the one measured.
        print(f"creating {USERS} users with API keys…", flush=True)
        key = ""
        for number in range(USERS):
            user = accounts.create_user(
                f"user{number:04d}", f"u{number}@example.com", "Nifty-Straddle-2026"
            )
            key = keys.create(user.id)
        digest = keys.digest(key)
        with databases.session() as session:
            stored_hash = session.scalar(select(ApiKey.key_hash).where(ApiKey.key_digest == digest))
        assert stored_hash is not None

        def indexed_select() -> object:
            with databases.session() as session:
                return session.scalar(select(ApiKey.id).where(ApiKey.key_digest == digest))

        baseline_select = timed(indexed_select, 2000)
        baseline_argon2 = timed(
            lambda: verify_secret(stored_hash, key, settings.api_key_pepper), 20
        )
        first_use = timed(lambda: ApiKeyService(
            databases, settings.api_key_pepper, clock).verify(key), 20)  # fmt: skip
        # After the one-second owner cache expires: the indexed SELECT plus the hash cache.
        api_keys.OWNER_TTL_SECONDS = 0.0
        later_use = timed(lambda: keys.verify(key), 5000)
        api_keys.OWNER_TTL_SECONDS = 1.0
        within_second = timed(lambda: keys.verify(key), 5000)

        print()
        print(f"{'measure':<44}{'median':>12}{'vs SELECT':>12}{'vs Argon2':>12}")
        rows = [
            ("baseline: indexed SELECT of one key row", baseline_select),
            ("baseline: one Argon2id verification", baseline_argon2),
            ("verify, first use (index + Argon2)", first_use),
            ("verify, later uses (index + cache)", later_use),
            ("verify, again within a second (owner cache)", within_second),
        ]
        for label, seconds in rows:
            print(
                f"{label:<44}{seconds * 1e6:>9.0f} µs"
                f"{seconds / baseline_select:>11.2f}x{seconds / baseline_argon2:>11.4f}x"
            )
        target = "MET" if later_use < 0.001 else "MISSED"
        print(f"\ntarget: later uses well under 1 ms -> {later_use * 1e6:.0f} µs ({target})")
        databases.dispose()


if __name__ == "__main__":
    main()
