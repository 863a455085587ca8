"""PEP beyond publish and read, with slixmpp's plugins against the real
server, each surviving a restart (everything is an account document):
whitelist members (XEP-0060 §8.9) read and outsiders are refused;
explicit subscriptions (§6.1) are notified without caps; XEP-0398 turns a
XEP-0084 avatar into the vCard photo and presence hash (xep_0084,
xep_0054) and a vCard photo into XEP-0084 metadata; XEP-0402 bookmarks
with XEP-0402's publish-options (xep_0402); XEP-0411 keeps legacy
bookmarks (xep_0048 over xep_0049) and XEP-0402 in step; XEP-0292 vCard4
is plain PEP; a deleted and re-created account has no nodes; the
budgets hold under a flood."""

import asyncio
import base64
import hashlib
import re
import secrets
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from slixmpp.exceptions import IqError
from slixmpp.stanza import Error

# slixmpp 1.17 knows RFC 3920's stanza error conditions, not RFC 6120's
# policy-violation (§8.3.3.12), which the budgets answer: without it an
# error with that condition is not parsed and its iq times out.
Error.conditions = Error.conditions | {"policy-violation"}

from conftest import WAIT, rss_kib
from test_pep import items, notification, pep_client, publish
from test_pep import subscribe as presence_subscribe

DIARY = "urn:example:diary"
BOOKMARKS = "urn:xmpp:bookmarks:1"
AVATAR_DATA = "urn:xmpp:avatar:data"
AVATAR_METADATA = "urn:xmpp:avatar:metadata"
VCARD4 = "urn:xmpp:vcard4"
UPDATE = "vcard-temp:x:update"
# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
PNG_SHA1 = hashlib.sha1(PNG).hexdigest()


def photo(presence):
    el = presence.xml.find(f"{{{UPDATE}}}x/{{{UPDATE}}}photo")
    return None if el is None else (el.text or "").strip()


async def refused(coro):
    with pytest.raises(IqError) as err:
        await coro
    return err.value.iq


