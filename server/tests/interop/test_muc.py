"""XEP-0045 Multi-User Chat at conference.<domain> with slixmpp (plugins
xep_0045, xep_0249, xep_0313, xep_0410, xep_0004, xep_0030): a three-user
room with history on join and a subject, nick change (303), kick (307),
ban (301) and the outcast refused, members-only (registration-required)
and password (not-authorized) rooms, MUC MAM paging on the room JID,
XEP-0425 moderation leaving a tombstone in the room archive,
self-ping (XEP-0410), mediated and direct invitations, a persistent room
surviving a restart (with its occupant ids and, from its archive, its
history), an occupant whose client disappears leaving the room,
and hostile input (huge nick and subject, many rooms) with the server's RSS.

Written against the protocol and proven against Prosody 0.12 first:
  MUC_TEST_SERVER=prosody server/tests/interop/run.sh -k test_muc
runs the same tests with Prosody (reference_peers.py) as the server.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import WAIT, VireoServer, rss_kib

MUC = "http://jabber.org/protocol/muc"
MUC_USER = MUC + "#user"
MUC_OWNER = MUC + "#owner"
MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
FWD = "urn:xmpp:forward:0"
CLIENT = "jabber:client"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
SELF_PING_FEATURE = MUC + "#self-ping-optimization"
PLUGINS = ("xep_0030", "xep_0004", "xep_0045", "xep_0059", "xep_0199",
           "xep_0249", "xep_0313", "xep_0410")


# --------------------------------------------------------------------------
# the server under test: Vireo, or Prosody with MUC_TEST_SERVER=prosody
# --------------------------------------------------------------------------


ON_PROSODY = os.environ.get("MUC_TEST_SERVER") == "prosody"

# What Prosody 0.12 with its stock modules does not do, so these tests of
# Vireo cannot be proven against it: the §10.2 roomowners/roomadmins form
# fields, XEP-0425 (the community module mod_muc_moderation), an RSM-paged
# room listing.
vireo_only = pytest.mark.skipif(ON_PROSODY, reason="not in Prosody 0.12's stock modules")


def _make_server(name: str) -> VireoServer:
    if ON_PROSODY:
        from reference_peers import ProsodyServer
        srv = ProsodyServer(name)
    else:
        srv = VireoServer(name)
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    return srv


@pytest.fixture(scope="module")
def muc_server(request):
    srv = _make_server(request.module.__name__)
    yield srv
    srv.cleanup()


@pytest.fixture
def own_muc_server(request):
    srv = _make_server(request.node.name)
    yield srv
    srv.cleanup()


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def service(srv) -> str:
    return f"conference.{srv.domain}"


def new_room(srv, prefix: str = "r") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}@{service(srv)}"


def muc_client(xmpp, srv, account, name):
    c = xmpp.client(srv, account, name=name)
    for p in PLUGINS:
        c.xmpp.register_plugin(p)
    c.invites, c.mam_results = [], []
    c.xmpp.add_event_handler("groupchat_invite", c.invites.append)
    c.xmpp.register_handler(Callback(
        "mam results", MatchXPath(f"{{{CLIENT}}}message/{{{MAM}}}result"),
        c.mam_results.append))
    # Every stanza as it arrives: slixmpp's `presence` event stops for a
    # room's JIDs once its MUC plugin has seen them, and its `message`
    # event needs a body.
    for kind in ("muc_message", "muc_presence"):
        c.received[kind] = []
        c._taken[kind] = set()
    c.xmpp.register_handler(Callback(
        "all messages", MatchXPath(f"{{{CLIENT}}}message"),
        lambda m: c._record("muc_message", m)))
    c.xmpp.register_handler(Callback(
        "all presences", MatchXPath(f"{{{CLIENT}}}presence"),
        lambda p: c._record("muc_presence", p)))
    return c


async def online(xmpp, srv, account, name):
    c = muc_client(xmpp, srv, account, name)
    await c.connect()
    return c


def muc(c):
    return c.xmpp.plugin["xep_0045"]


def codes(st) -> set[str]:
    """The muc#user status codes of a stanza."""
    x = st.xml.find(f"{{{MUC_USER}}}x")
    if x is None:
        return set()
    return {s.get("code") for s in x.findall(f"{{{MUC_USER}}}status")}


def item(st) -> dict:
    """The attributes of the muc#user <item/> of a presence."""
    el = st.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}item")
    return dict(el.attrib) if el is not None else {}


def error_of(st) -> tuple[str | None, str | None]:
    """(type, condition) of a stanza error."""
    err = st.xml.find(f"{{{CLIENT}}}error")
    if err is None:
        return None, None
    for child in err:
        if child.tag.startswith(f"{{{STANZAS}}}") and not child.tag.endswith("}text"):
            return err.get("type"), child.tag.split("}", 1)[1]
    return err.get("type"), None


def others(occupants) -> list[str]:
    """The occupant JIDs of a join's presences, one's own (110) left out."""
    return [str(o["from"]) for o in occupants if "110" not in codes(o)]


async def join(c, room: str, nick: str, **kw):
    """join_muc_wait: (self-presence, subject message, occupants, history)."""
    return await muc(c).join_muc_wait(slixmpp.JID(room), nick, timeout=WAIT, **kw)


