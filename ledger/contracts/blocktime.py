"""Dates and times as contracts see them: from the block's timestamp only.

Calendar dates (a receivable's maturity, a harvest date) are days in China
Standard Time (UTC+8, no daylight saving), computed with integer arithmetic
so every node gets the same day for the same block.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "CST")
_OFFSET_MS = 8 * 3600 * 1000
_DAY_MS = 86_400_000
_EPOCH_DAY = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def block_date(time_ms: int) -> str:
    """The UTC+8 calendar day of a block time, as YYYY-MM-DD (ISO dates compare as text)."""
    return (_EPOCH_DAY + timedelta(days=(time_ms + _OFFSET_MS) // _DAY_MS)).isoformat()


def local_time(time_ms: int) -> str:
    """A block time for people: ISO 8601 in UTC+8, to the second (queries only)."""
    return (_EPOCH + timedelta(milliseconds=time_ms)).astimezone(CHINA).isoformat(timespec="seconds")
