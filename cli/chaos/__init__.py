"""`ynchain chaos` / `python -m cli.chaos` / `make chaos`: a seeded fault campaign
against a fresh local testnet, ending in one JSON verdict.

    plan.py      the schedule: a pure function of the seed and the profile
    testbed.py   the testnet and its node processes (always cleaned up)
    proxy.py     a fault proxy per ordered pair of validators (cut, delay, heal)
    load.py      signed txs, the steady load, and the book of what became of each
    attacks.py   p2p garbage and connection floods, API abuse, schemathesis
    monitor.py   twice-a-second samples of every node, and the analyses over them
    scan.py      the final read of every node's chain through the API
    checks.py    the checks and the figures of the summary
    campaign.py  one run: testnet, load, faults, drain, scan, verdict
    command.py   the click command
"""
