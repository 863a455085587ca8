"""XEP-0012 Last Activity of accounts, with slixmpp's xep_0012 plugin: the
server answers for an offline contact with the seconds since its logout
and the status it left with (stored durably), 0 while it is online, and
forbidden without a presence subscription."""

import asyncio
import subprocess

import pytest
from slixmpp.exceptions import IqError

from conftest import VIREO_BIN, WAIT


async def subscribe(watcher, target, watcher_jid, target_jid):
    watcher.xmpp.send_presence(pto=target_jid, ptype="subscribe")
    await target.wait_presence(watcher_jid, "subscribe")
    target.xmpp.send_presence(pto=watcher_jid, ptype="subscribed")
    await watcher.wait_presence(target_jid, "subscribed")


def last_client(xmpp, srv, account, name):
    c = xmpp.client(srv, account, name=name)
    c.xmpp.register_plugin("xep_0012")
    return c


async def last(client, jid):
    r = await client.xmpp.plugin["xep_0012"].get_last_activity(jid, timeout=WAIT)
    return r["last_activity"]["seconds"], r["last_activity"]["status"] or ""


@pytest.mark.asyncio
async def test_last_logout_of_a_contact(own_server, xmpp):
    srv = own_server
    a, b, c = srv.new_account("gone"), srv.new_account("friend"), srv.new_account("stranger")
    alice = await xmpp.online(srv, a, name="alice")
    bob = last_client(xmpp, srv, b, "bob")
    await bob.connect()
    carol = last_client(xmpp, srv, c, "carol")
    await carol.connect()
    await subscribe(bob, alice, b.jid, a.jid)
    assert await last(bob, a.jid) == (0, "")

    with pytest.raises(IqError) as err:
        await last(carol, a.jid)
    assert err.value.iq["error"]["condition"] == "forbidden"

    alice.xmpp.send_presence(ptype="unavailable", pstatus="Heading Home")
    await bob.wait_presence(a.jid, "unavailable")
    await alice.close()
    await asyncio.sleep(2.2)
    seconds, status = await last(bob, a.jid)
    assert 2 <= seconds <= 2 + WAIT, seconds
    assert status == "Heading Home"

    # Stored, not remembered: the answer survives a restart.
    await asyncio.to_thread(srv.restart)
    bob2 = last_client(xmpp, srv, b, "bob2")
    await bob2.connect()
    seconds, status = await last(bob2, a.jid)
    assert seconds >= 2 and status == "Heading Home", (seconds, status)


@pytest.mark.asyncio
async def test_switched_off_with_the_module(configured_server, xmpp):
    srv = configured_server
    tree = srv.root / "conf"
    subprocess.run([str(VIREO_BIN), "config", "init", str(tree), "--domain", "localhost"],
                   check=True, capture_output=True)
    ext = tree / "stack" / "04-protocol" / "extensions.toml"
    text = ext.read_text()
    assert '"last", ' in text, text
    ext.write_text(text.replace('"last", ', ""))
    srv.config_path = tree
    srv.start()
    a, b = srv.new_account("quiet"), srv.new_account("asker")
    alice = await xmpp.online(srv, a, name="alice")
    bob = last_client(xmpp, srv, b, "bob")
    await bob.connect()
    await subscribe(bob, alice, b.jid, a.jid)
    with pytest.raises(IqError) as err:
        await last(bob, a.jid)
    assert err.value.iq["error"]["condition"] == "service-unavailable"