async def join_refused(c, room: str, nick: str, **kw) -> tuple[str | None, str | None]:
    """Join, expecting an error presence from the room: its (type, condition)."""
    st = muc(c).make_join_stanza(slixmpp.JID(room), nick, **kw)
    st.send()
    err = await c.wait_for("muc_presence", lambda p: attr(p, "type") == "error"
                           and bare(attr(p, "from")) == room,
                           desc=f"join error from {room}")
    return error_of(err)


async def join_or_error(c, room: str, nick: str) -> str:
    """'joined', or the condition of the error presence."""
    st = muc(c).make_join_stanza(slixmpp.JID(room), nick)
    st.send()
    full = f"{room}/{nick}"
    got = await c.wait_for(
        "muc_presence",
        lambda p: (attr(p, "type") == "error" and bare(attr(p, "from")) == room)
        or (attr(p, "from") == full and "110" in codes(p)),
        desc=f"join of {full}")
    return "joined" if attr(got, "type") != "error" else (error_of(got)[1] or "?")


def attr(st, name: str) -> str | None:
    """A raw attribute (no JID parsing: hostile tests send invalid ones)."""
    return st.xml.get(name)


def bare(jid: str | None) -> str | None:
    return jid.split("/", 1)[0] if jid else None


async def configure(c, room: str, **fields) -> None:
    """Submit the owner form (§10.2) with muc#roomconfig_<name> = value."""
    await muc(c).get_room_config(room, timeout=WAIT)
    form = c.xmpp.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=MUC + "#roomconfig")
    for name, value in fields.items():
        form.add_field(var=f"muc#roomconfig_{name}", value=value)
    await muc(c).set_room_config(room, form, timeout=WAIT)


async def create(c, room: str, nick: str, **config):
    """Create `room` as its owner: an instant room (§10.1.2) unless config
    fields are given, then a reserved room configured with them (§10.1.3)."""
    pres, _subject, occupants, _history = await join(c, room, nick)
    got = codes(pres)
    assert {"110", "201"} <= got, f"creation self-presence has codes {got}: {pres}"
    assert item(pres).get("affiliation") == "owner", str(pres)
    assert item(pres).get("role") == "moderator", str(pres)
    assert others(occupants) == [], f"a new room has no other occupants: {occupants}"
    if config:
        await configure(c, room, **config)
    else:
        iq = c.xmpp.make_iq_set(ito=room)
        iq.append(ET.fromstring(f"<query xmlns='{MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query>"))
        await iq.send(timeout=WAIT)
    return pres


def from_occupant(room: str, nick: str, ptype: str = "available", code: str | None = None):
    want = f"{room}/{nick}"

    def pred(p):
        return (attr(p, "from") == want and (attr(p, "type") or "available") == ptype
                and (code is None or code in codes(p)))
    return pred


async def presence_from(c, room, nick, ptype="available", code=None, timeout=WAIT):
    return await c.wait_for("muc_presence", from_occupant(room, nick, ptype, code), timeout=timeout,
                            desc=f"presence {ptype} from {room}/{nick} with code {code}")


async def groupchat(c, room, body, timeout=WAIT):
    return await c.wait_for(
        "muc_message",
        lambda m: m["type"] == "groupchat" and m["from"].bare == room and m["body"] == body,
        timeout=timeout, desc=f"groupchat {body!r} from {room}")


async def ping(c, to: str):
    iq = c.xmpp.make_iq_get(ito=to)
    iq.enable("ping")
    return await iq.send(timeout=WAIT)


