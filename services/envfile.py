"""Creating `.env` from `.env.sample` with fresh secrets, never overwriting an existing one."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

# Keys whose sample value is empty and which must be filled with a fresh random secret.
GENERATED_SECRETS = ("APP_KEY", "API_KEY_PEPPER")

_ASSIGNMENT = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def ensure_env_file(env_path: Path, sample_path: Path) -> bool:
    """Create `env_path` from the sample if it is missing. Returns True when it was created."""
    if env_path.exists():
        return False
    lines = []
    for line in sample_path.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match["key"] in GENERATED_SECRETS and not match["value"].strip():
            line = f"{match['key']}={secrets.token_hex(32)}"
        lines.append(line)
    # O_EXCL: if two processes race to create it, only one wins and nothing is overwritten.
    try:
        fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return True