async def eventually(check, timeout=WAIT):
    """`check()` (a coroutine function) until it returns true."""
    for _ in range(int(timeout / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not true within {timeout}s: {check.__name__}")


@pytest.mark.asyncio
async def test_whitelist_member_reads_and_outsider_is_refused(own_server, xmpp):
    srv = own_server
    a, m, o = srv.new_account("owner"), srv.new_account("member"), srv.new_account("outsider")
    alice = pep_client(xmpp, srv, a, "alice")
    await alice.connect()
    await publish(alice, DIARY, f"<entry xmlns='{DIARY}'>dear diary</entry>",
                  item_id="d1", access_model="whitelist")
    pubsub = alice.xmpp.plugin["xep_0060"]
    await pubsub.modify_affiliations(a.jid, DIARY, [(m.jid, "member")], timeout=WAIT)
    affs = await pubsub.get_node_affiliations(a.jid, DIARY, timeout=WAIT)
    assert f"jid=\"{m.jid}\"" in str(affs) and "member" in str(affs), str(affs)

    async def check(member_name, outsider_name):
        member = pep_client(xmpp, srv, m, member_name)
        await member.connect()
        assert "dear diary" in await items(member, a.jid, DIARY)
        outsider = pep_client(xmpp, srv, o, outsider_name)
        await outsider.connect()
        iq = await refused(items(outsider, a.jid, DIARY))
        assert iq["error"]["condition"] == "not-allowed" and "closed-node" in str(iq), str(iq)

    await check("member", "outsider")
    await asyncio.to_thread(srv.restart)
    await check("member2", "outsider2")


@pytest.mark.asyncio
async def test_subscription_without_caps_is_notified(own_server, xmpp):
    srv = own_server
    a, c = srv.new_account("publisher"), srv.new_account("reader")
    alice = pep_client(xmpp, srv, a, "alice")
    await alice.connect()
    await publish(alice, DIARY, f"<entry xmlns='{DIARY}'>first</entry>",
                  item_id="e1", access_model="open")
    # No XEP-0115 caps at all: only the explicit subscription brings events.
    carol = pep_client(xmpp, srv, c, "carol")
    await carol.connect()
    sub = await carol.xmpp.plugin["xep_0060"].subscribe(a.jid, DIARY, timeout=WAIT)
    assert sub["pubsub"]["subscription"]["subscription"] == "subscribed", str(sub)
    await notification(carol, "first")  # §6.1.7: the last item
    await publish(alice, DIARY, f"<entry xmlns='{DIARY}'>second</entry>", item_id="e2")
    await notification(carol, "second")

    await asyncio.to_thread(srv.restart)
    alice2 = pep_client(xmpp, srv, a, "alice2")
    await alice2.connect()
    carol2 = pep_client(xmpp, srv, c, "carol2")
    await carol2.connect()
    await publish(alice2, DIARY, f"<entry xmlns='{DIARY}'>third</entry>", item_id="e3")
    await notification(carol2, "third")
    subs = await alice2.xmpp.plugin["xep_0060"].get_node_subscriptions(a.jid, DIARY, timeout=WAIT)
    assert c.jid in str(subs), str(subs)


@pytest.mark.asyncio
async def test_xep0084_avatar_becomes_the_vcard_photo_and_presence_hash(own_server, xmpp):
    srv = own_server
    a, b = srv.new_account("face"), srv.new_account("watch")
    alice = xmpp.client(srv, a, name="alice")
    for plugin in ("xep_0060", "xep_0084", "xep_0054"):
        alice.xmpp.register_plugin(plugin)
    await alice.connect()
    bob = xmpp.client(srv, b, name="bob")
    bob.xmpp.register_plugin("xep_0054")
    await bob.connect()
    await presence_subscribe(bob, alice, b.jid, a.jid)

    disco = await alice.xmpp.plugin["xep_0030"].get_info(a.jid, timeout=WAIT)
    assert "urn:xmpp:pep-vcard-conversion:0" in disco["disco_info"]["features"]

    avatar = alice.xmpp.plugin["xep_0084"]
    await avatar.publish_avatar(PNG, timeout=WAIT)
    await avatar.publish_avatar_metadata(
        {"id": PNG_SHA1, "type": "image/png", "bytes": len(PNG)}, timeout=WAIT)
    await bob.wait_for(
        "presence", lambda p: p["from"].bare == a.jid and photo(p) == PNG_SHA1,
        desc="alice's presence with the new avatar's hash")
    got = await bob.xmpp.plugin["xep_0054"].get_vcard(a.jid, cached=False, timeout=WAIT)
    assert hashlib.sha1(got["vcard_temp"]["PHOTO"]["BINVAL"]).hexdigest() == PNG_SHA1

    await asyncio.to_thread(srv.restart)
    bob2 = xmpp.client(srv, b, name="bob2")
    bob2.xmpp.register_plugin("xep_0054")
    await bob2.connect()
    got = await bob2.xmpp.plugin["xep_0054"].get_vcard(a.jid, cached=False, timeout=WAIT)
    assert hashlib.sha1(got["vcard_temp"]["PHOTO"]["BINVAL"]).hexdigest() == PNG_SHA1


@pytest.mark.asyncio
async def test_vcard_photo_becomes_readable_xep0084_metadata(own_server, xmpp):
    srv = own_server
    a, c = srv.new_account("legacy"), srv.new_account("stranger")
    alice = xmpp.client(srv, a, name="alice")
    alice.xmpp.register_plugin("xep_0054")
    await alice.connect()
    vcard = alice.xmpp.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Alice"
    vcard["PHOTO"]["TYPE"] = "image/png"
    vcard["PHOTO"]["BINVAL"] = PNG
    await alice.xmpp.plugin["xep_0054"].publish_vcard(vcard, timeout=WAIT)

    async def check(name):
        carol = pep_client(xmpp, srv, c, name)
        carol.xmpp.register_plugin("xep_0084")
        await carol.connect()
        got = {}

        async def metadata_published():
            try:
                got["meta"] = await items(carol, a.jid, AVATAR_METADATA)
            except IqError:
                return False
            return PNG_SHA1 in got["meta"]

        await eventually(metadata_published)
        assert "image/png" in got["meta"] and f'bytes="{len(PNG)}"' in got["meta"], got["meta"]
        data = await carol.xmpp.plugin["xep_0084"].retrieve_avatar(a.jid, PNG_SHA1, timeout=WAIT)
        assert data["pubsub"]["items"]["item"]["avatar_data"]["value"] == PNG

    await check("carol")
    await asyncio.to_thread(srv.restart)
    await check("carol2")


def conference_item(name, nick, autojoin=True):
    return (f"<conference xmlns='{BOOKMARKS}' name='{name}' autojoin='{str(autojoin).lower()}'>"
            f"<nick>{nick}</nick></conference>")


async def bookmarks2(client, owner):
    return await items(client, owner, BOOKMARKS)


async def legacy_bookmarks(client):
    r = await client.xmpp.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=WAIT)
    return r["private"]["bookmarks"]


@pytest.mark.asyncio
async def test_bookmarks2_round_trip_with_publish_options(own_server, xmpp):
    srv = own_server
    a, c = srv.new_account("rooms"), srv.new_account("peek")
    alice = pep_client(xmpp, srv, a, "alice")
    alice.xmpp.register_plugin("xep_0402")
    await alice.connect()
    room = f"tea-{secrets.token_hex(3)}@conference.localhost"
    got = await publish(alice, BOOKMARKS, conference_item("Tea", "al"), item_id=room,
                        persist_items="true", max_items="max",
                        send_last_published_item="never", access_model="whitelist")
    assert got == room
    # XEP-0402 §4: the same options again are met; a different one is not.
    await publish(alice, BOOKMARKS, conference_item("Tea time", "al"), item_id=room,
                  persist_items="true", max_items="max",
                  send_last_published_item="never", access_model="whitelist")
    iq = await refused(publish(alice, BOOKMARKS, conference_item("x", "y"), item_id="x@c",
                               access_model="open"))
    assert "precondition-not-met" in str(iq), str(iq)

    carol = pep_client(xmpp, srv, c, "carol")
    await carol.connect()
    iq = await refused(bookmarks2(carol, a.jid))
    assert "closed-node" in str(iq), str(iq)

    await asyncio.to_thread(srv.restart)
    alice2 = pep_client(xmpp, srv, a, "alice2")
    alice2.xmpp.register_plugin("xep_0402")
    await alice2.connect()
    r = await alice2.xmpp.plugin["xep_0060"].get_items(a.jid, BOOKMARKS, timeout=WAIT)
    conferences = [i["conference"] for i in r["pubsub"]["items"]]
    assert [(c["name"], c["nick"], c["autojoin"]) for c in conferences] == [("Tea time", "al", True)]


@pytest.mark.asyncio
async def test_legacy_bookmarks_and_bookmarks2_stay_in_step(own_server, xmpp):
    srv = own_server
    a = srv.new_account("both")
    alice = pep_client(xmpp, srv, a, "alice")
    for plugin in ("xep_0045", "xep_0049", "xep_0223", "xep_0048", "xep_0402"):
        alice.xmpp.register_plugin(plugin)
    await alice.connect()
    disco = await alice.xmpp.plugin["xep_0030"].get_info(a.jid, timeout=WAIT)
    for feature in ("urn:xmpp:bookmarks-conversion:0", "urn:xmpp:bookmarks:1#compat"):
        assert feature in disco["disco_info"]["features"], feature

    # A legacy client stores a room: it appears as a XEP-0402 item.
    legacy = alice.xmpp.plugin["xep_0048"].stanza.Bookmarks()
    legacy.add_conference("old@conference.localhost", "oldnick", name="Old", autojoin=True)
    await alice.xmpp.plugin["xep_0048"].set_bookmarks(legacy, method="xep_0049", timeout=WAIT)

    async def converted():
        try:
            return "old@conference.localhost" in await bookmarks2(alice, a.jid)
        except IqError:
            return False

    await eventually(converted)

    # A modern client adds one: the legacy document lists both.
    await publish(alice, BOOKMARKS, conference_item("New", "newnick"),
                  item_id="new@conference.localhost", persist_items="true",
                  max_items="max", send_last_published_item="never",
                  access_model="whitelist")

    async def both_legacy():
        rooms = {c["jid"] for c in (await legacy_bookmarks(alice))["conferences"]}
        return rooms == {"old@conference.localhost", "new@conference.localhost"}

    await eventually(both_legacy)

    await asyncio.to_thread(srv.restart)
    alice2 = pep_client(xmpp, srv, a, "alice2")
    for plugin in ("xep_0045", "xep_0049", "xep_0223", "xep_0048", "xep_0402"):
        alice2.xmpp.register_plugin(plugin)
    await alice2.connect()
    rooms = {c["jid"] for c in (await legacy_bookmarks(alice2))["conferences"]}
    assert rooms == {"old@conference.localhost", "new@conference.localhost"}, rooms
    got = await bookmarks2(alice2, a.jid)
    assert "old@conference.localhost" in got and "new@conference.localhost" in got, got

    # The legacy client removes the old room: the item is retracted.
    legacy = alice2.xmpp.plugin["xep_0048"].stanza.Bookmarks()
    legacy.add_conference("new@conference.localhost", "newnick", name="New")
    await alice2.xmpp.plugin["xep_0048"].set_bookmarks(legacy, method="xep_0049", timeout=WAIT)

    async def retracted():
        return "old@conference.localhost" not in await bookmarks2(alice2, a.jid)

    await eventually(retracted)


@pytest.mark.asyncio
async def test_vcard4_is_plain_pep(own_server, xmpp):
    """XEP-0292 over PEP: the generic node covers it (presence access for
    contacts, open for anyone)."""
    srv = own_server
    a, b, c = srv.new_account("card"), srv.new_account("friend"), srv.new_account("stranger")
    alice = pep_client(xmpp, srv, a, "alice")
    await alice.connect()
    bob = pep_client(xmpp, srv, b, "bob")
    await bob.connect()
    carol = pep_client(xmpp, srv, c, "carol")
    await carol.connect()
    await presence_subscribe(bob, alice, b.jid, a.jid)
    card = (f"<vcard xmlns='{VCARD4}'><fn><text>Alice</text></fn>"
            "<nickname><text>al</text></nickname></vcard>")
    await publish(alice, VCARD4, card, item_id="current", access_model="presence")
    assert "Alice" in await items(bob, a.jid, VCARD4)
    iq = await refused(items(carol, a.jid, VCARD4))
    assert "presence-subscription-required" in str(iq), str(iq)
    await alice.xmpp.plugin["xep_0060"].set_node_config(
        None, VCARD4, config_form(alice, access_model="open"), timeout=WAIT)
    await asyncio.to_thread(srv.restart)
    carol2 = pep_client(xmpp, srv, c, "carol2")
    await carol2.connect()
    assert "Alice" in await items(carol2, a.jid, VCARD4)


def config_form(client, **fields):
    form = client.xmpp.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#node_config")
    for var, value in fields.items():
        form.add_field(var=f"pubsub#{var}", value=value)
    return form


@pytest.mark.asyncio
async def test_recreated_account_has_no_nodes(own_server, xmpp):
    srv = own_server
    a, c = srv.new_account("gone"), srv.new_account("look")
    alice = pep_client(xmpp, srv, a, "alice")
    await alice.connect()
    await publish(alice, DIARY, f"<entry xmlns='{DIARY}'>old life</entry>",
                  item_id="x", access_model="open")
    await alice.close()
    assert (await asyncio.to_thread(srv.cli, "deluser", a.jid)).returncode == 0
    password = secrets.token_urlsafe(12)
    srv.adduser(a.jid.split("@")[0], password)
    carol = pep_client(xmpp, srv, c, "carol")
    await carol.connect()
    iq = await refused(items(carol, a.jid, DIARY))
    assert iq["error"]["condition"] == "item-not-found", str(iq)
    got = await carol.xmpp.plugin["xep_0030"].get_items(a.jid, timeout=WAIT)
    assert not list(got["disco_items"]["items"]), str(got)


@pytest.mark.asyncio
async def test_pep_budgets_hold_under_a_flood(own_server, xmpp):
    """A compromised client fills items kept only in memory across many
    nodes and a stranger subscribes resource after resource: both stop at
    their budgets with XEP-0060's errors, and the server's memory with them."""
    srv = own_server
    a, c = srv.new_account("filler"), srv.new_account("greedy")
    alice = pep_client(xmpp, srv, a, "alice")
    await alice.connect()
    big = "x" * (60 * 1024)
    iq = await refused(publish(alice, "urn:example:big", f"<b xmlns='urn:example:big'>{'y' * 66000}</b>"))
    assert iq["error"]["condition"] == "not-acceptable" and "payload-too-big" in str(iq), str(iq)

    base = peak = rss_kib(srv)
    accepted, refusals = 0, []
    for n in range(100):
        for i in range(3):
            try:
                await publish(alice, f"urn:example:fill:{n}", f"<b xmlns='urn:example:big'>{big}</b>",
                              item_id=str(i), persist_items="0", max_items="max",
                              access_model="open")
                accepted += 1
            except IqError as e:
                refusals.append(e.iq["error"]["condition"])
        peak = max(peak, rss_kib(srv))
    grown_mib = (peak - base) / 1024
    print(f"{accepted} items of 60 KiB accepted, {len(refusals)} refused; "
          f"RSS {base} KiB before, peak {peak} KiB: +{grown_mib:.1f} MiB")
    # 4 MiB per account, counted for items kept in memory too.
    assert 0 < accepted * 60 <= 4 * 1024, accepted
    assert refusals and set(refusals) == {"policy-violation"}, set(refusals)
    assert grown_mib < 64, f"RSS grew {grown_mib:.1f} MiB"

    await publish(alice, DIARY, f"<entry xmlns='{DIARY}'>open</entry>", item_id="o",
                  access_model="open")
    carol = pep_client(xmpp, srv, c, "carol")
    await carol.connect()
    pubsub = carol.xmpp.plugin["xep_0060"]
    for r in range(16):
        await pubsub.subscribe(a.jid, DIARY, subscribee=f"{c.jid}/r{r}", timeout=WAIT)
    iq = await refused(pubsub.subscribe(a.jid, DIARY, subscribee=f"{c.jid}/r16", timeout=WAIT))
    assert iq["error"]["condition"] == "policy-violation" and "too-many-subscriptions" in str(iq), str(iq)