async def until(pred, what: str, timeout: float = WAIT):
    for _ in range(int(timeout / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --------------------------------------------------------------------------
# a three-user room
# --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_three_users_history_and_subject(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("alice"), "alice")
    bob = await online(xmpp, srv, srv.new_account("bob"), "bob")
    carol = await online(xmpp, srv, srv.new_account("carol"), "carol")

    await create(alice, room, "Alice")
    pres, _, occupants, _ = await join(bob, room, "Bob")
    assert "110" in codes(pres), str(pres)
    assert item(pres).get("role") == "participant", str(pres)
    assert item(pres).get("affiliation") == "none", str(pres)
    assert others(occupants) == [f"{room}/Alice"], occupants
    # The owner sees the newcomer (§7.2.3), without status 110.
    seen = await presence_from(alice, room, "Bob")
    assert "110" not in codes(seen), str(seen)

    # Subject (§8.1): every occupant receives it, from the setter's nick.
    muc(alice).set_subject(room, "Plans for Friday")
    for c in (alice, bob):
        m = await c.wait_for("muc_message", lambda m: m["type"] == "groupchat"
                             and m["subject"] == "Plans for Friday", desc="subject")
        assert str(m["from"]) == f"{room}/Alice", str(m)

    bodies = [f"history {i}" for i in range(5)]
    for body in bodies:
        alice.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
    for body in bodies:
        reflected = await groupchat(alice, room, body)  # §7.4: the sender gets it too
        assert str(reflected["from"]) == f"{room}/Alice"
        await groupchat(bob, room, body)

    # A third occupant asks for the last 3 messages of history (§7.2.15),
    # then receives the subject.
    pres, subject, occupants, history = await join(carol, room, "Carol", maxstanzas=3)
    assert "110" in codes(pres), str(pres)
    assert sorted(others(occupants)) == [f"{room}/Alice", f"{room}/Bob"], occupants
    assert [m["body"] for m in history] == bodies[-3:], [str(m) for m in history]
    for m in history:
        assert m["delay"]["from"] == room or m["delay"]["from"].bare == room, str(m)
        assert str(m["from"]) == f"{room}/Alice", str(m)
    assert subject["subject"] == "Plans for Friday", str(subject)

    # Everyone receives a message once.
    bob.xmpp.send_message(mto=room, mbody="hello all", mtype="groupchat")
    for c in (alice, bob, carol):
        await groupchat(c, room, "hello all")
    await asyncio.sleep(0.5)
    assert len([m for m in carol.received["muc_message"] if m["body"] == "hello all"]) == 1

    # A private message through the room (§7.5) reaches only its addressee,
    # from the sender's occupant JID.
    alice.xmpp.send_message(mto=f"{room}/Carol", mbody="psst", mtype="chat")
    pm = await carol.wait_for("muc_message", lambda m: m["body"] == "psst", desc="the PM")
    assert str(pm["from"]) == f"{room}/Alice", str(pm)
    await asyncio.sleep(0.5)
    assert not [m for m in bob.received["muc_message"] if m["body"] == "psst"]

    # Leaving (§7.14): unavailable with 110 to the leaver, without to the others.
    muc(carol).leave_muc(slixmpp.JID(room), "Carol")
    gone = await presence_from(carol, room, "Carol", "unavailable", "110")
    assert item(gone).get("role") == "none", str(gone)
    await presence_from(alice, room, "Carol", "unavailable")


@pytest.mark.asyncio
async def test_nick_change_is_303_then_the_new_nick(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("alice"), "alice")
    bob = await online(xmpp, srv, srv.new_account("bob"), "bob")
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")

    # A taken nick is a conflict (§7.2.9).
    carol = await online(xmpp, srv, srv.new_account("carol"), "carol")
    assert await join_refused(carol, room, "Bob") == ("cancel", "conflict")

    # §7.6: unavailable with 303 and the new nick, then available.
    bob.xmpp.send_presence(pto=f"{room}/Robert")
    for c, own in ((bob, True), (alice, False)):
        old = await presence_from(c, room, "Bob", "unavailable", "303")
        assert item(old).get("nick") == "Robert", str(old)
        assert ("110" in codes(old)) == own, str(old)
        new = await presence_from(c, room, "Robert")
        assert ("110" in codes(new)) == own, str(new)
    alice.xmpp.send_message(mto=room, mbody="hi Robert", mtype="groupchat")
    await groupchat(bob, room, "hi Robert")
    bob.xmpp.send_message(mto=room, mbody="renamed", mtype="groupchat")
    m = await groupchat(alice, room, "renamed")
    assert str(m["from"]) == f"{room}/Robert", str(m)

    # Changing to a nick in use is refused with conflict, the occupant stays.
    bob.xmpp.send_presence(pto=f"{room}/Alice")
    err = await bob.wait_for("muc_presence", lambda p: p["type"] == "error"
                             and p["from"].bare == room, desc="nick conflict")
    assert error_of(err) == ("cancel", "conflict"), str(err)


@pytest.mark.asyncio
async def test_kick_307_ban_301_and_the_outcast_is_refused(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    a, b, c = srv.new_account("owner"), srv.new_account("kicked"), srv.new_account("banned")
    alice = await online(xmpp, srv, a, "alice")
    bob = await online(xmpp, srv, b, "bob")
    carol = await online(xmpp, srv, c, "carol")
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")
    await join(carol, room, "Carol")

    # A participant may not kick (§5.1.1): forbidden... or not-allowed.
    with pytest.raises(IqError) as err:
        await muc(bob).set_role(room, "Carol", "none", timeout=WAIT)
    assert err.value.iq["error"]["condition"] in ("forbidden", "not-allowed"), str(err.value.iq)

    # Kick (§8.2): the kicked occupant gets 307 + 110, the others 307.
    await muc(alice).set_role(room, "Bob", "none", reason="out", timeout=WAIT)
    gone = await presence_from(bob, room, "Bob", "unavailable", "307")
    assert "110" in codes(gone) and item(gone).get("role") == "none", str(gone)
    seen = await presence_from(carol, room, "Bob", "unavailable", "307")
    assert "110" not in codes(seen), str(seen)
    # A kicked user may come back.
    await join(bob, room, "Bob")

    # Ban (§9.1): outcast affiliation, 301, and the next join is forbidden (§7.2.7).
    await muc(alice).set_affiliation(room, "outcast", jid=slixmpp.JID(c.jid), reason="spam",
                                     timeout=WAIT)
    gone = await presence_from(carol, room, "Carol", "unavailable", "301")
    assert item(gone).get("affiliation") == "outcast", str(gone)
    await presence_from(bob, room, "Carol", "unavailable", "301")
    assert await join_refused(carol, room, "Carol2") == ("auth", "forbidden")
    outcasts = await muc(alice).get_affiliation_list(room, "outcast", timeout=WAIT)
    assert [slixmpp.JID(j).bare for j in outcasts] == [c.jid], outcasts


@vireo_only
@pytest.mark.asyncio
async def test_owner_form_lists_owners_and_admins(muc_server, xmpp):
    """§10.2: the configuration form lists the owners and admins
    (muc#roomconfig_roomowners/roomadmins, jid-multi); the form sent back
    with the lists edited changes the affiliations as §10.3-§10.7 would,
    and the last owner may not be left off (conflict)."""
    srv = muc_server
    room = new_room(srv)
    a, b, c = srv.new_account("owner"), srv.new_account("coowner"), srv.new_account("admin")
    alice = await online(xmpp, srv, a, "alice")
    bob = await online(xmpp, srv, b, "bob")
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")

    form = await muc(alice).get_room_config(room, timeout=WAIT)
    fields = form.get_fields()
    assert fields["muc#roomconfig_roomowners"]["type"] == "jid-multi", str(form)
    assert [str(j) for j in fields["muc#roomconfig_roomowners"]["value"]] == [a.jid], str(form)
    assert fields["muc#roomconfig_roomadmins"]["value"] in ([], None, ""), str(form)

    # The whole form back, with bob added as owner and carol as admin.
    form.set_values({
        "muc#roomconfig_roomowners": [a.jid, b.jid],
        "muc#roomconfig_roomadmins": [c.jid],
    })
    await muc(alice).set_room_config(room, form, timeout=WAIT)
    promoted = await own_owner_presence(bob, room)
    assert item(promoted).get("role") == "moderator", str(promoted)
    owners = await muc(alice).get_affiliation_list(room, "owner", timeout=WAIT)
    assert sorted(slixmpp.JID(j).bare for j in owners) == sorted([a.jid, b.jid]), owners
    admins = await muc(alice).get_affiliation_list(room, "admin", timeout=WAIT)
    assert [slixmpp.JID(j).bare for j in admins] == [c.jid], admins

    # Bob leaves every owner off: refused, nothing changes.
    form = await muc(bob).get_room_config(room, timeout=WAIT)
    form.set_values({"muc#roomconfig_roomowners": []})
    with pytest.raises(IqError) as err:
        await muc(bob).set_room_config(room, form, timeout=WAIT)
    assert err.value.iq["error"]["condition"] == "conflict", str(err.value.iq)
    owners = await muc(bob).get_affiliation_list(room, "owner", timeout=WAIT)
    assert sorted(slixmpp.JID(j).bare for j in owners) == sorted([a.jid, b.jid]), owners


async def own_owner_presence(c, room):
    """Bob's own presence telling him he is an owner now."""
    return await c.wait_for(
        "muc_presence",
        lambda p: attr(p, "from") == f"{room}/Bob" and "110" in codes(p)
        and item(p).get("affiliation") == "owner",
        desc=f"owner presence from {room}/Bob")


OCCUPANT_ID = "urn:xmpp:occupant-id:0"
SID = "urn:xmpp:sid:0"


def occupant_ids(st) -> list[str]:
    return [e.get("id") for e in st.xml.findall(f"{{{OCCUPANT_ID}}}occupant-id")]


@pytest.mark.asyncio
async def test_occupant_ids_and_stanza_ids_are_the_rooms(muc_server, xmpp):
    """XEP-0421: one stable id per occupant, any supplied by a client
    stripped (§4); XEP-0359: the room stamps its own stanza-id and removes
    one forged in its name (§5)."""
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("alice"), "alice")
    bob = await online(xmpp, srv, srv.new_account("bob"), "bob")
    await create(alice, room, "Alice")
    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=room, timeout=WAIT)
    assert OCCUPANT_ID in info["disco_info"]["features"], info
    await join(bob, room, "Bob")
    seen = await presence_from(alice, room, "Bob")
    ids = occupant_ids(seen)
    assert len(ids) == 1 and ids[0], str(seen)

    for i in range(2):
        bob.xmpp.send_raw(
            f"<message to='{room}' type='groupchat' id='forge{i}'><body>forged {i}</body>"
            f"<occupant-id xmlns='{OCCUPANT_ID}' id='forged-occupant'/>"
            f"<stanza-id xmlns='{SID}' by='{room}' id='forged-stanza'/></message>")
    stamps = []
    for i in range(2):
        m = await groupchat(alice, room, f"forged {i}")
        assert occupant_ids(m) == ids, f"the room's occupant id only: {m}"
        by_room = [e.get("id") for e in m.xml.findall(f"{{{SID}}}stanza-id") if e.get("by") == room]
        assert len(by_room) == 1 and by_room[0] != "forged-stanza", str(m)
        stamps.append(by_room[0])
    assert stamps[0] != stamps[1], stamps
    # Stable: the same id when bob comes back.
    muc(bob).leave_muc(slixmpp.JID(room), "Bob")
    await presence_from(alice, room, "Bob", "unavailable")
    await join(bob, room, "Bobby")
    again = await presence_from(alice, room, "Bobby")
    assert occupant_ids(again) == ids, str(again)


# --------------------------------------------------------------------------
# room types
# --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_members_only_room_wants_registration(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    a, b = srv.new_account("owner"), srv.new_account("member")
    alice = await online(xmpp, srv, a, "alice")
    bob = await online(xmpp, srv, b, "bob")
    await create(alice, room, "Alice", membersonly="1")

    # §7.2.6: not on the member list → registration-required.
    assert await join_refused(bob, room, "Bob") == ("auth", "registration-required")

    await muc(alice).set_affiliation(room, "member", jid=slixmpp.JID(b.jid), timeout=WAIT)
    pres, *_ = await join(bob, room, "Bob")
    assert item(pres).get("affiliation") == "member", str(pres)
    members = await muc(alice).get_affiliation_list(room, "member", timeout=WAIT)
    assert [slixmpp.JID(j).bare for j in members] == [b.jid], members


@pytest.mark.asyncio
async def test_password_room(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("owner"), "alice")
    bob = await online(xmpp, srv, srv.new_account("guest"), "bob")
    await create(alice, room, "Alice", passwordprotectedroom="1", roomsecret="s3cret")

    # §7.2.5: no password or a wrong one → not-authorized.
    assert await join_refused(bob, room, "Bob") == ("auth", "not-authorized")
    assert await join_refused(bob, room, "Bob", password="wrong") == ("auth", "not-authorized")
    pres, *_ = await join(bob, room, "Bob", password="s3cret")
    assert "110" in codes(pres), str(pres)

    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=room, timeout=WAIT)
    assert "muc_passwordprotected" in info["disco_info"]["features"], info


