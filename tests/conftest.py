"""Suite-wide guard: no test may hang CI.

Async tests bound themselves with trio.fail_after; this is the backstop for
everything else (a sync test stuck on a lock, a subprocess that never exits).
A test still running after HANG_LIMIT_S dumps every thread's traceback and
ends the run, so a hang shows up as a diagnosable failure within minutes.
"""

import faulthandler
import sys

import pytest

HANG_LIMIT_S = 300


@pytest.fixture(autouse=True)
def _hang_guard():
    faulthandler.dump_traceback_later(HANG_LIMIT_S, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
