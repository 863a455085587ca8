"""XEP-0060 publish-subscribe service at pubsub.<domain>, with slixmpp's
xep_0060 plugin against the real binary:

- a node's life: created with a configuration, a subscriber notified of
  items and retractions, items read by max_items and in XEP-0059 pages
  (slixmpp's RSM iterator), affiliations (an outcast is refused), and
  everything (node, items, subscription, affiliations) still there after a
  restart; then the node deleted with a redirect, which the subscriber is
  told;
- the authorize access model: the subscription waits, the owner gets the
  §8.6 approval form as a message, submits it, and the subscriber is told
  and may read;
- hostile use: an oversized payload (payload-too-big), many nodes (the
  per-owner limit), many subscriptions (the per-JID limit), with the
  server's RSS measured before and after.
"""

import asyncio
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from slixmpp.exceptions import IqError
from slixmpp.stanza import Error
from slixmpp.plugins.xep_0059.stanza import Set
from slixmpp.plugins.xep_0060.stanza import Pubsub
from slixmpp.xmlstream import register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import DOMAIN, QUIET, WAIT, rss_kib

pytestmark = pytest.mark.asyncio

SERVICE = f"pubsub.{DOMAIN}"
ERRORS = "http://jabber.org/protocol/pubsub#errors"
# XEP-0059 inside <pubsub/>, for slixmpp's RSM iterator.
register_stanza_plugin(Pubsub, Set)
# slixmpp's stanza errors predate RFC 6120's policy-violation (its IqError
# knows it, its Error stanza does not, so the answer times out instead).
Error.conditions = Error.conditions | {"policy-violation"}


def ps_client(xmpp, srv, account, name):
    c = xmpp.client(srv, account, name=name)
    for plugin in ("xep_0004", "xep_0059", "xep_0060"):
        c.xmpp.register_plugin(plugin)
    c.seen = {k: [] for k in ("publish", "retract", "delete", "subscription")}
    for kind, seen in c.seen.items():
        c.xmpp.add_event_handler(f"pubsub_{kind}", seen.append)
    # The §8.6 approval form comes as a message without a body.
    c.forms = []
    c.xmpp.register_handler(Callback(
        "approval forms", MatchXPath("{jabber:client}message/{jabber:x:data}x"), c.forms.append))
    return c


async def seen(client, kind, text, timeout=WAIT):
    for _ in range(int(timeout / 0.1)):
        for m in client.seen[kind]:
            if text in str(m):
                return m
        await asyncio.sleep(0.1)
    raise AssertionError(f"{client.name}: no pubsub_{kind} with {text!r}: {client.seen[kind]}")


def config(client, **fields):
    form = client.xmpp.plugin["xep_0004"].make_form(ftype="submit")
    for var, value in fields.items():
        form.add_field(var=f"pubsub#{var}", value=value)
    return form


def ps(client):
    return client.xmpp.plugin["xep_0060"]


async def publish(client, node, text, item_id=None):
    payload = ET.fromstring(f"<entry xmlns='http://www.w3.org/2005/Atom'><title>{text}</title></entry>")
    r = await ps(client).publish(SERVICE, node, id=item_id, payload=payload, timeout=WAIT)
    return r["pubsub"]["publish"]["item"]["id"]


async def item_ids(client, node, **kw):
    r = await ps(client).get_items(SERVICE, node, timeout=WAIT, **kw)
    return [i["id"] for i in r["pubsub"]["items"]]


async def refused(coro):
    with pytest.raises(IqError) as err:
        await coro
    return err.value.iq