# --------------------------------------------------------------------------
# archives, self-ping, invitations
# --------------------------------------------------------------------------


def mam_result(msg):
    res = msg.xml.find(f"{{{MAM}}}result")
    body = res.find(f"{{{FWD}}}forwarded/{{{CLIENT}}}message/{{{CLIENT}}}body")
    frm = res.find(f"{{{FWD}}}forwarded/{{{CLIENT}}}message")
    return res.get("queryid"), res.get("id"), body.text if body is not None else None, frm.get("from")


async def room_mam_page(c, room: str, queryid: str, rsm: str):
    """One query on the room's archive: [(id, body, from)], and <fin/>."""
    iq = c.xmpp.make_iq_set(ito=room)
    iq.append(ET.fromstring(
        f"<query xmlns='{MAM}' queryid='{queryid}'><set xmlns='{RSM}'>{rsm}</set></query>"))
    reply = await iq.send(timeout=WAIT)
    fin = reply.xml.find(f"{{{MAM}}}fin")
    assert fin is not None, str(reply)
    await asyncio.sleep(0.1)  # results precede the iq: let the handlers record them
    got = [mam_result(m) for m in c.mam_results]
    return [(i, body, frm) for q, i, body, frm in got if q == queryid], fin


@pytest.mark.asyncio
async def test_room_archive_pages_on_the_room_jid(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("owner"), "alice")
    bob = await online(xmpp, srv, srv.new_account("late"), "bob")
    await create(alice, room, "Alice", persistentroom="1")
    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=room, timeout=WAIT)
    assert MAM in info["disco_info"]["features"], "the room advertises its archive (XEP-0313 §6.1)"

    bodies = [f"archived {i:02d}" for i in range(25)]
    for body in bodies:
        alice.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
    for body in bodies:
        await groupchat(alice, room, body)

    # An occupant pages through it, 10 at a time, forwards.
    await join(bob, room, "Bob", maxstanzas=0)
    after, seen = "", []
    for page in range(3):
        got, fin = await room_mam_page(bob, room, f"p{page}", f"<max>10</max>{after}")
        assert len(got) == (10 if page < 2 else 5), got
        seen += got
        last = fin.findtext(f"{{{RSM}}}set/{{{RSM}}}last")
        assert last == got[-1][0], (last, got)
        assert (fin.get("complete") == "true") == (page == 2), ET.tostring(fin)
        after = f"<after>{last}</after>"
    assert [b for _, b, _ in seen] == bodies
    assert all(frm == f"{room}/Alice" for _, _, frm in seen), seen
    assert len({i for i, _, _ in seen}) == 25

    # Backwards from the end: the last page first.
    got, fin = await room_mam_page(bob, room, "back", "<max>10</max><before/>")
    assert [b for _, b, _ in got] == bodies[-10:]


