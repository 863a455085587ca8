"""Iqs to MUC occupants are relayed (as Prosody and ejabberd do), with
slixmpp (xep_0045, xep_0054, xep_0092) against the real `vireo` binary:
an occupant asks `room/Bob` for Bob's software version, which Bob's
slixmpp answers by itself, and gets that answer from `room/Bob`; it fetches
Bob's vCard through the room and gets the one Bob stored (the room sends a
vCard get to the occupant's bare JID, so Bob's server answers); a stranger
is refused (not-acceptable) and a nick not in the room is item-not-found.
A request goes to the occupant's session that spoke last, and one left
unanswered when that session leaves is answered recipient-unavailable.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import WAIT
from test_muc import create, groupchat, join, muc, muc_client, new_room, until


async def occupant(xmpp, srv, prefix, name, **version):
    c = muc_client(xmpp, srv, srv.new_account(prefix), name)
    c.xmpp.register_plugin("xep_0054")
    c.xmpp.register_plugin("xep_0092", version or None)
    await c.connect()
    return c


@pytest.mark.asyncio
async def test_version_and_vcard_of_an_occupant_through_the_room(server, xmpp):
    srv = server
    room = new_room(srv, "iq")
    alice = await occupant(xmpp, srv, "asker", "alice")
    bob = await occupant(xmpp, srv, "asked", "bob",
                         software_name="BobChat", version="4.2")
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")

    vcard_of = bob.xmpp.plugin["xep_0054"]
    card = vcard_of.make_vcard()
    card["FN"] = "Bob the Builder"
    card["NICKNAME"] = "bobby"
    await vcard_of.publish_vcard(card, timeout=WAIT)

    # XEP-0092 through the room: Bob's client answers, from room/Bob.
    got = await alice.xmpp.plugin["xep_0092"].get_version(
        slixmpp.JID(f"{room}/Bob"), timeout=WAIT)
    assert got["type"] == "result", str(got)
    assert got["from"] == slixmpp.JID(f"{room}/Bob"), str(got)
    assert got["software_version"]["name"] == "BobChat", str(got)
    assert got["software_version"]["version"] == "4.2", str(got)

    # XEP-0054 through the room: Bob's server answers with his vCard.
    got = await alice.xmpp.plugin["xep_0054"].get_vcard(
        slixmpp.JID(f"{room}/Bob"), local=False, timeout=WAIT)
    assert got["type"] == "result", str(got)
    assert got["from"] == slixmpp.JID(f"{room}/Bob"), str(got)
    assert got["vcard_temp"]["FN"] == "Bob the Builder", str(got)
    assert "bobby" in got["vcard_temp"]["NICKNAME"], str(got)

    # Not an occupant: not-acceptable; a nick nobody holds: item-not-found.
    carol = await occupant(xmpp, srv, "stranger", "carol")
    with pytest.raises(IqError) as err:
        await carol.xmpp.plugin["xep_0092"].get_version(
            slixmpp.JID(f"{room}/Bob"), timeout=WAIT)
    assert err.value.iq["error"]["condition"] == "not-acceptable", str(err.value.iq)
    with pytest.raises(IqError) as err:
        await alice.xmpp.plugin["xep_0092"].get_version(
            slixmpp.JID(f"{room}/Nobody"), timeout=WAIT)
    assert err.value.iq["error"]["condition"] == "item-not-found", str(err.value.iq)


SILENT = "urn:example:vireo:silent"


async def silent_session(xmpp, srv, account, resource):
    """A session of `account` that receives iqs in the SILENT namespace and
    never answers them."""
    c = xmpp.client(srv, account, resource=resource, name=f"bob/{resource}")
    for p in ("xep_0030", "xep_0004", "xep_0045"):
        c.xmpp.register_plugin(p)
    c.silent = []
    c.xmpp.register_handler(Callback(
        "silent iqs", MatchXPath(f"{{jabber:client}}iq/{{{SILENT}}}query"),
        c.silent.append))
    await c.connect()
    return c


def ask_silently(alice, to):
    iq = alice.xmpp.make_iq_get(ito=to)
    iq.append(ET.fromstring(f"<query xmlns='{SILENT}'/>"))
    return asyncio.ensure_future(iq.send(timeout=WAIT))


@pytest.mark.asyncio
async def test_relayed_iqs_go_to_the_active_session_and_end_when_it_leaves(server, xmpp):
    """A request to `room/Bob` reaches the session of Bob's that spoke to
    the room last (Prosody's primary session), not the first by JID; when
    that session leaves with the request unanswered, the asker hears
    recipient-unavailable (type wait) from the room at once."""
    srv = server
    room = new_room(srv, "iq")
    alice = await occupant(xmpp, srv, "asker", "alice")
    b = srv.new_account("twice")
    desk = await silent_session(xmpp, srv, b, "desk")
    phone = await silent_session(xmpp, srv, b, "phone")
    await create(alice, room, "Alice")
    await join(desk, room, "Bob")
    await join(phone, room, "Bob")

    # The phone joined last: it gets the request.
    first = ask_silently(alice, f"{room}/Bob")
    await until(lambda: phone.silent, "the request at the phone")
    assert desk.silent == []

    # The desk speaks: the next request goes there.
    desk.xmpp.send_message(mto=room, mbody="back at my desk", mtype="groupchat")
    await groupchat(alice, room, "back at my desk")
    second = ask_silently(alice, f"{room}/Bob")
    await until(lambda: desk.silent, "the request at the desk")
    assert len(phone.silent) == 1

    # The phone leaves the room: its request is answered by the room.
    muc(phone).leave_muc(slixmpp.JID(room), "Bob")
    with pytest.raises(IqError) as err:
        await first
    assert err.value.iq["error"]["condition"] == "recipient-unavailable", str(err.value.iq)
    assert err.value.iq["error"]["type"] == "wait", str(err.value.iq)
    assert err.value.iq["from"] == slixmpp.JID(f"{room}/Bob"), str(err.value.iq)
    assert not second.done(), "the desk's request still waits"
    second.cancel()
