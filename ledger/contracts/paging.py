"""Index keys and paginated reads, shared by the contracts' queries.

An index is an ordinary table of the contract, written by the same tx (so in
the block's own batch) as the record it points to: `<table>/<group>/<order>`
with a value naming the record.  Listing a group is an ordered scan of its
prefix; the cursor a page returns is the last key part it read, and the next
page starts after it.  Group and order parts never contain "/", so a
group's prefix `group + "/"` matches exactly that group.
"""

from __future__ import annotations

from typing import Any

from .base import QueryReader

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_CURSOR_LEN = 256


def height_part(height: int) -> str:
    """Heights as fixed-width text, so key order is height order (heights < 10**12)."""
    return f"{height:012d}"


def page(reader: QueryReader, table: str, group: str, after: str | None,
         limit: int) -> tuple[list[tuple[str, Any]], str | None]:
    """One page of a group: ([(order key, value)], cursor of the next page or None)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"page size must be in 1..{MAX_PAGE}")
    rows = reader.scan(table, group + "/", after, limit + 1)
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1][0]
    return rows, None
