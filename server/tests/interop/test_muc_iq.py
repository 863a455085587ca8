"""Iqs to MUC occupants are relayed (as Prosody and ejabberd do), with
slixmpp (xep_0045, xep_0054, xep_0092) against the real `vireo` binary:
an occupant asks `room/Bob` for Bob's software version, which Bob's
slixmpp answers by itself, and gets that answer from `room/Bob`; it fetches
Bob's vCard through the room and gets the one Bob stored (the room sends a
vCard get to the occupant's bare JID, so Bob's server answers); a stranger
is refused (not-acceptable) and a nick not in the room is item-not-found.
"""

from __future__ import annotations

import pytest
import slixmpp
from slixmpp.exceptions import IqError

from conftest import WAIT
from test_muc import create, join, muc_client, new_room


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
