"""XEP-0352 client state indication with slixmpp's xep_0352 plugin: while
inactive, presence waits; a message with a body arrives at once, preceded by
what was held."""

import asyncio

import pytest

from conftest import QUIET


@pytest.mark.asyncio
async def test_inactive_holds_presence_and_lets_messages_through(server, xmpp):
    a = server.new_account("csi")
    b = server.new_account("csipeer")
    alice = xmpp.client(server, a, name="alice")
    alice.xmpp.register_plugin("xep_0352")
    await alice.connect()
    bob = await xmpp.online(server, b, name="bob")

    alice.xmpp.plugin["xep_0352"].send_inactive()
    await alice.sync()
    before = len(alice.received["presence"])
    bob.xmpp.send_presence(pto=alice.jid.full, pshow="away")
    await asyncio.sleep(QUIET)
    assert len(alice.received["presence"]) == before, "presence delivered while inactive"

    bob.send_chat(alice.jid.full, "important")
    await alice.wait_message(sender=b.jid, body="important")
    held = [p for p in alice.received["presence"][before:] if p["from"].bare == b.jid]
    assert held and held[-1]["show"] == "away", "held presence flushed before the message"

    bob.xmpp.send_presence(pto=alice.jid.full, pshow="dnd")
    await asyncio.sleep(QUIET)
    n = len(alice.received["presence"])
    alice.xmpp.plugin["xep_0352"].send_active()
    for _ in range(50):
        if len(alice.received["presence"]) > n:
            break
        await asyncio.sleep(0.05)
    assert alice.received["presence"][-1]["show"] == "dnd", "active flushes the held presence"