MODERATE = "urn:xmpp:message-moderate:1"
RETRACT = "urn:xmpp:message-retract:1"


@vireo_only
@pytest.mark.asyncio
async def test_moderated_message_leaves_a_tombstone_in_the_room_archive(muc_server, xmpp):
    """XEP-0425 (0.3): a moderator retracts a message by the room's
    stanza-id; everyone is told; a MAM query on the room then returns, under
    the same id, a tombstone without the body (§6), and a new joiner's
    history no longer has it."""
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("moderator"), "alice")
    bob = await online(xmpp, srv, srv.new_account("spammer"), "bob")
    carol = await online(xmpp, srv, srv.new_account("reader"), "carol")
    await create(alice, room, "Alice", persistentroom="1")
    await join(bob, room, "Bob")
    for body in ("spam", "fine"):
        bob.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
    spam, _fine = [await groupchat(alice, room, body) for body in ("spam", "fine")]
    spam_id = [e.get("id") for e in spam.xml.findall(f"{{{SID}}}stanza-id") if e.get("by") == room][0]

    iq = alice.xmpp.make_iq_set(ito=room)
    iq.append(ET.fromstring(
        f"<moderate xmlns='{MODERATE}' id='{spam_id}'><retract xmlns='{RETRACT}'/>"
        f"<reason>spam</reason></moderate>"))
    await iq.send(timeout=WAIT)
    told = await bob.wait_for(
        "muc_message", lambda m: m.xml.find(f"{{{RETRACT}}}retract") is not None,
        desc="the moderation announcement")
    assert told.xml.find(f"{{{RETRACT}}}retract").get("id") == spam_id, str(told)

    got, _fin = await room_mam_page(carol, room, "after-moderation", "<max>10</max>")
    assert [(i, body) for i, body, _ in got][:2] == [(spam_id, None), (got[1][0], "fine")], got
    tomb = next(m for m in carol.mam_results
                if m.xml.find(f"{{{MAM}}}result").get("id") == spam_id)
    archived = tomb.xml.find(f"{{{MAM}}}result/{{{FWD}}}forwarded/{{{CLIENT}}}message")
    retracted = archived.find(f"{{{RETRACT}}}retracted")
    assert retracted is not None, ET.tostring(archived)
    assert retracted.find(f"{{{MODERATE}}}moderated").get("by") == f"{room}/Alice", ET.tostring(archived)
    assert archived.get("from") == f"{room}/Bob", ET.tostring(archived)

    _, _, _, history = await join(carol, room, "Carol")
    assert [h["body"] for h in history] == ["fine"], [str(h) for h in history]


