"""XEP-0191 blocking with slixmpp's xep_0191 plugin: a blocked contact's
messages never arrive, the list survives a restart, unblocking restores
delivery."""

import asyncio

import pytest

from conftest import QUIET


@pytest.mark.asyncio
async def test_blocked_contact_never_reaches_the_user(own_server, xmpp):
    srv = own_server
    a = srv.new_account("blocker")
    b = srv.new_account("blocked")
    alice = xmpp.client(srv, a, name="alice")
    alice.xmpp.register_plugin("xep_0191")
    await alice.connect()
    bob = await xmpp.online(srv, b, name="bob")

    await alice.xmpp.plugin["xep_0191"].block(b.jid, timeout=5)
    blocked = await alice.xmpp.plugin["xep_0191"].get_blocked(timeout=5)
    assert f'jid="{b.jid}"' in str(blocked["blocklist"]), str(blocked)

    bob.send_chat(a.jid, "you should never see this")
    await asyncio.sleep(QUIET)
    assert not [m for m in alice.received["message"] if m["body"] == "you should never see this"]

    # Still blocked after a restart: the list is stored.
    await asyncio.to_thread(srv.restart)
    alice2 = xmpp.client(srv, a, name="alice2")
    alice2.xmpp.register_plugin("xep_0191")
    await alice2.connect()
    bob2 = await xmpp.online(srv, b, name="bob2")
    bob2.send_chat(a.jid, "still blocked?")
    await asyncio.sleep(QUIET)
    assert not [m for m in alice2.received["message"] if m["body"] == "still blocked?"]

    await alice2.xmpp.plugin["xep_0191"].unblock(b.jid, timeout=5)
    bob2.send_chat(a.jid, "unblocked now")
    await alice2.wait_message(sender=b.jid, body="unblocked now")
