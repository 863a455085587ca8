"""Presence subscriptions, availability broadcast and roster pushes (RFC 6121)."""

import asyncio

import pytest
import slixmpp

from conftest import WAIT, unique_user


async def _subscribe(xmpp_from, xmpp_to, from_jid: str, to_jid: str) -> None:
    """`from` asks `to` for a subscription and `to` approves it explicitly."""
    xmpp_from.xmpp.send_presence(pto=to_jid, ptype="subscribe")
    req = await xmpp_to.wait_presence(from_jid, "subscribe")
    assert req["from"].bare == from_jid
    xmpp_to.xmpp.send_presence(pto=from_jid, ptype="subscribed")
    ok = await xmpp_from.wait_presence(to_jid, "subscribed")
    assert ok["from"].bare == to_jid


@pytest.mark.asyncio
async def test_mutual_subscription_and_availability(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    alice = await xmpp.online(server, a, resource="a1", name="alice")
    bob = await xmpp.online(server, b, resource="b1", name="bob")

    # alice -> bob; once approved alice receives bob's current presence.
    await _subscribe(alice, bob, a.jid, b.jid)
    await alice.wait_presence(bob.jid.full, "available", full=True)

    # bob -> alice.
    await _subscribe(bob, alice, b.jid, a.jid)
    await bob.wait_presence(alice.jid.full, "available", full=True)

    # bob goes offline (clean stream close): alice sees it.
    bob_full = bob.jid.full
    await bob.close()
    await alice.wait_presence(bob_full, "unavailable", full=True)

    # bob comes back with another resource: both see each other online.
    bob2 = await xmpp.online(server, b, resource="b2", name="bob2")
    await alice.wait_presence(bob2.jid.full, "available", full=True)
    await bob2.wait_presence(alice.jid.full, "available", full=True)

    # The subscription is stored as 'both' on each side.
    assert bob2.xmpp.client_roster[a.jid]["subscription"] == "both", bob2.xmpp.client_roster[a.jid]
    items = await alice.fetch_roster()
    assert slixmpp.JID(b.jid) in items, items
    assert items[slixmpp.JID(b.jid)]["subscription"] == "both", items

    # alice goes offline: bob sees it.
    alice_full = alice.jid.full
    await alice.close()
    await bob2.wait_presence(alice_full, "unavailable", full=True)


@pytest.mark.asyncio
async def test_unavailable_broadcast_when_connection_drops(server, xmpp):
    """No </stream:stream>, just a dropped TCP connection."""
    a = server.new_account("alice")
    b = server.new_account("bob")
    alice = await xmpp.online(server, a, name="alice")
    bob = await xmpp.online(server, b, name="bob")
    await _subscribe(alice, bob, a.jid, b.jid)
    await alice.wait_presence(bob.jid.full, "available", full=True)

    bob_full = bob.jid.full
    bob.abort()
    await alice.wait_presence(bob_full, "unavailable", full=True, timeout=WAIT * 2)


@pytest.mark.asyncio
async def test_no_presence_leak_without_subscription(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    alice = await xmpp.online(server, a, name="alice")
    bob = await xmpp.online(server, b, name="bob")
    bob.xmpp.send_presence(pstatus="busy")
    await bob.sync()
    leaked = await alice.collect("presence", lambda p: p["from"].bare == b.jid)
    assert not leaked, [str(p) for p in leaked]


@pytest.mark.asyncio
async def test_roster_push_reaches_second_resource(server, xmpp):
    acc = server.new_account("multi")
    r1 = await xmpp.online(server, acc, resource="one", name="res-one")
    r2 = await xmpp.online(server, acc, resource="two", name="res-two")
    contact = slixmpp.JID(server.jid(unique_user("carol")))
    name = "Carol ☕ <&> \"q\""
    groups = ["Friends", "Wörk"]

    result = await asyncio.wait_for(
        r1.xmpp.update_roster(contact, name=name, groups=groups, timeout=WAIT), WAIT + 1
    )
    assert result["type"] == "result", str(result)

    def has_item(iq):
        return contact in iq["roster"]["items"]

    for res in (r2, r1):  # RFC 6121 2.3.2: every interested resource, the sender too
        push = await res.wait_for("roster", has_item, desc=f"roster push for {contact}")
        assert push["from"].full in ("", acc.jid), f"push from a foreign JID: {push}"
        item = push["roster"]["items"][contact]
        assert item["name"] == name, str(push)
        assert sorted(item["groups"]) == sorted(groups), str(push)
        assert item["subscription"] == "none", str(push)

    # Stored: a later session gets the item in its roster.
    r3 = await xmpp.online(server, acc, resource="three", name="res-three")
    stored = await r3.fetch_roster()
    assert contact in stored, stored
    assert stored[contact]["name"] == name
    assert sorted(stored[contact]["groups"]) == sorted(groups)
    entry = r3.xmpp.client_roster[contact]
    assert entry["name"] == name
    assert sorted(entry["groups"]) == sorted(groups)

    # Removal is pushed too.
    await asyncio.wait_for(r1.xmpp.del_roster_item(contact), WAIT + 1)
    push = await r2.wait_for(
        "roster",
        lambda iq: has_item(iq) and iq["roster"]["items"][contact]["subscription"] == "remove",
        desc="roster push removing the item",
    )
    assert push is not None
