"""PBFT consensus as a pure state machine (no clock, no randomness, no I/O).

    events.py        the interface: events in, actions out (and the driver's ordering rule)
    replica.py       Replica: the protocol's phases, step tables and transitions
    checkpoints.py   CheckpointLog: checkpoints collected, stabilised, garbage-collected
    validators.py    ValidatorSet: n, f, quorum, primary, key checks (one per epoch)
    epochs.py        the epoch schedule (which set decides which seq), certificate checks
    executor.py      Executor: carries out actions for a Host (node, simulator, tests)
    config.py        ReplicaConfig
    messages.py      wire messages, encode() / decode_message()
    verification.py  signature and proof checks, the NEW-VIEW re-proposal rule
    safety.py        the durable safety record
    errors.py        LocalProtocolError / RemoteProtocolError / SafetyRecordError
    sim/             the deterministic fault simulator (python -m consensus.sim)
"""
