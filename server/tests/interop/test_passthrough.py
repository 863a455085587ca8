"""Payloads the server does not interpret pass through untouched: delivery
receipts (XEP-0184), chat states (XEP-0085) and message correction
(XEP-0308), live and through offline storage; and a chat state alone is not
kept for an offline user (nothing to read later), while a receipt is."""

import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import QUIET, WAIT

pytestmark = pytest.mark.asyncio

RECEIPTS = "urn:xmpp:receipts"
CHATSTATES = "http://jabber.org/protocol/chatstates"
CORRECT = "urn:xmpp:message-correct:0"


def send_with(client, to, body, *payloads, mid=None):
    msg = client.xmpp.make_message(mto=to, mbody=body, mtype="chat")
    if mid:
        msg["id"] = mid
    for p in payloads:
        msg.xml.append(ET.fromstring(p))
    msg.send()


def child(msg, ns, name):
    return msg.xml.find(f"{{{ns}}}{name}")


def catch(client, ns, name):
    """Queue of messages carrying <name xmlns=ns/>: slixmpp's 'message'
    event only fires for messages with a body."""
    q = asyncio.Queue()
    client.xmpp.register_handler(Callback(
        f"catch {name}", MatchXPath(f"{{jabber:client}}message/{{{ns}}}{name}"), q.put_nowait))
    return q


async def test_receipts_chat_states_and_corrections_pass_through(server, xmpp):
    a, b = server.new_account("pt"), server.new_account("pt")
    alice = await xmpp.online(server, a, name="alice")
    bob = await xmpp.online(server, b, name="bob")
    receipts = catch(alice, RECEIPTS, "received")
    states = catch(bob, CHATSTATES, "composing")

    send_with(alice, b.jid, "hello", f"<request xmlns='{RECEIPTS}'/>",
              f"<active xmlns='{CHATSTATES}'/>", mid="m1")
    m = await bob.wait_message(body="hello")
    assert m["id"] == "m1"
    assert child(m, RECEIPTS, "request") is not None
    assert child(m, CHATSTATES, "active") is not None

    # The receipt has no body: it must still be delivered.
    send_with(bob, str(alice.jid), None, f"<received xmlns='{RECEIPTS}' id='m1'/>")
    r = await asyncio.wait_for(receipts.get(), WAIT)
    assert child(r, RECEIPTS, "received").get("id") == "m1"

    send_with(alice, b.jid, None, f"<composing xmlns='{CHATSTATES}'/>")
    await asyncio.wait_for(states.get(), WAIT)

    send_with(alice, b.jid, "hello, world", f"<replace xmlns='{CORRECT}' id='m1'/>", mid="m2")
    c = await bob.wait_message(body="hello, world")
    assert child(c, CORRECT, "replace").get("id") == "m1"


async def test_offline_keeps_payloads(server, xmpp):
    a, b = server.new_account("pt"), server.new_account("pt")
    alice = await xmpp.online(server, a, name="alice")
    send_with(alice, b.jid, None, f"<composing xmlns='{CHATSTATES}'/>", mid="typing")
    send_with(alice, b.jid, "while you were away", f"<request xmlns='{RECEIPTS}'/>",
              f"<replace xmlns='{CORRECT}' id='old'/>", mid="off1")
    await alice.sync()

    bob = xmpp.client(server, b, name="bob")
    states = catch(bob, CHATSTATES, "composing")
    await bob.connect()
    m = await bob.wait_message(body="while you were away")
    assert m["id"] == "off1"
    assert child(m, RECEIPTS, "request") is not None
    assert child(m, CORRECT, "replace").get("id") == "old"
    await asyncio.sleep(QUIET)
    assert states.empty(), "a bare chat state was kept in offline storage"