async def test_node_lifecycle_survives_a_restart(own_server, xmpp):
    srv = own_server
    a, b, c = srv.new_account("owner"), srv.new_account("reader"), srv.new_account("outcast")
    alice = ps_client(xmpp, srv, a, "alice")
    bob = ps_client(xmpp, srv, b, "bob")
    carol = ps_client(xmpp, srv, c, "carol")
    for client in (alice, bob, carol):
        await client.connect()

    info = await alice.xmpp.plugin["xep_0030"].get_info(SERVICE, timeout=WAIT)
    assert ("pubsub", "service", None, "Publish-Subscribe") in info["disco_info"]["identities"]
    assert "http://jabber.org/protocol/pubsub#subscribe" in info["disco_info"]["features"]

    await ps(alice).create_node(SERVICE, "news", config=config(alice, title="News", max_items="5"),
                                timeout=WAIT)
    r = await ps(bob).subscribe(SERVICE, "news", timeout=WAIT)
    assert r["pubsub"]["subscription"]["subscription"] == "subscribed"

    first = await publish(alice, "news", "hello", item_id="first")
    event = await seen(bob, "publish", "hello")
    assert event["from"] == SERVICE and event["type"] == "headline", str(event)
    await ps(alice).retract(SERVICE, "news", first, notify=True, timeout=WAIT)
    await seen(bob, "retract", "first")

    for n in range(7):
        await publish(alice, "news", f"n{n}", item_id=f"i{n}")
    assert await item_ids(bob, "news") == ["i2", "i3", "i4", "i5", "i6"], "max_items keeps 5"
    assert await item_ids(bob, "news", max_items=2) == ["i5", "i6"]
    # XEP-0059 pages of two, with slixmpp's RSM iterator.
    iq = bob.xmpp.Iq(sto=SERVICE, stype="get")
    iq["pubsub"]["items"]["node"] = "news"
    pages = []
    async for page in bob.xmpp.plugin["xep_0059"].iterate(iq, "pubsub", amount=2):
        pages.append([i["id"] for i in page["pubsub"]["items"]])
    assert pages == [["i2", "i3"], ["i4", "i5"], ["i6"]], pages

    await ps(alice).modify_affiliations(SERVICE, "news", [(c.jid, "outcast")], timeout=WAIT)
    err = await refused(item_ids(carol, "news"))
    assert err["error"]["condition"] == "forbidden", str(err)

    # Restart: node, items, subscription and affiliations were stored.
    await asyncio.to_thread(srv.restart)
    alice = ps_client(xmpp, srv, a, "alice2")
    bob = ps_client(xmpp, srv, b, "bob2")
    carol = ps_client(xmpp, srv, c, "carol2")
    for client in (alice, bob, carol):
        await client.connect()
    assert await item_ids(bob, "news") == ["i2", "i3", "i4", "i5", "i6"]
    err = await refused(item_ids(carol, "news"))
    assert err["error"]["condition"] == "forbidden", str(err)
    await publish(alice, "news", "after restart")
    await seen(bob, "publish", "after restart")
    affs = await ps(alice).get_node_affiliations(SERVICE, "news", timeout=WAIT)
    got = {str(x["jid"]): x["affiliation"] for x in affs["pubsub_owner"]["affiliations"]}
    assert got == {a.jid: "owner", c.jid: "outcast"}, got

    # Deletion with a redirect (§8.4.2), which the subscriber is told.
    iq = alice.xmpp.Iq(sto=SERVICE, stype="set")
    iq.append(ET.fromstring(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='news'>"
        f"<redirect uri='xmpp:{SERVICE}?;node=news2'/></delete></pubsub>"))
    await iq.send(timeout=WAIT)
    event = await seen(bob, "delete", "news")
    assert f"xmpp:{SERVICE}?;node=news2" in str(event), str(event)
    err = await refused(item_ids(bob, "news"))
    assert err["error"]["condition"] == "item-not-found", str(err)


async def test_authorize_subscription_is_approved_by_the_owner(own_server, xmpp):
    srv = own_server
    a, b = srv.new_account("owner"), srv.new_account("asker")
    alice = ps_client(xmpp, srv, a, "alice")
    bob = ps_client(xmpp, srv, b, "bob")
    await alice.connect()
    await bob.connect()

    await ps(alice).create_node(SERVICE, "club", config=config(alice, access_model="authorize"),
                                timeout=WAIT)
    await publish(alice, "club", "members only", item_id="m1")
    r = await ps(bob).subscribe(SERVICE, "club", timeout=WAIT)
    assert r["pubsub"]["subscription"]["subscription"] == "pending"
    err = await refused(item_ids(bob, "club"))
    assert err["error"]["condition"] == "not-authorized", str(err)
    assert f"{{{ERRORS}}}not-subscribed" in str(err) or "not-subscribed" in str(err), str(err)

    # The owner's client gets the approval form and submits it.
    for _ in range(int(WAIT / 0.1)):
        if alice.forms:
            break
        await asyncio.sleep(0.1)
    assert alice.forms, "no approval form"
    form = alice.forms[0]["form"]
    fields = form.get_fields()
    assert str(fields["pubsub#subscriber_jid"]["value"]) == b.jid, str(form)
    answer = alice.xmpp.Message(sto=SERVICE)
    submit = alice.xmpp.plugin["xep_0004"].make_form(ftype="submit")
    for var in ("FORM_TYPE", "pubsub#subid", "pubsub#node", "pubsub#subscriber_jid"):
        value = fields[var]["value"]
        # slixmpp reads hidden fields as lists.
        submit.add_field(var=var, value=str(value[0] if isinstance(value, list) else value))
    submit.add_field(var="pubsub#allow", value=True, ftype="boolean")
    answer.append(submit)
    answer.send()

    event = await seen(bob, "subscription", "subscribed")
    assert event["pubsub_event"]["subscription"]["node"] == "club", str(event)
    assert await item_ids(bob, "club") == ["m1"]
    await publish(alice, "club", "welcome")
    await seen(bob, "publish", "welcome")


