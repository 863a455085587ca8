"""The federation peers of federation_peers.py, proven on each other:
Prosody 0.12 (p.localhost) and ejabberd 23.01 (e.localhost) federate on
loopback, and a user on each exchanges messages with one on the other
through slixmpp clients on their c2s ports.

Which s2s authentication they use depends on the certificates: peers whose
CAs are not trusted by each other fall back to dialback (XEP-0220); peers
with certificates from one trusted CA authenticate with SASL EXTERNAL
(XEP-0178). Each case checks the servers' logs for the method used.

In CI (CI set) a missing Prosody or ejabberd fails these tests: .ci/run
installs both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from federation_peers import EjabberdPeer, ProsodyPeer, federate, peers_available
from throwaway_ca import ThrowawayCA

# Cross-server delivery includes opening the s2s streams (TLS, then dialback
# or SASL EXTERNAL) on the first message.
S2S_WAIT = 15.0

# What each server logs for each s2s authentication method, per direction.
PROSODY_EXTERNAL_OUT = "SASL EXTERNAL with e.localhost succeeded"
PROSODY_EXTERNAL_IN = "Accepting SASL EXTERNAL identity from e.localhost"
PROSODY_DIALBACK_OUT = "sent dialback key on outgoing s2s stream"
PROSODY_DIALBACK_IN = "asking e.localhost if key"
EJABBERD_EXTERNAL_IN = "Accepted inbound s2s EXTERNAL authentication p.localhost -> e.localhost"
EJABBERD_EXTERNAL_OUT = "Accepted outbound s2s EXTERNAL authentication e.localhost -> p.localhost"
EJABBERD_DIALBACK_IN = "Accepted inbound s2s dialback authentication p.localhost -> e.localhost"
EJABBERD_DIALBACK_OUT = "Accepted outbound s2s dialback authentication e.localhost -> p.localhost"


@pytest.fixture
def tmp_root():
    """A temporary directory the CAs live in, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="vireo-fed-test-"))
    yield root
    if os.environ.get("VIREO_TEST_KEEP") != "1":
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_pair(request, tmp_root):
    """make_pair(shared_ca, **prosody_options) -> (prosody, ejabberd), told
    about each other and with an account each, not started. Both are
    stopped and removed after the test, and their logs end a failure's report."""
    missing = peers_available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run this with Prosody and ejabberd (.ci/run): {missing}")
        pytest.skip(missing)
    made = []
    request.node.log_sources = made

    def make(shared_ca: bool, **prosody_options):
        ca = ThrowawayCA(tmp_root, "shared-ca") if shared_ca else None
        p = ProsodyPeer("p.localhost", ca=ca, **prosody_options)
        made.append(p)
        e = EjabberdPeer("e.localhost", ca=ca)
        made.append(e)
        if shared_ca:
            federate(p, e)
        else:
            # Routes only: neither trusts the other's CA.
            p.routes[e.domain] = e.s2s_port
            e.routes[p.domain] = p.s2s_port
        p.add_user("alice", "alice-secret")
        e.add_user("bob", "bob-secret")
        return p, e

    yield make
    for peer in made:
        peer.cleanup()


async def exchange(xmpp, p: ProsodyPeer, e: EjabberdPeer, tag: str) -> None:
    """alice@p and bob@e each send the other a message, and each arrives."""
    alice = xmpp.client(p, p.jid("alice"), "alice-secret", name="alice@p")
    bob = xmpp.client(e, e.jid("bob"), "bob-secret", name="bob@e")
    await alice.connect(expect_mech=None)
    await bob.connect(expect_mech=None)
    alice.send_chat(e.jid("bob"), f"{tag}: hello from prosody")
    got = await bob.wait_message(sender=p.jid("alice"), body=f"{tag}: hello from prosody",
                                 timeout=S2S_WAIT)
    assert got["from"].bare == p.jid("alice")
    bob.send_chat(p.jid("alice"), f"{tag}: hello from ejabberd")
    got = await alice.wait_message(sender=e.jid("bob"), body=f"{tag}: hello from ejabberd",
                                   timeout=S2S_WAIT)
    assert got["from"].bare == e.jid("bob")
    await alice.close()
    await bob.close()


def assert_logged(peer, *needles: str) -> None:
    """Each of `needles` is in the peer's log, or soon is: ejabberd's
    logger writes a moment after the fact."""
    for needle in needles:
        peer.wait_log(needle, timeout=5.0)


def assert_not_logged(peer, *needles: str) -> None:
    """None of `needles` is in the peer's log: call it after assert_logged
    about the same streams, once the log has caught up with them."""
    text = peer.log_text()
    found = [n for n in needles if n in text]
    assert not found, f"{peer.name}: unexpectedly in its log: {found}\n{peer.log_tail()}"


@pytest.mark.asyncio
async def test_untrusted_certificates_federate_with_dialback(make_pair, xmpp):
    p, e = make_pair(shared_ca=False)
    p.start()
    e.start()
    await exchange(xmpp, p, e, "dialback")
    assert_logged(p, PROSODY_DIALBACK_OUT, PROSODY_DIALBACK_IN)
    assert_logged(e, EJABBERD_DIALBACK_IN, EJABBERD_DIALBACK_OUT)
    assert_not_logged(p, PROSODY_EXTERNAL_OUT, PROSODY_EXTERNAL_IN)
    assert_not_logged(e, EJABBERD_EXTERNAL_IN, EJABBERD_EXTERNAL_OUT)


@pytest.mark.asyncio
async def test_one_trusted_ca_federates_with_sasl_external(make_pair, xmpp):
    # Secure auth: Prosody refuses anything but a verified certificate.
    p, e = make_pair(shared_ca=True, s2s_secure_auth=True)
    p.start()
    e.start()
    await exchange(xmpp, p, e, "external")
    assert_logged(p, PROSODY_EXTERNAL_OUT, PROSODY_EXTERNAL_IN)
    assert_logged(e, EJABBERD_EXTERNAL_IN, EJABBERD_EXTERNAL_OUT)
    assert_not_logged(p, PROSODY_DIALBACK_OUT, PROSODY_DIALBACK_IN)
    assert_not_logged(e, EJABBERD_DIALBACK_IN, EJABBERD_DIALBACK_OUT)


@pytest.mark.asyncio
async def test_restarted_peers_keep_their_accounts_and_federate_again(make_pair, xmpp):
    p, e = make_pair(shared_ca=True)
    p.start()
    e.start()
    await exchange(xmpp, p, e, "before")
    p.restart()
    e.restart()
    await exchange(xmpp, p, e, "after")
