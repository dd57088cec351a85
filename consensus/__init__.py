"""PBFT consensus as a pure state machine (no clock, no randomness, no I/O).

    events.py        the interface: events in, actions out (and the driver's ordering rule)
    config.py        ReplicaConfig
    messages.py      wire messages, encode() / decode_message()
    verification.py  signature and proof checks, the NEW-VIEW re-proposal rule
    safety.py        the durable safety record
    replica.py       Replica: the protocol's phases and transitions
    errors.py        LocalProtocolError / RemoteProtocolError / SafetyRecordError
    sim/             the deterministic fault simulator (python -m consensus.sim)
"""
