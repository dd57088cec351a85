"""The campaign's verdict: every check, and the one JSON summary.

    exactly_once        every tx acknowledged committed (wait=true) is in the chain exactly
                        once, and no tx id appears twice anywhere in it
    accepted_committed  every tx a node accepted is committed by the end of the drain,
                        unless the node that accepted it (or every node) was killed while
                        it was still pending: mempools are not durable, and a tx whose
                        relays every full peer mempool dropped lives only on its holder
                        (clients resubmit the same signed bytes; ids make that safe);
                        only near-expiry txs may expire
    same_chain          the same block hash at every height on every node (the final
                        scan and every sample of the run), and all nodes at one height
                        after the drain
    no_long_stall       no time without a new block anywhere longer than MAX_STALL_S,
                        counted while a quorum was up and connected and load offered
    api_responsive      no running, unfrozen node left GET /status unanswered longer
                        than MAX_UNRESPONSIVE_S
    rss                 no node's private memory (RssAnon) above the profile's limit;
                        VmRSS is reported beside it (it adds LevelDB's mapped table
                        files, page cache that grows with the chain: see
                        cli.procs.memory_kb)
    no_lonely_view      no node that could reach a quorum moved by itself to a view above
                        every other node's and stayed there longer than MAX_LONELY_S (a
                        view carried back from a partition or freeze is reported apart)
    clear_refusals      every API refusal is JSON with an error code, no 5xx but 503,
                        every tx refusal has a reason from ledger.admission.REASONS
    hostile_peers       every garbage p2p connection and stranger handshake was dropped
    log_rate            no node's log grew faster than MAX_LOG_LINES_PER_S (10 s windows)
    no_crash            no node exited unless the campaign killed it, and every SIGTERM
                        stopped its node cleanly (exit 0) within SIGTERM_TIMEOUT_S
    schemathesis        no server error and every answer as /openapi.json describes it
    completed           every episode ran: none skipped (no primary known, a chain that
                        never got quiet) and, in the ci profile, the first pass within its
                        time bound (a chain that keeps halting makes every episode wait
                        its full settle time)
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from .load import EXPIRY, TxBook
from .monitor import (STALL_REPORT_S, Tick, lonely_views, live_forks, max_log_rate, max_memory_mb,
                      stalls, unresponsive, view_changes)
from .scan import ChainScan

MAX_STALL_S = 10.0
MAX_UNRESPONSIVE_S = 5.0
MAX_LONELY_S = 10.0
MAX_LOG_LINES_PER_S = 50.0
SIGTERM_TIMEOUT_S = 10.0


def tx_outcomes(book: TxBook, scan: ChainScan, downs: Sequence[tuple[float, int | None]]) -> dict:
    """Acked, lost, duplicated and stranded txs (`downs`: (t, node) each time a node
    went down, node None when all were killed at once)."""
    occurrences = scan.occurrences
    acked_wait = [i for i, s in book.txs.items() if s.acked_height is not None]
    lost = [i for i in acked_wait if i not in occurrences]
    duplicated = {i: h for i, h in occurrences.items() if len(h) > 1}
    moved = [i for i in acked_wait if i in occurrences and book.txs[i].acked_height not in occurrences[i]]
    accepted = {i: s for i, s in book.txs.items() if s.accepted_at is not None}
    found_later = [i for i, s in accepted.items() if s.acked_height is None and i in occurrences]
    unanswered_committed = sum(1 for i, s in book.txs.items()
                               if s.accepted_at is None and i in occurrences)
    stranded: Counter = Counter()
    stranded_examples: list[dict] = []
    excused = 0
    expired_ok = 0
    for tx_id, sent in accepted.items():
        if tx_id in occurrences or sent.acked_height is not None:    # committed, or lost (above)
            continue
        if sent.kind == EXPIRY:
            expired_ok += 1
        elif any(t >= sent.accepted_at and node in (None, sent.node) for t, node in downs):
            excused += 1
        else:
            stranded[f"node{sent.node}:{sent.kind}"] += 1
            if len(stranded_examples) < 5:
                stranded_examples.append({"id": tx_id.hex(), "node": f"node{sent.node}",
                                          "accepted_at_s": round(sent.accepted_at, 1)})
    return {
        "sent": len(book.txs), "accepted": len(accepted),
        "acked": len(acked_wait) + len(found_later) + unanswered_committed,
        "acked_by_wait": len(acked_wait), "found_committed_later": len(found_later) + unanswered_committed,
        "lost": len(lost), "duplicated": len(duplicated),
        "acked_at_other_height": len(moved),
        "stranded": sum(stranded.values()), "stranded_by_node": dict(stranded),
        "lost_to_crash_excused": excused, "near_expiry_not_committed": expired_ok,
        "unanswered": book.unanswered,
        "examples": {"lost": [i.hex() for i in lost[:5]], "stranded": stranded_examples,
                     "duplicated": {i.hex(): h for i, h in list(duplicated.items())[:5]}},
    }


def _check(ok: bool, **details: Any) -> dict:
    return {"ok": bool(ok), **details}


def verdict(*, names: Sequence[str], quorum: int, ticks: Sequence[Tick], book: TxBook,
            scan: ChainScan, downs, crashes: list[dict], sigterms: list[dict],
            p2p: Counter, schemathesis: list[dict], rss_limit_mb: int,
            skipped: list[str]) -> tuple[dict, dict]:
    """(checks, figures) for the summary."""
    n = len(names)
    txs = tx_outcomes(book, scan, downs)
    all_stalls = stalls(ticks)
    longest = all_stalls[0].counted_s if all_stalls else 0.0
    lonely, carried = lonely_views(ticks, n, quorum)
    silent = unresponsive(ticks, n)
    rss = max_memory_mb(ticks, n)
    anon = max_memory_mb(ticks, n, "anon_kb")
    log_rates = max_log_rate(ticks, n)
    forks = live_forks(ticks)
    final_heights = scan.heights
    hostile_left = {k: v for k, v in p2p.items() if k.endswith(":left_open") or k.endswith(":accepted")}
    bad_sigterms = [s for s in sigterms if s["exit_code"] != 0 or s["seconds"] > SIGTERM_TIMEOUT_S]
    st_failed = [r for r in schemathesis if not r.get("ran") or r.get("exit_code") != 0]

    checks = {
        "exactly_once": _check(txs["lost"] == 0 and txs["duplicated"] == 0 and txs["acked_at_other_height"] == 0,
                               acked=txs["acked"], lost=txs["lost"], duplicated=txs["duplicated"]),
        "accepted_committed": _check(txs["stranded"] == 0, stranded=txs["stranded"],
                                     by_node=txs["stranded_by_node"]),
        "same_chain": _check(not scan.disagreements and not forks and not scan.errors
                             and len(set(final_heights)) == 1,
                             final_heights=dict(zip(names, final_heights)),
                             disagreements=scan.disagreements[:5], live_forks=forks[:5],
                             errors=scan.errors[:5]),
        "no_long_stall": _check(longest <= MAX_STALL_S, longest_s=round(longest, 1), limit_s=MAX_STALL_S),
        "api_responsive": _check(not silent or silent[0].seconds <= MAX_UNRESPONSIVE_S,
                                 longest=silent[0].to_json(names) if silent else None,
                                 limit_s=MAX_UNRESPONSIVE_S),
        "rss": _check(all(a is None or a <= rss_limit_mb for a in anon), limit_mb=rss_limit_mb,
                      max_anon_mb=dict(zip(names, anon)), max_rss_mb=dict(zip(names, rss))),
        "no_lonely_view": _check(not lonely or lonely[0].seconds <= MAX_LONELY_S, limit_s=MAX_LONELY_S,
                                 longest=[s.to_json(names) for s in lonely[:5] if s.seconds > 1.0]),
        "clear_refusals": _check(book.unclear_count == 0 and book.server_errors == 0,
                                 unclear=book.unclear_count, server_errors=book.server_errors,
                                 examples=book.unclear[:10]),
        "hostile_peers": _check(not hostile_left, outcomes=dict(p2p)),
        "log_rate": _check(max(log_rates, default=0) <= MAX_LOG_LINES_PER_S,
                           max_lines_per_s=dict(zip(names, log_rates)), limit=MAX_LOG_LINES_PER_S),
        "no_crash": _check(not crashes and not bad_sigterms, crashes=crashes, bad_sigterms=bad_sigterms),
        "schemathesis": _check(bool(schemathesis) and not st_failed, runs=len(schemathesis),
                               failed=st_failed[:2]),
        "completed": _check(not skipped, skipped=skipped),
    }
    figures = {
        "txs": {k: v for k, v in txs.items() if k != "examples"},
        "tx_examples": txs["examples"],
        "stalls": {"count": sum(1 for s in all_stalls if s.counted_s >= STALL_REPORT_S),
                   "longest_s": round(longest, 1),
                   "list": [s.to_json() for s in all_stalls if s.counted_s >= STALL_REPORT_S][:20]},
        "max_rss_mb": dict(zip(names, rss)),
        "max_anon_mb": dict(zip(names, anon)),
        "views": dict(zip(names, view_changes(ticks, n))),
        "unresponsive": [s.to_json(names) for s in silent[:5] if s.seconds > 1.0],
        "views_carried_from_partitions": [s.to_json(names) for s in carried[:5] if s.seconds > 1.0],
        "refusals": {"tx": dict(book.tx_refusals), "api": dict(book.api_refusals),
                     "unanswered_txs": book.unanswered},
    }
    return checks, figures