async def test_hostile_payloads_nodes_and_subscriptions_are_refused(configured_server, xmpp):
    srv = configured_server
    path = Path(srv.root) / "vireo.toml"
    path.write_text("[services]\npubsub_max_nodes_per_owner = 40\npubsub_max_subscriptions = 30\n"
                    "pubsub_max_item_bytes = 4096\n")
    srv.config_path = path
    srv.start()
    a, b = srv.new_account("flooder"), srv.new_account("follower")
    alice = ps_client(xmpp, srv, a, "alice")
    bob = ps_client(xmpp, srv, b, "bob")
    await alice.connect()
    await bob.connect()
    before = rss_kib(srv)

    # An oversized payload.
    await ps(alice).create_node(SERVICE, "n0", timeout=WAIT)
    big = ET.fromstring(f"<blob xmlns='urn:x'>{'x' * 5000}</blob>")
    err = await refused(ps(alice).publish(SERVICE, "n0", payload=big, timeout=WAIT))
    assert err["error"]["condition"] == "not-acceptable", str(err)
    assert "payload-too-big" in str(err), str(err)

    # Many nodes: the 41st is refused, precisely.
    for n in range(1, 40):
        await ps(alice).create_node(SERVICE, f"n{n}", timeout=WAIT)
    err = await refused(ps(alice).create_node(SERVICE, "n40", timeout=WAIT))
    assert err["error"]["condition"] == "policy-violation", str(err)
    assert "max-nodes-exceeded" in str(err), str(err)

    # Many subscriptions: the 31st is refused, precisely.
    for n in range(30):
        await ps(bob).subscribe(SERVICE, f"n{n}", timeout=WAIT)
    err = await refused(ps(bob).subscribe(SERVICE, "n30", timeout=WAIT))
    assert err["error"]["condition"] == "policy-violation", str(err)
    assert "too-many-subscriptions" in str(err), str(err)

    # A burst of refused oversized publishes costs the server little.
    for _ in range(50):
        try:
            await ps(alice).publish(SERVICE, "n1", payload=big, timeout=WAIT)
        except IqError:
            pass
    await asyncio.sleep(QUIET)
    after = rss_kib(srv)
    print(f"pubsub hostile: RSS {before} KiB -> {after} KiB (+{after - before} KiB)")
    assert after - before < 16 * 1024, (before, after)
    # Still serving.
    await publish(alice, "n1", "still here")
    await seen(bob, "publish", "still here")


async def test_a_thousand_subscriptions_cost_little(configured_server, xmpp):
    """One bare JID subscribes 1,000 of its JIDs to a node (the per-JID
    budget raised to allow it): each is a small document, the server's
    memory barely moves, and a publish fans out to all of them in one step
    (the one online resource among them is notified)."""
    srv = configured_server
    path = Path(srv.root) / "vireo.toml"
    path.write_text("[services]\npubsub_max_subscriptions = 1000\n")
    srv.config_path = path
    srv.start()
    a, b = srv.new_account("wide"), srv.new_account("many")
    alice = ps_client(xmpp, srv, a, "alice")
    bob = ps_client(xmpp, srv, b, "bob")
    await alice.connect()
    await bob.connect()
    await ps(alice).create_node(SERVICE, "wide", timeout=WAIT)
    before = rss_kib(srv)

    own = str(bob.xmpp.boundjid.full)
    jids = [own] + [f"{b.jid}/r{k}" for k in range(999)]
    for start in range(0, len(jids), 50):
        await asyncio.gather(*(ps(bob).subscribe(SERVICE, "wide", subscribee=j, bare=False,
                                                 timeout=30)
                               for j in jids[start:start + 50]))
    err = await refused(ps(bob).subscribe(SERVICE, "wide", subscribee=f"{b.jid}/one-more",
                                          bare=False, timeout=WAIT))
    assert "too-many-subscriptions" in str(err), str(err)
    subscribed = rss_kib(srv)

    await publish(alice, "wide", "to everyone")
    await seen(bob, "publish", "to everyone")
    await asyncio.sleep(QUIET)
    after = rss_kib(srv)
    print(f"pubsub 1000 subscriptions: RSS {before} KiB -> {subscribed} KiB subscribed "
          f"-> {after} KiB after the fan-out")
    assert subscribed - before < 16 * 1024 and after - before < 16 * 1024, (before, subscribed, after)
    lst = await ps(alice).get_node_subscriptions(SERVICE, "wide", timeout=WAIT)
    assert len(lst["pubsub_owner"]["subscriptions"]) == 1000
