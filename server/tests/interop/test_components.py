"""XEP-0114 external components against slixmpp's ComponentXMPP: the
handshake (accepted, wrong secret, unknown name, second connection),
messages both ways between a user and the component, the server's disco
items, and errors while the component is away."""

import asyncio
import secrets

import pytest
import slixmpp

from components import Component, start_with_components
from conftest import WAIT, RawConn

SECRET = secrets.token_hex(16)
HEADER = (
    "<stream:stream xmlns='jabber:component:accept' "
    "xmlns:stream='http://etherx.jabber.org/streams' to='{to}'>"
)


@pytest.mark.asyncio
async def test_component_talks_with_a_user(configured_server, xmpp):
    srv = configured_server
    start_with_components(srv, {"echo.localhost": SECRET})
    comp = await Component(srv, "echo.localhost", SECRET).online()

    def echo(msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            comp.xmpp.send_message(mto=msg["from"], mfrom=msg["to"],
                                   mbody=f"echo: {msg['body']}", mtype="chat")
    comp.xmpp.add_event_handler("message", echo)
    try:
        a = srv.new_account("compuser")
        alice = xmpp.client(srv, a, name="alice")
        alice.xmpp.register_plugin("xep_0030")
        await alice.connect()

        alice.send_chat("bot@echo.localhost", "hello component")
        got = await comp.wait_message(lambda m: m["body"] == "hello component")
        assert got["from"].full == alice.jid.full
        assert got["to"].full == "bot@echo.localhost"
        reply = await alice.wait_message(sender="bot@echo.localhost", body="echo: hello component")
        assert reply["from"].bare == "bot@echo.localhost"

        items = await alice.xmpp.plugin["xep_0030"].get_items(jid="localhost", timeout=WAIT)
        jids = {i[0] for i in items["disco_items"]["items"]}
        assert "echo.localhost" in jids, jids
    finally:
        await comp.close()


@pytest.mark.asyncio
async def test_wrong_secret_unknown_name_and_second_connection_are_refused(configured_server):
    srv = configured_server
    start_with_components(srv, {"echo.localhost": SECRET})

    wrong = Component(srv, "echo.localhost", "not-the-secret")
    try:
        outcome = await wrong.connect()
        assert outcome == "disconnected", f"{outcome}; events={wrong.events}"
        assert wrong.stream_errors == ["not-authorized"], wrong.events
        assert not wrong.started.is_set()
    finally:
        await wrong.close()

    # An unknown name, seen on the wire: our header, then host-unknown.
    raw = RawConn(srv.component_port)
    try:
        raw.send(HEADER.format(to="nobody.localhost"))
        res = raw.read_until_closed(WAIT)
        assert res.header is not None and res.header.get("from") == "nobody.localhost", res.describe()
        assert res.stream_error() == "host-unknown", res.describe()
        assert res.closed, res.describe()
    finally:
        raw.close()

    first = await Component(srv, "echo.localhost", SECRET).online()
    second = Component(srv, "echo.localhost", SECRET)
    try:
        outcome = await second.connect()
        assert outcome == "disconnected", f"{outcome}; events={second.events}"
        assert second.stream_errors == ["conflict"], second.events
        assert not first.disconnected.is_set(), first.events
    finally:
        await second.close()
        await first.close()


@pytest.mark.asyncio
async def test_component_away_and_spoofing(configured_server, xmpp):
    srv = configured_server
    start_with_components(srv, {"echo.localhost": SECRET})
    a = srv.new_account("lonely")
    alice = await xmpp.online(srv, a, name="alice")

    # Configured but not connected: service-unavailable.
    alice.send_chat("bot@echo.localhost", "anyone?")
    err = await alice.wait_for(
        "message", lambda m: m["type"] == "error" and m["from"].bare == "bot@echo.localhost",
        desc="error from the absent component")
    assert err["error"]["condition"] == "service-unavailable", str(err)

    # A component sending as a user of the server is cut off.
    comp = await Component(srv, "echo.localhost", SECRET).online()
    try:
        spoof = comp.xmpp.make_message(mto=a.jid, mbody="I am the admin",
                                       mfrom=slixmpp.JID("admin@localhost"))
        spoof.send()
        await comp.wait_disconnected()
        assert comp.stream_errors == ["invalid-from"], comp.events
        await asyncio.sleep(0.5)
        assert not [m for m in alice.received["message"] if m["body"] == "I am the admin"]
    finally:
        await comp.close()


def test_check_config_accepts_components(configured_server):
    srv = configured_server
    start_with_components(srv, {"echo.localhost": SECRET})
    res = srv.cli_config("check", "config")
    assert res.returncode == 0, res.stdout + res.stderr
    shown = srv.cli_config("config", "show", "interfaces")
    assert "interfaces.component.echo.localhost" in shown.stdout, shown.stdout
    assert SECRET not in shown.stdout + shown.stderr
