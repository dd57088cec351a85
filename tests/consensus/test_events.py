"""Events check their own fields when built (as h11's do): a driver bug is a
LocalProtocolError where it is made, not a confusing failure inside the core."""

import pytest

from consensus.config import ReplicaConfig
from consensus.errors import LocalProtocolError
from consensus.events import Executed, MessageReceived, Propose, Synced, TimerFired
from consensus.messages import Prepare
from consensus.validators import ValidatorSet
from ledger.block import NULL_DIGEST

from .cluster import config, keys, make_payload

D = bytes(32)
VOTE = Prepare(0, 1, D, 1)


@pytest.mark.parametrize("build, reason", [
    (lambda: MessageReceived(-1, VOTE), "sender"),
    (lambda: MessageReceived(True, VOTE), "sender"),
    (lambda: MessageReceived(0, b"raw bytes"), "not a consensus message"),
    (lambda: TimerFired(1, 1), "kind"),
    (lambda: TimerFired("retransmit", -1), "token"),
    (lambda: Propose(0, *make_payload(0)), "seq"),
    (lambda: Propose(1, "text", D), "payload"),
    (lambda: Propose(1, make_payload(1)[0], b"short"), "digest"),
    (lambda: Propose(1, b"", make_payload(1)[1]), "go together"),
    (lambda: Propose(1, make_payload(1)[0], NULL_DIGEST), "go together"),
    (lambda: Executed(0, D), "seq"),
    (lambda: Executed(1, "hash"), "state_digest"),
    (lambda: Synced("3", D), "seq"),
    (lambda: Synced(3, D[:31]), "state_digest"),
])
def test_malformed_events_are_refused_when_built(build, reason):
    with pytest.raises(LocalProtocolError, match=reason):
        build()


def test_well_formed_events_build():
    assert MessageReceived(3, VOTE).message is VOTE
    assert Propose(1, *make_payload(1)).seq == 1
    assert Propose(2, b"", NULL_DIGEST).payload == b""
    assert Synced(0, D).seq == 0 and Executed(1, D).seq == 1 and TimerFired("x", 0).token == 0


@pytest.mark.parametrize("n, f, quorum", [(1, 0, 1), (3, 0, 2), (4, 1, 3), (5, 1, 4),
                                          (6, 1, 4), (7, 2, 5), (10, 3, 7)])
def test_the_validator_set_sizes_quorums_for_any_n(n, f, quorum):
    validators = ValidatorSet([k.public_key for k in keys(n)])
    assert (validators.n, validators.f, validators.quorum) == (n, f, quorum)
    # two quorums always share a correct validator: 2q - n > f
    assert 2 * validators.quorum - n > f
    assert [validators.primary(v) for v in range(n + 1)] == list(range(n)) + [0]
    assert 0 in validators and n - 1 in validators
    assert n not in validators and -1 not in validators and "0" not in validators


def test_the_validator_set_checks_signatures_against_its_keys():
    k = keys(4)
    validators = ValidatorSet([key.public_key for key in k])
    assert validators.verify(2, b"data", k[2].sign(b"data"))
    assert not validators.verify(1, b"data", k[2].sign(b"data"))
    assert not validators.verify(9, b"data", k[2].sign(b"data"))


@pytest.mark.parametrize("overrides, reason", [
    (dict(validators=()), "need 1"),
    (dict(validators=(b"short",)), "32 bytes"),
    (dict(validators=(bytes(32), bytes(32))), "duplicate"),
    (dict(me=4), "not a validator index"),
    (dict(me=-1), "not a validator index"),
    (dict(check_invariants=1), "check_invariants"),
])
def test_a_bad_config_is_refused(overrides, reason):
    params = dict(me=0) | overrides
    me = params.pop("me")
    with pytest.raises(LocalProtocolError, match=reason):
        config(4, me, **params)
    assert isinstance(config(4, 0), ReplicaConfig)
