"""Acknowledgements are promises in rooms too: what a room confirmed
survives kill -9.

A room reflects a groupchat message to its sender (XEP-0045 §7.4) only once
the message is in the room's archive, committed; an owner's affiliation
change is answered with an iq result only once the room's document is
stored. Each round sends a burst of messages to a persistent room (its
archive on by default) from three occupants and makes one more account a
member, waits for the last reflection and the iq result, SIGKILLs the server
at once, restarts it, and reads the room's archive and member list: nothing
confirmed may be missing.
"""

from __future__ import annotations

import asyncio
import os
import xml.etree.ElementTree as ET

import pytest
import slixmpp

from conftest import WAIT
from test_muc import (  # noqa: F401  (own_muc_server is a fixture)
    MAM,
    RSM,
    create,
    groupchat,
    join,
    muc,
    new_room,
    online,
    own_muc_server,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]

ROUNDS = int(os.environ.get("MUC_ACK_ROUNDS", "4"))
BURST = 30


async def archived_bodies(c, room: str) -> list[str]:
    """Every body in the room's archive, paging forwards."""
    bodies: list[str] = []
    after = ""
    for page in range(100):
        c.mam_results.clear()
        iq = c.xmpp.make_iq_set(ito=room)
        iq.append(ET.fromstring(
            f"<query xmlns='{MAM}' queryid='d{page}'>"
            f"<set xmlns='{RSM}'><max>100</max>{after}</set></query>"))
        reply = await iq.send(timeout=WAIT)
        fin = reply.xml.find(f"{{{MAM}}}fin")
        assert fin is not None, str(reply)
        await asyncio.sleep(0.1)  # the results precede the iq
        for m in c.mam_results:
            fwd = m.xml.find(f".//{{{MAM}}}result")
            body = fwd.find(".//{jabber:client}body") if fwd is not None else None
            if body is not None:
                bodies.append(body.text or "")
        if fin.get("complete") == "true":
            return bodies
        last = fin.findtext(f"{{{RSM}}}set/{{{RSM}}}last")
        after = f"<after>{last}</after>"
    raise AssertionError("the archive did not end within 100 pages")


async def members(c, room: str) -> set[str]:
    items = await muc(c).get_affiliation_list(slixmpp.JID(room), "member", timeout=WAIT)
    return {str(j) for j in items}


async def test_reflected_messages_and_affiliations_survive_kill9(own_muc_server, xmpp):
    srv = own_muc_server
    room = new_room(srv, "durable")
    owner = srv.new_account("owner")
    talkers = [srv.new_account(f"talk{i}") for i in range(2)]
    confirmed: list[str] = []
    made_members: set[str] = set()
    for rnd in range(ROUNDS):
        alice = await online(xmpp, srv, owner, f"alice{rnd}")
        if rnd == 0:
            await create(alice, room, "Alice", persistentroom="1")
        else:
            await join(alice, room, "Alice", maxstanzas=0)
        others = []
        for i, acc in enumerate(talkers):
            c = await online(xmpp, srv, acc, f"t{i}r{rnd}")
            await join(c, room, f"T{i}", maxstanzas=0)
            others.append(c)
        # A burst from every occupant, then a new member, without waiting
        # in between: the kill lands while the store is busy.
        sent: list[tuple[object, str]] = []
        for k in range(BURST):
            for who, c in [("a", alice)] + [(f"t{i}", c) for i, c in enumerate(others)]:
                body = f"r{rnd} {who} {k:02d}"
                c.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
                sent.append((c, body))
        new_member = srv.new_account(f"member{rnd}").jid
        change = muc(alice).set_affiliation(
            slixmpp.JID(room), "member", jid=slixmpp.JID(new_member), timeout=WAIT)
        # Each sender's own reflection is the room's confirmation.
        await asyncio.gather(*(groupchat(c, room, body) for c, body in sent))
        await change
        srv.kill9()
        confirmed += [body for _, body in sent]
        made_members.add(new_member)
        await asyncio.to_thread(srv.start)

    reader = await online(xmpp, srv, owner, "reader")
    await join(reader, room, "Alice", maxstanzas=0)
    kept = await archived_bodies(reader, room)
    missing = [b for b in confirmed if b not in kept]
    assert not missing, f"{len(missing)} reflected messages lost to kill -9: {missing[:5]}"
    assert len(kept) == len(set(kept)) == len(confirmed), (len(kept), len(confirmed))
    lost = made_members - await members(reader, room)
    assert not lost, f"confirmed members lost to kill -9: {lost}"
