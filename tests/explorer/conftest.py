"""Where the browser test's screenshots went, said once at the end of the run."""

from __future__ import annotations

SCREENSHOTS: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if SCREENSHOTS:
        terminalreporter.write_line(f"explorer screenshots: {SCREENSHOTS[0]}")
