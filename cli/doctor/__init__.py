"""`ynchain node doctor --home DIR`: what is wrong with a node, and what to do.

Each check is one small function `check_x(facts) -> Iterator[Finding]` that
reads what it needs from `Facts` (gathered lazily, once) and yields findings:
ok / warn / fail, each with a concrete fix.  CHECKS is the order they run and
print in; adding a check is writing the function and listing it here.

Where the doctor lives and what it may touch (DESIGN.md, "node doctor"): it is
a CLI command, so it reaches nodes through their HTTP API; on this host it
reads the node's home (config, genesis, key) and opens its store only while
the node is not running (the node holds the LevelDB lock otherwise); it
handshakes with peers under this node's key only then, too (cli.doctor.p2p
says why).  It never writes a block, a vote or a config file.

Still to come: key validity windows arrive with governance (issue 11); the
check for keys near expiry is then one more function here, reading this node's
and its organisation's key validity from the node's GET /config.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator

from .checks_local import (check_config, check_disk, check_genesis, check_key, check_ports,
                           check_process, check_store)
from .checks_network import (check_clock, check_commits, check_height, check_peer_genesis,
                             check_peer_links)
from .facts import Facts, Limits
from .report import Finding, exit_code, fail

Check = Callable[[Facts], Iterator[Finding]]

CHECKS: tuple[Check, ...] = (
    check_config, check_genesis, check_key, check_process, check_ports, check_disk, check_store,
    check_peer_genesis, check_peer_links, check_clock, check_height, check_commits,
)


def run_checks(facts: Facts, checks: Iterable[Check] = CHECKS) -> list[Finding]:
    findings: list[Finding] = []
    for check in checks:
        try:
            findings.extend(check(facts))
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            findings.append(fail(check.__name__.removeprefix("check_"),
                                 f"the check itself failed: {type(exc).__name__}: {exc}",
                                 "report this as a ynchain bug (YNCHAIN_DEBUG=1 shows a traceback)"))
            if os.environ.get("YNCHAIN_DEBUG"):
                raise
    return findings


__all__ = ["CHECKS", "Facts", "Finding", "Limits", "exit_code", "run_checks"]
