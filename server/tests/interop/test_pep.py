"""XEP-0163 PEP with slixmpp's xep_0060 plugin: an open device list
(configured open by XEP-0223 publish-options) is read by a stranger; a
node with the default presence access is refused to the stranger and read
by a contact subscribed to the owner's presence, who is also notified of
the next publish (its client asked, with XEP-0115 caps and +notify); the nodes survive a restart (account documents)."""

import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from conftest import WAIT

DEVICELIST = "eu.siacs.conversations.axolotl.devicelist"
BUNDLE = "eu.siacs.conversations.axolotl.bundles:4223"
# An OMEMO (XEP-0384 0.3, axolotl) bundle as Conversations publishes it,
# keys shortened: what a stranger needs to start an encrypted session.
BUNDLE_XML = (
    "<bundle xmlns='eu.siacs.conversations.axolotl'>"
    "<signedPreKeyPublic signedPreKeyId='1'>BQX2bWVzc2FnZQ==</signedPreKeyPublic>"
    "<signedPreKeySignature>c2lnbmF0dXJl</signedPreKeySignature>"
    "<identityKey>BWlkZW50aXR5</identityKey>"
    "<prekeys>" + "".join(
        f"<preKeyPublic preKeyId='{i}'>BXByZWtleQ{i:03d}</preKeyPublic>" for i in range(1, 101)
    ) + "</prekeys></bundle>"
)
GEOLOC = "http://jabber.org/protocol/geoloc"


def pep_client(xmpp, srv, account, name, interests=False):
    c = xmpp.client(srv, account, name=name)
    c.xmpp.register_plugin("xep_0004")
    c.xmpp.register_plugin("xep_0060")
    if interests:
        c.xmpp.register_plugin("xep_0115")
        c.xmpp.register_plugin("xep_0163")
    # slixmpp's `message` event is for messages with a body: notifications
    # come as `pubsub_publish`.
    c.events_seen = []
    c.xmpp.add_event_handler("pubsub_publish", c.events_seen.append)
    return c


async def notification(client, text, timeout=WAIT):
    for _ in range(int(timeout / 0.1)):
        for m in client.events_seen:
            if text in str(m):
                return m
        await asyncio.sleep(0.1)
    raise AssertionError(f"{client.name}: no notification with {text!r}: {client.events_seen}")


def options(client, **fields):
    form = client.xmpp.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    for var, value in fields.items():
        form.add_field(var=f"pubsub#{var}", value=value)
    return form


async def publish(client, node, payload, item_id=None, **opts):
    r = await client.xmpp.plugin["xep_0060"].publish(
        None, node, id=item_id, payload=ET.fromstring(payload),
        options=options(client, **opts) if opts else None, timeout=WAIT)
    return r["pubsub"]["publish"]["item"]["id"]


async def items(client, owner, node):
    r = await client.xmpp.plugin["xep_0060"].get_items(owner, node, timeout=WAIT)
    return str(r["pubsub"]["items"])


async def want(client, node):
    """XEP-0115 caps with `<node>+notify` (XEP-0163 §4.2), once bound: the
    feature belongs to the full JID, and the presence must carry it."""
    client.xmpp.plugin["xep_0163"].add_interest(node)
    await client.xmpp.plugin["xep_0115"].update_caps(broadcast=True)


async def subscribe(watcher, target, watcher_jid, target_jid):
    watcher.xmpp.send_presence(pto=target_jid, ptype="subscribe")
    await target.wait_presence(watcher_jid, "subscribe")
    target.xmpp.send_presence(pto=watcher_jid, ptype="subscribed")
    await watcher.wait_presence(target_jid, "subscribed")


@pytest.mark.asyncio
async def test_pep_open_devicelist_and_bundle_are_read_by_a_stranger(own_server, xmpp):
    srv = own_server
    a, c = srv.new_account("omemo"), srv.new_account("stranger")
    alice = pep_client(xmpp, srv, a, "alice")
    await alice.connect()
    carol = pep_client(xmpp, srv, c, "carol")
    await carol.connect()

    item_id = await publish(
        alice, DEVICELIST,
        "<list xmlns='eu.siacs.conversations.axolotl'><device id='4223'/></list>",
        item_id="current", access_model="open")
    assert item_id == "current"
    got = await items(carol, a.jid, DEVICELIST)
    assert 'id="4223"' in got, got
    # The device's bundle (100 prekeys), open too, as OMEMO clients publish it.
    await publish(alice, BUNDLE, BUNDLE_XML, item_id="current", access_model="open")
    got = await items(carol, a.jid, BUNDLE)
    assert "identityKey" in got and 'preKeyId="100"' in got, got

    # Stored: still there, and still open, after a restart.
    await asyncio.to_thread(srv.restart)
    carol2 = pep_client(xmpp, srv, c, "carol2")
    await carol2.connect()
    got = await items(carol2, a.jid, DEVICELIST)
    assert 'id="4223"' in got, got
    got = await items(carol2, a.jid, BUNDLE)
    assert 'preKeyId="100"' in got, got


@pytest.mark.asyncio
async def test_pep_presence_node_refused_to_a_stranger_and_read_by_a_contact(own_server, xmpp):
    srv = own_server
    a, b, c = srv.new_account("owner"), srv.new_account("friend"), srv.new_account("stranger")
    alice = pep_client(xmpp, srv, a, "alice")
    await alice.connect()
    bob = pep_client(xmpp, srv, b, "bob", interests=True)
    await bob.connect()
    await want(bob, GEOLOC)
    carol = pep_client(xmpp, srv, c, "carol", interests=True)
    await carol.connect()
    await want(carol, GEOLOC)
    await subscribe(bob, alice, b.jid, a.jid)
    await subscribe(alice, bob, a.jid, b.jid)

    await publish(alice, GEOLOC,
                  "<geoloc xmlns='http://jabber.org/protocol/geoloc'><locality>Lyon</locality></geoloc>")

    with pytest.raises(IqError) as err:
        await items(carol, a.jid, GEOLOC)
    assert err.value.iq["error"]["condition"] == "not-authorized"
    assert "presence-subscription-required" in str(err.value.iq), str(err.value.iq)

    got = await items(bob, a.jid, GEOLOC)
    assert "Lyon" in got, got

    # The contact is notified of the next publish; the stranger is not.
    await publish(alice, GEOLOC,
                  "<geoloc xmlns='http://jabber.org/protocol/geoloc'><locality>Nice</locality></geoloc>")
    event = await notification(bob, "Nice")
    assert event["from"] == a.jid and event["type"] == "headline", str(event)
    await notification(alice, "Nice")
    await asyncio.sleep(0.5)
    assert not [m for m in carol.events_seen if "Nice" in str(m)], carol.events_seen