@pytest.mark.asyncio
async def test_self_ping(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("pinger"), "alice")
    bob = await online(xmpp, srv, srv.new_account("other"), "bob")
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")

    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=room, timeout=WAIT)
    assert SELF_PING_FEATURE in info["disco_info"]["features"], info

    # XEP-0410 §3: joined → the room answers the ping to one's own occupant JID.
    r = await ping(alice, f"{room}/Alice")
    assert r["type"] == "result" and r["from"] == slixmpp.JID(f"{room}/Alice"), str(r)
    # slixmpp's own self-ping agrees.
    status = await alice.xmpp.plugin["xep_0410"].send_self_ping(slixmpp.JID(f"{room}/Alice"),
                                                               timeout=WAIT)
    assert status.name == "JOINED", status

    # Not joined (any more): not-acceptable.
    muc(alice).leave_muc(slixmpp.JID(room), "Alice")
    await presence_from(alice, room, "Alice", "unavailable", "110")
    with pytest.raises(IqError) as err:
        await ping(alice, f"{room}/Alice")
    assert err.value.iq["error"]["condition"] == "not-acceptable", str(err.value.iq)
    # A stranger pinging someone else's nick is not a self-ping: it does not
    # reveal anything about alice (who left); bob still in the room.
    carol = await online(xmpp, srv, srv.new_account("stranger"), "carol")
    with pytest.raises(IqError) as err:
        await ping(carol, f"{room}/Alice")
    assert err.value.iq["error"]["condition"] in ("not-acceptable", "item-not-found"), str(err.value.iq)


@pytest.mark.asyncio
async def test_mediated_and_direct_invitations(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    a, b, c = srv.new_account("host"), srv.new_account("invitee"), srv.new_account("direct")
    alice = await online(xmpp, srv, a, "alice")
    bob = await online(xmpp, srv, b, "bob")
    carol = await online(xmpp, srv, c, "carol")
    await create(alice, room, "Alice")

    # §7.8.2 mediated: through the room, from the room, naming the inviter.
    muc(alice).invite(room, b.jid, reason="join us")
    await until(lambda: bob.invites, "the mediated invitation")
    inv = bob.invites[0]
    assert inv["from"].bare == room, str(inv)
    el = inv.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}invite")
    # The inviter's bare, full or occupant JID (§7.8.2).
    assert bare(el.get("from")) == a.jid or el.get("from") == f"{room}/Alice", str(inv)
    assert el.findtext(f"{{{MUC_USER}}}reason") == "join us", str(inv)
    # (In a members-only room the service MAY add the invitee to the member
    # list, §7.8.2: not tested. In an open room it MUST NOT, §9.5.)
    pres, *_ = await join(bob, room, "Bob")
    assert item(pres).get("affiliation") == "none", str(pres)

    # Decline (§7.8.3): the room passes it to the inviter.
    muc(alice).invite(room, c.jid, reason="you too")
    await until(lambda: carol.invites, "the second mediated invitation")
    muc(carol).decline(room, a.jid, reason="busy")
    dec = await alice.wait_for(
        "muc_message", lambda m: m.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}decline") is not None,
        desc="the decline")
    assert dec["from"].bare == room, str(dec)
    el = dec.xml.find(f"{{{MUC_USER}}}x/{{{MUC_USER}}}decline")
    assert slixmpp.JID(el.get("from")).bare == c.jid, str(dec)

    # XEP-0249 direct: from the inviter's own JID, passed through.
    alice.xmpp.plugin["xep_0249"].send_invitation(slixmpp.JID(c.jid), slixmpp.JID(room),
                                                  reason="come", password="")
    # (Prosody adds a jabber:x:conference element to mediated invitations
    # too: the direct one is the one from alice.)
    d = await carol.wait_for(
        "muc_message", lambda m: m.xml.find("{jabber:x:conference}x") is not None
        and bare(attr(m, "from")) == a.jid, desc="the direct invitation")
    assert d["groupchat_invite"]["jid"] == slixmpp.JID(room), str(d)


