"""The node's core: everything between the transport and the store.

Consensus driver (carries out the Replica's actions), proposal checker,
proposer, chain (execute + store committed blocks), mempool, tx relay, block
sync, commit fan-out, peer message codes and their dispatch.  Synchronous code
except the few long-running tasks (proposer, relay flusher, block sync, timers),
all started by node.app.Node.  Never touches sockets (it sends through
node.transport.peers.PeerManager) and never serves HTTP.
"""
