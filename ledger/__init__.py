"""The data model every layer shares: transactions, blocks, certificates,
keys, genesis, and the deterministic execution engine. Pure: no I/O but key files."""