# --------------------------------------------------------------------------
# lifetime
# --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_persistent_room_survives_restart(own_muc_server, xmpp):
    srv = own_muc_server
    room = new_room(srv, "keep")
    a, b, c = srv.new_account("owner"), srv.new_account("member"), srv.new_account("outsider")
    alice = await online(xmpp, srv, a, "alice")
    await create(alice, room, "Alice", persistentroom="1", membersonly="1", publicroom="1",
                 roomname="Keepers")
    await muc(alice).set_affiliation(room, "member", jid=slixmpp.JID(b.jid), timeout=WAIT)
    muc(alice).set_subject(room, "kept subject")
    await alice.wait_for("muc_message", lambda m: m["subject"] == "kept subject", desc="subject")
    # Bob's occupant id (XEP-0421) and the messages of the discussion
    # before the restart.
    bob0 = await online(xmpp, srv, b, "bob0")
    pres, *_ = await join(bob0, room, "Bob", maxstanzas=0)
    bob_ids = occupant_ids(pres)
    assert len(bob_ids) == 1 and bob_ids[0], str(pres)
    bodies = [f"before the restart {i}" for i in range(3)]
    for body in bodies:
        alice.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
    sent = [await groupchat(alice, room, body) for body in bodies]
    alice_ids = occupant_ids(sent[0])
    sids = [[e.get("id") for e in m.xml.findall(f"{{{SID}}}stanza-id") if e.get("by") == room]
            for m in sent]
    # A moderated message (XEP-0425) does not come back.
    if not ON_PROSODY:
        alice.xmpp.send_message(mto=room, mbody="moderated before the restart",
                                mtype="groupchat")
        spam = await groupchat(alice, room, "moderated before the restart")
        spam_id = [e.get("id") for e in spam.xml.findall(f"{{{SID}}}stanza-id")
                   if e.get("by") == room][0]
        iq = alice.xmpp.make_iq_set(ito=room)
        iq.append(ET.fromstring(
            f"<moderate xmlns='{MODERATE}' id='{spam_id}'><retract xmlns='{RETRACT}'/></moderate>"))
        await iq.send(timeout=WAIT)
    await bob0.close()
    await alice.close()

    await asyncio.to_thread(srv.restart)

    bob = await online(xmpp, srv, b, "bob")
    pres, subject, _, history = await join(bob, room, "Bob")
    assert item(pres).get("affiliation") == "member", str(pres)
    # XEP-0421 §3: the same occupant id after the restart.
    assert occupant_ids(pres) == bob_ids, f"occupant id {occupant_ids(pres)} != {bob_ids}"
    # The discussion history comes back from the room's archive, as live
    # history looks: delayed by the room, from the occupant JID, with the
    # author's occupant id and the room's stanza-id.
    assert [h["body"] for h in history] == bodies, [str(h) for h in history]
    for h, sid in zip(history, sids):
        assert str(h["from"]) == f"{room}/Alice", str(h)
        delay = h.xml.find("{urn:xmpp:delay}delay")
        assert delay is not None and delay.get("from") == room, str(h)
        assert occupant_ids(h) == alice_ids, str(h)
        assert [e.get("id") for e in h.xml.findall(f"{{{SID}}}stanza-id")
                if e.get("by") == room] == sid, str(h)
    carol = await online(xmpp, srv, c, "carol")
    assert await join_refused(carol, room, "Carol") == ("auth", "registration-required")
    info = await bob.xmpp.plugin["xep_0030"].get_info(jid=room, timeout=WAIT)
    assert "muc_persistent" in info["disco_info"]["features"], info
    assert "muc_membersonly" in info["disco_info"]["features"], info
    names = [i[3] for i in info["disco_info"]["identities"]]
    assert "Keepers" in names, info
    # Listed by the service (disco#items, §6.3).
    items = await bob.xmpp.plugin["xep_0030"].get_items(jid=service(srv), timeout=WAIT)
    assert room in [str(i[0]) for i in items["disco_items"]["items"]], items
    # The owner is still the owner.
    alice2 = await online(xmpp, srv, a, "alice2")
    pres, *_ = await join(alice2, room, "Alice")
    assert item(pres).get("affiliation") == "owner", str(pres)
    # And the room's subject is the one it had (Prosody and ejabberd keep it).
    assert subject["subject"] == "kept subject", f"subject after the restart: {subject}"


DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


def item_jids(iq) -> list[str]:
    """The item JIDs of a disco#items result, in the order sent."""
    q = iq.xml.find(f"{{{DISCO_ITEMS}}}query")
    return [i.get("jid") for i in q.findall(f"{{{DISCO_ITEMS}}}item")]


@vireo_only
@pytest.mark.asyncio
async def test_room_listing_pages_with_rsm(own_muc_server, xmpp):
    """§6.3 with XEP-0059: slixmpp's result set iterator walks the
    service's room listing two rooms a page, every public room once and
    in order, hidden ones left out; a room's own disco#items lists no
    occupants (§6.5 leaves it open; Prosody lists none)."""
    srv = own_muc_server
    alice = await online(xmpp, srv, srv.new_account("alice"), "alice")
    rooms = [f"list{i}@{service(srv)}" for i in range(5)]
    for i, room in enumerate(rooms):
        await create(alice, room, "Alice")
    hidden = f"hidden@{service(srv)}"
    await create(alice, hidden, "Alice", publicroom="0")

    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=service(srv), timeout=WAIT)
    assert RSM in info["disco_info"]["features"], info

    iq = alice.xmpp.Iq()
    iq["to"], iq["type"] = service(srv), "get"
    iq.enable("disco_items")
    pages = []
    async for page in alice.xmpp.plugin["xep_0059"].iterate(iq, "disco_items", amount=2):
        pages.append(item_jids(page))
        assert len(pages) < 10, pages
    assert all(len(p) <= 2 for p in pages), pages
    assert [j for p in pages for j in p] == rooms, pages

    # Without RSM: the whole (short) listing at once.
    plain = await alice.xmpp.plugin["xep_0030"].get_items(jid=service(srv), timeout=WAIT)
    assert item_jids(plain) == rooms, str(plain)

    own = await alice.xmpp.plugin["xep_0030"].get_items(jid=rooms[0], timeout=WAIT)
    assert item_jids(own) == [], str(own)


