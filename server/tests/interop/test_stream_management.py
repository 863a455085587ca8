"""XEP-0198 stream management against slixmpp's own implementation.

A phone's connection breaks without a closing handshake: the session must
survive, a message sent meanwhile must arrive exactly once after the client
resumes, and if the client never comes back the message must end up in
offline storage rather than vanish.
"""

import asyncio

import pytest

from conftest import WAIT, QUIET

pytestmark = pytest.mark.asyncio


def with_sm(client):
    """Register slixmpp's XEP-0198 plugin (enable with resume after bind)."""
    client.xmpp.register_plugin("xep_0198")
    resumed = asyncio.Event()
    client.xmpp.add_event_handler("session_resumed", lambda _: resumed.set())
    enabled = asyncio.Event()
    client.xmpp.add_event_handler("sm_enabled", lambda _: enabled.set())
    return resumed, enabled


def bodies(client, body):
    return [m for m in client.received["message"] if m["body"] == body]


async def test_resume_after_cut_tcp_delivers_once(server, xmpp):
    alice_acc, bob_acc = server.new_account("smcut"), server.new_account("smbob")
    alice = xmpp.client(server, alice_acc, resource="phone", name="alice")
    resumed, enabled = with_sm(alice)
    await alice.connect()
    await asyncio.wait_for(enabled.wait(), WAIT)
    sm = alice.xmpp.plugin["xep_0198"]
    assert sm.sm_id, "the server offered no resumable session"
    bob = await xmpp.online(server, bob_acc, name="bob")

    bob.send_chat(str(alice.jid), "before the cut")
    await alice.wait_message(body="before the cut")

    # The network goes away: no </stream:stream>, the socket just dies.
    alice.abort()
    await alice.wait_disconnected()
    bob.send_chat(str(alice.jid), "while cut")
    await bob.sync()

    # slixmpp reconnects and resumes with the count of what it handled.
    alice.disconnected.clear()
    alice.xmpp.connect(server.host, server.c2s_port)
    await asyncio.wait_for(resumed.wait(), WAIT)
    await alice.wait_message(body="while cut")
    await asyncio.sleep(QUIET)
    assert len(bodies(alice, "while cut")) == 1, "the queued message arrived more than once"
    assert len(bodies(alice, "before the cut")) == 1, "a handled message was replayed"
    assert "session_start" in alice.events and alice.events.count("session_start") == 1, (
        f"the session was re-established, not resumed: {alice.events}")

    # The resumed session is the same one: same full JID, messages flow.
    bob.send_chat(str(alice.jid), "after resume")
    await alice.wait_message(body="after resume")


async def test_half_open_connection_is_taken_over(server, xmpp):
    """The old TCP connection still looks alive to the server (a phone that
    switched networks): a second connection resumes the session anyway, the
    old stream is ended with <conflict/>, and a message sent to the silent
    connection is replayed to the new one exactly once."""
    alice_acc, bob_acc = server.new_account("smhalf"), server.new_account("smbob2")
    old = xmpp.client(server, alice_acc, resource="phone", name="old")
    _, enabled = with_sm(old)
    await old.connect()
    await asyncio.wait_for(enabled.wait(), WAIT)
    bob = await xmpp.online(server, bob_acc, name="bob")
    bob.send_chat(str(old.jid), "seen by the old connection")
    await old.wait_message(body="seen by the old connection")

    # The old connection stops reading: bytes pile up in its socket buffer
    # and nothing is acknowledged, exactly like a half-open TCP connection.
    old_sm = old.xmpp.plugin["xep_0198"]
    old.xmpp.transport.pause_reading()
    bob.send_chat(str(old.jid), "sent into the void")
    await bob.sync()

    new = xmpp.client(server, alice_acc, resource="phone", name="new")
    resumed, _ = with_sm(new)
    new_sm = new.xmpp.plugin["xep_0198"]
    new_sm.sm_id = old_sm.sm_id
    new_sm.handled = old_sm.handled
    new.xmpp.connect(server.host, server.c2s_port)
    await asyncio.wait_for(resumed.wait(), WAIT)
    await new.wait_message(body="sent into the void")
    await asyncio.sleep(QUIET)
    assert len(bodies(new, "sent into the void")) == 1
    assert not bodies(new, "seen by the old connection"), "a handled message was replayed"
    assert str(new.jid) == str(old.jid)
    server.wait_log("session handed to a resuming connection")

    bob.send_chat(f"{alice_acc.jid}/phone", "to the resumed session")
    await new.wait_message(body="to the resumed session")


@pytest.fixture
def short_resume_server(configured_server):
    srv = configured_server
    cfg = srv.root / "vireo.toml"
    cfg.write_text("[stream]\nsmacks_resume_timeout = 2\n")
    srv.config_path = cfg
    srv.start()
    return srv


async def test_unresumed_session_times_out_into_offline_storage(short_resume_server, xmpp):
    srv = short_resume_server
    alice_acc, bob_acc = srv.new_account("smgone"), srv.new_account("smbob3")
    alice = xmpp.client(srv, alice_acc, resource="phone", name="alice")
    _, enabled = with_sm(alice)
    await alice.connect()
    await asyncio.wait_for(enabled.wait(), WAIT)
    bob = await xmpp.online(srv, bob_acc, name="bob")
    # Directed presence, so bob is told when alice's session really ends.
    alice.xmpp.send_presence(pto=str(bob.jid))
    await bob.wait_presence(str(alice.jid))

    alice.xmpp.transport.pause_reading()
    bob.send_chat(str(alice.jid), "unacknowledged")
    await bob.sync()
    alice.abort()

    # Hibernated sessions stay available until the timeout...
    await asyncio.sleep(1.0)
    assert not [p for p in bob.received["presence"] if p["type"] == "unavailable"]
    # ...then the session ends and bob sees it go.
    await bob.wait_presence(str(alice.jid), "unavailable", timeout=WAIT)

    # The message alice never acknowledged waits in offline storage.
    again = xmpp.client(srv, alice_acc, resource="tablet", name="alice-again")
    await again.connect()
    msg = await again.wait_message(body="unacknowledged")
    assert "urn:xmpp:delay" in str(msg), f"offline delivery carries a delay stamp: {msg}"
    await asyncio.sleep(QUIET)
    assert len(bodies(again, "unacknowledged")) == 1


async def test_switched_off_in_the_configuration(configured_server, xmpp):
    """smacks removed from stack/02-stream/management.toml: no <sm/> stream
    feature, so slixmpp's XEP-0198 plugin never enables; the session works."""
    import subprocess

    from conftest import VIREO_BIN

    srv = configured_server
    tree = srv.root / "conf"
    subprocess.run([str(VIREO_BIN), "config", "init", str(tree), "--domain", "localhost"],
                   check=True, capture_output=True)
    mgmt = tree / "stack" / "02-stream" / "management.toml"
    text = mgmt.read_text()
    assert 'modules = ["smacks", "csi"]' in text, text
    mgmt.write_text(text.replace('modules = ["smacks", "csi"]', 'modules = ["csi"]'))
    srv.config_path = tree
    srv.start()
    a = srv.new_account("nosm")
    c = xmpp.client(srv, a, name="nosm")
    _, enabled = with_sm(c)
    await c.connect()
    await c.sync()
    assert not enabled.is_set() and not c.xmpp.plugin["xep_0198"].sm_id
    assert "sm" not in c.xmpp.features, c.xmpp.features
