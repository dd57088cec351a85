"""The validator mesh: TCP connections, length-prefixed frames, the X25519 +
ed25519 handshake, libsodium secretstream sessions, per-peer bounded queues.

Owns sockets and bytes.  Hands the node decoded message envelopes
((msg_type, payload) batches); never looks inside a payload and imports nothing
from node.core or node.api.
"""
