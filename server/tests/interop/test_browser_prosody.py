"""The web clients of browser.py proven on a known-correct server: Debian's
Prosody 0.12 with mod_websocket (/xmpp-websocket) and mod_bosh (/http-bind)
on a plain-HTTP loopback port. Converse.js in headless Chromium over
WebSocket and over BOSH, and xmpp.js over WebSocket, each log in, find the
other user in the roster and exchange a message with a slixmpp client (on
Prosody's c2s port) in both directions.

Not part of the default suite (it tests the harness, not Vireo): it runs
only with VIREO_DEV_PROSODY_BROWSER=1, e.g.

    VIREO_DEV_PROSODY_BROWSER=1 VIREO_BIN=/bin/true \\
        server/tests/interop/run.sh -k browser_prosody -v -s

(VIREO_BIN: no vireo is needed; -s shows each run's timings.)
"""

from __future__ import annotations

import os

import pytest

from browser import browser_missing, converse, make_contacts, xmppjs_ws
from conftest import port_accepts
from federation_peers import ProsodyPeer, peers_available

pytestmark = pytest.mark.skipif(
    os.environ.get("VIREO_DEV_PROSODY_BROWSER") != "1",
    reason="a harness check against Prosody: set VIREO_DEV_PROSODY_BROWSER=1")


class ProsodyWebPeer(ProsodyPeer):
    """ProsodyPeer plus BOSH and WebSocket on a plain-HTTP loopback port.

    consider_*_secure: the web sessions count as encrypted, so the
    c2s_require_encryption of the TCP port does not refuse them (behind a
    TLS-terminating proxy in real life). CORS: Prosody 0.12 answers any
    Origin on both endpoints by default (cross_domain_* are deprecated), as
    the page comes from another loopback port. http_default_host: requests
    to 127.0.0.1:PORT (not the domain) are served by the VirtualHost."""

    spare_ports = 1
    # blocklist (XEP-0191): Converse 14 waits for it before it opens a chat
    # with (or takes a message from) anyone not in the roster, forever when
    # the server does not announce urn:xmpp:blocking.
    extra_modules = ("bosh", "websocket", "blocklist")

    def __init__(self, domain: str = "localhost", **kw):
        super().__init__(domain, **kw)
        self.http_port = self._spare_ports[0]
        self.http_ports = (self.http_port,)
        self.extra_config = (
            'http_interfaces = { "127.0.0.1" }\n'
            f'http_default_host = "{domain}"\n'
            'consider_websocket_secure = true\n'
            'consider_bosh_secure = true\n')

    @property
    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/xmpp-websocket"

    @property
    def bosh_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/http-bind"

    def ready(self) -> bool:
        return super().ready() and port_accepts(self.http_port)


@pytest.fixture
def prosody(request):
    """Prosody with WebSocket and BOSH, accounts alice and bob (passwords
    alice-pw and bob-pw), stopped and removed after the test."""
    missing = browser_missing() or peers_available()
    if missing:
        pytest.skip(missing)
    p = ProsodyWebPeer()
    request.node.log_sources = [p]
    try:
        p.add_user("alice", "alice-pw")
        p.add_user("bob", "bob-pw")
        p.start()
        yield p
    finally:
        p.cleanup()


async def contacts(xmpp, p: ProsodyWebPeer):
    """alice and bob subscribed to each other (roster 'both'); alice's
    slixmpp session is closed again, bob stays online for the exchange."""
    alice = await xmpp.online(p, p.jid("alice"), "alice-pw", name="alice (setup)")
    bob = await xmpp.online(p, p.jid("bob"), "bob-pw", name="bob")
    await make_contacts(alice, bob)
    await alice.close()
    return bob


async def exchange(web, bob, alice_jid: str, bob_jid: str, tag: str) -> None:
    """The web client (alice) and bob (slixmpp) exchange one message each way."""
    assert (await web.wait_for("connected")).startswith(alice_jid + "/"), web.output()
    roster = (await web.wait_for("roster")).split(",")
    assert bob_jid in roster, f"{bob_jid} not in {roster}\n{web.output()}"
    assert await web.wait_for("sent") == f"{tag}: hello bob", web.output()
    await bob.wait_message(sender=alice_jid, body=f"{tag}: hello bob", timeout=20)
    bob.send_chat(alice_jid, f"{tag}: hello alice")
    assert await web.wait_for("received") == f"{tag}: hello alice", web.output()


def report(web) -> None:
    """The run's duration and its own timings (shown with -s)."""
    timings = " ".join(line for line in web.lines if line.startswith(("browser:", "timing:")))
    print(f"\n{web.name}: {web.seconds():.1f}s ({timings})")


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["websocket", "bosh"])
async def test_converse_chats_over_prosody(prosody, xmpp, transport):
    bob = await contacts(xmpp, prosody)
    alice_jid, bob_jid = prosody.jid("alice"), prosody.jid("bob")
    url = {"websocket": prosody.websocket_url} if transport == "websocket" else {"bosh": prosody.bosh_url}
    async with converse(alice_jid, "alice-pw", peer=bob_jid, send=f"{transport}: hello bob",
                        expect=f"{transport}: hello alice", **url) as web:
        await exchange(web, bob, alice_jid, bob_jid, transport)
        # Rendered in the open chat, not only in Converse's model.
        assert await web.wait_for("displayed") == f"{transport}: hello alice", web.output()
        await web.finish()
    report(web)


@pytest.mark.asyncio
async def test_xmppjs_chats_over_prosody_websocket(prosody, xmpp):
    bob = await contacts(xmpp, prosody)
    alice_jid, bob_jid = prosody.jid("alice"), prosody.jid("bob")
    async with xmppjs_ws(alice_jid, "alice-pw", websocket=prosody.websocket_url, peer=bob_jid,
                         send="xmppjs: hello bob", expect="xmppjs: hello alice") as web:
        await exchange(web, bob, alice_jid, bob_jid, "xmppjs")
        await web.finish()
    report(web)
