"""Web clients nobody here wrote, on Vireo's HTTP endpoints (issue 14):
Converse.js in headless Debian Chromium over WebSocket (RFC 7395,
/xmpp-websocket) and over BOSH (XEP-0206, /http-bind), and xmpp.js over
WebSocket. Each logs in as alice, finds bob in its roster and exchanges a
message with bob, a slixmpp client on the c2s port, in both directions;
Converse also renders the reply in its chat view.

The page Converse runs in is served from another loopback port, so the
browser sends a cross-origin WebSocket Origin and a CORS preflight for
BOSH, as with a real deployment's web client on its own site. The HTTP
port is plain, with `*_consider_secure` standing in for the
TLS-terminating proxy in front of it (browser.py never trusts the
server's self-signed certificate). See test_browser_prosody.py for the
same harness against Prosody."""

from __future__ import annotations

import pytest

from browser import browser_missing, converse, make_contacts, xmppjs_ws
from conftest import ConfiguredVireoServer

CONFIG = (
    "[interfaces]\n"
    "websocket_consider_secure = true\n"
    "bosh_consider_secure = true\n")


@pytest.fixture(scope="module")
def web_server(request, tmp_path_factory):
    missing = browser_missing()
    if missing:
        pytest.fail(f"the web client tests cannot run: {missing}")
    config = tmp_path_factory.mktemp("web") / "vireo.toml"
    config.write_text(CONFIG)
    srv = ConfiguredVireoServer(request.module.__name__, config)
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


async def contacts(xmpp, srv):
    """Fresh alice and bob, subscribed to each other; bob stays online."""
    a = srv.new_account("webalice")
    b = srv.new_account("webbob")
    alice = await xmpp.online(srv, a, name="alice (setup)")
    bob = await xmpp.online(srv, b, name="bob")
    await make_contacts(alice, bob)
    await alice.close()
    return a, b, bob


async def exchange(web, bob, alice_jid: str, bob_jid: str, tag: str) -> None:
    """The web client (alice) and bob exchange one message each way."""
    assert (await web.wait_for("connected")).startswith(alice_jid + "/"), web.output()
    roster = (await web.wait_for("roster")).split(",")
    assert bob_jid in roster, f"{bob_jid} not in {roster}\n{web.output()}"
    assert await web.wait_for("sent") == f"{tag}: hello bob", web.output()
    await bob.wait_message(sender=alice_jid, body=f"{tag}: hello bob", timeout=20)
    bob.send_chat(alice_jid, f"{tag}: hello alice")
    assert await web.wait_for("received") == f"{tag}: hello alice", web.output()


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", ["websocket", "bosh"])
async def test_converse_logs_in_sees_its_roster_and_chats(web_server, xmpp, transport):
    a, b, bob = await contacts(xmpp, web_server)
    port = web_server.http_port
    url = ({"websocket": f"ws://127.0.0.1:{port}/xmpp-websocket"} if transport == "websocket"
           else {"bosh": f"http://127.0.0.1:{port}/http-bind"})
    async with converse(a.jid, a.password, peer=b.jid, send=f"{transport}: hello bob",
                        expect=f"{transport}: hello alice", **url) as web:
        await exchange(web, bob, a.jid, b.jid, transport)
        assert await web.wait_for("displayed") == f"{transport}: hello alice", web.output()
        await web.finish()


@pytest.mark.asyncio
async def test_xmppjs_chats_over_websocket(web_server, xmpp):
    a, b, bob = await contacts(xmpp, web_server)
    ws = f"ws://127.0.0.1:{web_server.http_port}/xmpp-websocket"
    async with xmppjs_ws(a.jid, a.password, websocket=ws, peer=b.jid,
                         send="xmppjs: hello bob", expect="xmppjs: hello alice") as web:
        await exchange(web, bob, a.jid, b.jid, "xmppjs")
        await web.finish()
