"""The Action Center: orders waiting for the trader's approval in semi-auto mode.

Only the count the dashboard shows exists yet. The queue itself comes with the Action Center
feature; until then nothing is ever queued, so nothing is pending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.desk import Desk


def pending_count(desk: Desk, user_id: int) -> int:
    """How many of the user's orders await approval (none: there is no queue yet)."""
    return 0