@pytest.mark.asyncio
async def test_a_vanished_client_leaves_the_room(muc_server, xmpp):
    srv = muc_server
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("stays"), "alice")
    bob = await online(xmpp, srv, srv.new_account("vanishes"), "bob")
    await create(alice, room, "Alice")
    await join(bob, room, "Bob")

    bob.abort()  # TCP closed without </stream:stream> nor unavailable presence
    gone = await presence_from(alice, room, "Bob", "unavailable", timeout=15)
    assert item(gone).get("role") == "none", str(gone)
    # And the nick is free again.
    carol = await online(xmpp, srv, srv.new_account("next"), "carol")
    await join(carol, room, "Bob")


# --------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(240)
async def test_hostile_nick_subject_and_many_rooms(own_muc_server, xmpp):
    """Vireo's budgets (groupchat.toml defaults: muc_max_nick_bytes 128,
    muc_max_subject_bytes 1024, muc_max_rooms_per_user 100) are met with
    their precise errors at the limit; Prosody, which has none of them,
    must still answer a malformed address precisely and stay bounded."""
    srv = own_muc_server
    vireo = type(srv) is VireoServer
    room = new_room(srv)
    alice = await online(xmpp, srv, srv.new_account("owner"), "alice")
    mallory = await online(xmpp, srv, srv.new_account("mallory"), "mallory")
    await create(alice, room, "Alice")
    before = rss_kib(srv)

    # A nick too long for a JID resourcepart (RFC 7622 §3.4: 1023 bytes):
    # the address is malformed.
    mallory.xmpp.send_raw(f"<presence to='{room}/{'n' * 2000}'><x xmlns='{MUC}'/></presence>")
    err = await mallory.wait_for("muc_presence", lambda p: attr(p, "type") == "error",
                                 desc="the error for a 2000-byte nick")
    assert error_of(err)[1] == "jid-malformed", str(err)
    if vireo:
        # At the nick budget: 128 bytes enter, 129 are not-acceptable.
        assert await join_or_error(mallory, room, "n" * 129) == "not-acceptable"
        assert await join_or_error(mallory, room, "n" * 128) == "joined"
        mallory.xmpp.send_presence(pto=f"{room}/{'n' * 128}", ptype="unavailable")
        await presence_from(mallory, room, "n" * 128, "unavailable", "110")

    # A huge subject from the owner (who may always change it): with Vireo
    # 1024 bytes are applied and 1025 refused with not-acceptable; Prosody
    # applies 200 KB. Either way the room goes on.
    if vireo:
        muc(alice).set_subject(room, "s" * 1024)
        await alice.wait_for("muc_message", lambda m: m["subject"] == "s" * 1024,
                             desc="the 1024-byte subject")
        muc(alice).set_subject(room, "s" * 1025)
        err = await alice.wait_for("muc_message", lambda m: attr(m, "type") == "error",
                                   desc="the error for a 1025-byte subject")
        assert error_of(err)[1] == "not-acceptable", str(err)
    else:
        muc(alice).set_subject(room, "s" * 200_000)
        await alice.wait_for("muc_message", lambda m: len(m["subject"] or "") == 200_000,
                             desc="the 200 KB subject")
    await join(mallory, room, "Mallory")
    alice.xmpp.send_message(mto=room, mbody="still here", mtype="groupchat")
    await groupchat(mallory, room, "still here")

    # Many rooms by one user: created until the budget, then refused with
    # resource-constraint (Vireo counts rooms per hub partition, so at least
    # 100 are created); Prosody has no such budget.
    outcomes: dict[str, int] = {}
    for i in range(1000 if vireo else 150):
        r = new_room(srv, f"flood{i}-")
        cond = await join_or_error(mallory, r, "M")
        outcomes[cond] = outcomes.get(cond, 0) + 1
        if cond != "joined":
            assert cond == "resource-constraint", (i, cond)
            break
    if vireo:
        assert outcomes.get("resource-constraint") == 1, outcomes
        assert outcomes["joined"] >= 100, outcomes
    # Many joins of one room under fresh nicks from one session (each a
    # nick change, §7.6).
    for i in range(100):
        cond = await join_or_error(mallory, room, f"clone{i}")
        outcomes["re" + cond] = outcomes.get("re" + cond, 0) + 1
        assert cond == "joined", (i, cond)
    after = rss_kib(srv)
    print(f"muc hostile: {outcomes}; RSS {before} KiB -> {after} KiB (+{after - before} KiB)")
    assert after - before < 64 * 1024, f"RSS grew {after - before} KiB"

    # Still serving.
    alice.xmpp.send_message(mto=room, mbody="after the flood", mtype="groupchat")
    await groupchat(alice, room, "after the flood")
