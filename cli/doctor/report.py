"""What a doctor check says: findings, the exit status, text and JSON output."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import click

OK, WARN, FAIL = "ok", "warn", "fail"
EXIT_CODES = {OK: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True, slots=True)
class Finding:
    check: str           # which check, e.g. "key" or "peer-link"
    status: str          # OK, WARN or FAIL
    message: str         # what was found, one line
    fix: str = ""        # what to do about it (empty for ok)


def ok(check: str, message: str) -> Finding:
    return Finding(check, OK, message)


def warn(check: str, message: str, fix: str) -> Finding:
    return Finding(check, WARN, message, fix)


def fail(check: str, message: str, fix: str) -> Finding:
    return Finding(check, FAIL, message, fix)


def overall(findings: Iterable[Finding]) -> str:
    worst = OK
    for finding in findings:
        if EXIT_CODES[finding.status] > EXIT_CODES[worst]:
            worst = finding.status
    return worst


def exit_code(findings: Iterable[Finding]) -> int:
    """0 all ok, 1 warnings, 2 failures."""
    return EXIT_CODES[overall(findings)]


def to_json(findings: list[Finding], head: dict[str, Any]) -> dict[str, Any]:
    result = overall(findings)
    return {**head, "result": result, "exit_code": EXIT_CODES[result],
            "checks": [asdict(f) for f in findings]}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def print_text(findings: list[Finding], title: str) -> None:
    click.echo(title)
    width = max((len(f.check) for f in findings), default=0)
    indent = " " * (2 + 5 + 1 + width + 2)
    for f in findings:
        click.echo(f"  {f.status:<5} {f.check:<{width}}  {f.message}")
        if f.fix:
            click.echo(f"{indent}fix: {f.fix}")
    counts = {s: sum(f.status == s for f in findings) for s in (OK, WARN, FAIL)}
    click.echo(f"{_plural(counts[OK], 'check')} ok, {_plural(counts[WARN], 'warning')}, "
               f"{_plural(counts[FAIL], 'failure')}")
