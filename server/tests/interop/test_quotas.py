"""Per-account quotas and bounded queues (spec/security.md, "Per-account
quotas and bounded queues"), against the real binary.

- A stranger's flood of offline messages must not lock the user out: a
  stream-management client with hundreds of messages waiting receives all
  of them, in order, in pages paced by its acknowledgements, and stays
  connected.
- The offline queue has a cap; one message more is answered with
  resource-constraint and nothing beyond the cap is stored.
- A second resource that stops reading while the first floods it ends with
  resource-constraint; what it was sent reaches offline storage, and the
  server's memory stays bounded meanwhile.
- Sessions per account are capped.
"""

import asyncio
import re
from pathlib import Path

import pytest

from conftest import DOMAIN, WAIT, QUIET, rss_kib
from smclient import SmClient, chat, local

pytestmark = pytest.mark.asyncio

STANZA_ERRORS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def configure(srv, text: str) -> None:
    path = Path(srv.root) / "vireo.toml"
    path.write_text(text)
    srv.config_path = path
    srv.start()


def stored_offline(srv) -> int:
    """Offline messages stored so far (hub_task logs each at debug level)."""
    return len(re.findall(r"offline message stored.*result=Done",
                          srv.log_path.read_text(errors="replace")))


async def wait_stored(srv, n: int, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while stored_offline(srv) < n:
        assert loop.time() < deadline, f"only {stored_offline(srv)} of {n} stored offline"
        await asyncio.sleep(0.1)


async def slow_session_ended(srv, timeout: float = 30.0) -> None:
    """Over one of its byte caps, the session ended with resource-constraint."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        log = srv.log_path.read_text(errors="replace")
        if ("ending the session with resource-constraint" in log
                or "unacknowledged queue over its byte limit" in log):
            return
        assert loop.time() < deadline, "the slow session did not end"
        await asyncio.sleep(0.1)


def errors_with(client: SmClient, condition: str) -> list:
    return [el for el in client.stanzas
            if local(el.tag) == "message" and el.get("type") == "error"
            and el.find(f".//{{{STANZA_ERRORS}}}{condition}") is not None]


async def test_600_offline_messages_reach_an_sm_client_in_order(own_server, xmpp):
    """The lockout: 600 messages waiting used to arrive as one burst, overrun
    the 500-stanza XEP-0198 queue, end the session with resource-constraint
    and go back offline, at every login. Now they come in pages, each sent
    once the client acknowledged the previous one."""
    srv = own_server
    alice_acc, stranger_acc = srv.new_account("flooded"), srv.new_account("stranger")
    stranger = await SmClient(srv, stranger_acc, "bot").connect(sm=False)
    n = 600
    for i in range(n):
        stranger.send(chat(alice_acc.jid, f"m{i:04d}"))
    await stranger.ping(timeout=30)
    await wait_stored(srv, n)

    alice = xmpp.client(srv, alice_acc, resource="phone", name="alice")
    alice.xmpp.register_plugin("xep_0198")
    enabled = asyncio.Event()
    alice.xmpp.add_event_handler("sm_enabled", lambda _: enabled.set())
    await alice.connect(presence=False)
    await asyncio.wait_for(enabled.wait(), WAIT)
    alice.xmpp.send_presence()

    def received():
        return [m["body"] for m in alice.received["message"]
                if m["type"] != "error" and m["body"].startswith("m")]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while len(received()) < n and loop.time() < deadline and not alice.disconnected.is_set():
        await asyncio.sleep(0.1)
    got = received()
    assert not alice.disconnected.is_set(), \
        f"disconnected after {len(got)} messages; stream errors: {alice.stream_errors}"
    assert got == [f"m{i:04d}" for i in range(n)], \
        f"{len(got)} of {n} messages, or out of order: {got[:5]}...{got[-5:]}"
    # Still connected and served; nothing left offline, nothing repeated.
    await alice.sync()
    await asyncio.sleep(QUIET)
    assert not alice.disconnected.is_set() and not alice.stream_errors
    assert len(received()) == n
    log = srv.log_path.read_text(errors="replace")
    assert "too many unacknowledged" not in log
    await stranger.close()


async def test_offline_quota_answers_the_sender(configured_server, xmpp):
    srv = configured_server
    configure(srv, "[services]\nmax_offline_messages = 20\n")
    bob_acc, spammer_acc = srv.new_account("capped"), srv.new_account("spammer")
    spammer = await SmClient(srv, spammer_acc, "bot").connect(sm=False)
    for i in range(25):
        spammer.send(chat(bob_acc.jid, f"s{i:02d}", mid=f"s{i:02d}"))
    await spammer.ping(timeout=30)
    await spammer.wait_until(lambda: len(errors_with(spammer, "resource-constraint")) >= 5,
                             30, "resource-constraint errors")
    refused = sorted(el.get("id") for el in errors_with(spammer, "resource-constraint"))
    assert refused == [f"s{i:02d}" for i in range(20, 25)], refused
    assert stored_offline(srv) == 20

    # A redelivery in the other direction: the recipient gets exactly the
    # 20 that were accepted, in order, and then the queue is empty.
    bob = await xmpp.online(srv, bob_acc, name="bob")
    for i in range(20):
        await bob.wait_message(body=f"s{i:02d}", timeout=10)
    await asyncio.sleep(QUIET)
    bodies = [m["body"] for m in bob.received["message"] if m["type"] != "error"]
    assert bodies == [f"s{i:02d}" for i in range(20)], bodies
    await spammer.close()


async def test_slow_second_resource_under_a_flood_ends_and_nothing_is_lost(configured_server):
    """A user floods their own second resource, which stopped reading: the
    mailbox or the XEP-0198 queue reaches its byte cap, the slow session
    ends with resource-constraint, and everything it was sent and never
    acknowledged is found in offline storage. The server's RSS stays far
    below what the flood would have cost unbounded."""
    srv = configured_server
    configure(srv, "[stream]\nmax_mailbox_bytes = 262144\nsmacks_max_queue_bytes = 262144\n"
                   "[services]\nmax_offline_messages = 100000\n")
    acc = srv.new_account("selfflood")
    slow = SmClient(srv, acc, "slow")
    slow.rcvbuf = 4096
    await slow.connect(sm=True)
    flooder = await SmClient(srv, acc, "flooder").connect(sm=False)
    await flooder.ping()
    slow.stop_reading()

    base = rss_kib(srv)
    peak = base
    n, body = 3000, "x" * 4096
    for i in range(n):
        flooder.send(chat(slow.jid, f"f{i:05d}{body}", mid=f"f{i:05d}"))
        if i % 100 == 99:
            await flooder.conn.writer.drain()
            peak = max(peak, rss_kib(srv))
    await flooder.ping(timeout=60)
    peak = max(peak, rss_kib(srv))
    await slow_session_ended(srv)
    # Everything the slow resource was sent is offline (it acknowledged
    # nothing, so nothing counts as delivered).
    await wait_stored(srv, n, timeout=90)
    peak = max(peak, rss_kib(srv))
    assert stored_offline(srv) == n
    grown_mib = (peak - base) / 1024
    flood_mib = n * len(body) / 2**20
    print(f"RSS {base} KiB before, peak {peak} KiB: +{grown_mib:.1f} MiB for a {flood_mib:.1f} MiB flood")
    # Measured: about +50 MiB, as much as the same flood costs sent
    # straight into offline storage with no slow reader at all (sled, and
    # up to four batches of writes in flight): the slow session's mailbox
    # and XEP-0198 queue hold at most 256 KiB each. The bound catches a
    # queue that keeps every copy of the flood.
    assert grown_mib < 100, f"RSS grew {grown_mib:.1f} MiB during a {flood_mib:.1f} MiB flood"

    # A fresh resource with presence gets every message back from offline
    # storage, each once.
    reader = await SmClient(srv, acc, "reader").connect(sm=True, presence=True)
    await reader.wait_until(
        lambda: sum(1 for b in reader.bodies() if b.startswith("f")) >= n, 90,
        f"{n} messages from offline storage")
    got = [b[:6] for b in reader.bodies() if b.startswith("f")]
    assert sorted(got) == [f"f{i:05d}" for i in range(n)], "lost or repeated messages"
    slow.shutdown()
    await flooder.close()
    await reader.close()


async def test_sessions_per_account_are_capped(configured_server):
    srv = configured_server
    configure(srv, "[stream]\nmax_user_sessions = 3\n")
    acc = srv.new_account("many")
    clients = [await SmClient(srv, acc, f"r{i}").connect(sm=False) for i in range(3)]
    for c in clients:
        await c.ping()
    extra = SmClient(srv, acc, "r3")
    await extra.connect(sm=False)
    await extra.wait_until(lambda: extra.conn.eof, WAIT, "the fourth session to be closed")
    assert extra.conn.stream_error == "resource-constraint", extra.conn.stream_error
    # The others are untouched, and a resource may still be replaced.
    for c in clients:
        await c.ping()
    again = await SmClient(srv, acc, "r0").connect(sm=False)
    await again.ping()
    await clients[0].wait_until(lambda: clients[0].conn.eof, WAIT, "r0 to be replaced")
    assert clients[0].conn.stream_error == "conflict"
    for c in clients[1:] + [again]:
        await c.close()


async def test_roster_items_are_capped(configured_server):
    srv = configured_server
    configure(srv, "[services]\nmax_roster_items = 3\n")
    acc = srv.new_account("popular")
    alice = await SmClient(srv, acc, "pc").connect(sm=False)

    def roster_set(jid: str, iq_id: str) -> None:
        alice.send(f"<iq type='set' id='{iq_id}'><query xmlns='jabber:iq:roster'>"
                   f"<item jid='{jid}'/></query></iq>")

    def answer(iq_id: str):
        return next((el for el in alice.stanzas
                     if local(el.tag) == "iq" and el.get("id") == iq_id), None)

    for i in range(3):
        roster_set(f"friend{i}@{DOMAIN}", f"add{i}")
        await alice.wait_until(lambda: answer(f"add{i}") is not None, WAIT, f"answer to add{i}")
        assert answer(f"add{i}").get("type") == "result"
    roster_set(f"friend3@{DOMAIN}", "add3")
    await alice.wait_until(lambda: answer("add3") is not None, WAIT, "answer to add3")
    refused = answer("add3")
    assert refused.get("type") == "error"
    assert refused.find(f".//{{{STANZA_ERRORS}}}resource-constraint") is not None
    # Changing an existing item is still allowed.
    roster_set(f"friend0@{DOMAIN}", "rename")
    await alice.wait_until(lambda: answer("rename") is not None, WAIT, "answer to rename")
    assert answer("rename").get("type") == "result"

    # Subscribing to a new contact would add one too.
    alice.send(f"<presence to='friend9@{DOMAIN}' type='subscribe'/>")

    def own_error():
        return [el for el in alice.stanzas
                if local(el.tag) == "presence" and el.get("type") == "error"]
    await alice.wait_until(lambda: own_error(), WAIT, "a presence error for the subscribe")
    assert own_error()[0].find(f".//{{{STANZA_ERRORS}}}resource-constraint") is not None

    # A stranger's subscription request would add a fourth (hidden) item:
    # answered with an error, not silently dropped.
    # Available, so the error to its bare JID reaches it (RFC 6121 §8.5.2).
    stranger = await SmClient(srv, srv.new_account("stranger"), "pc").connect(sm=False, presence=True)
    stranger.send(f"<presence to='{acc.jid}' type='subscribe'/>")

    def presence_error():
        return [el for el in stranger.stanzas
                if local(el.tag) == "presence" and el.get("type") == "error"]
    await stranger.wait_until(lambda: presence_error(), WAIT, "a presence error")
    assert presence_error()[0].find(f".//{{{STANZA_ERRORS}}}resource-constraint") is not None
    await alice.close()
    await stranger.close()


async def test_private_documents_are_capped(configured_server):
    """XEP-0049 storage is one document per element name: without a cap an
    account could store as many as it likes. Beyond the cap a new one is
    refused with resource-constraint and nothing is stored; replacing a
    stored one still works."""
    srv = configured_server
    configure(srv, "[services]\nmax_private_documents = 3\n")
    alice = await SmClient(srv, srv.new_account("hoarder"), "pc").connect(sm=False)

    def private(iq_id: str, kind: str, payload: str) -> None:
        alice.send(f"<iq type='{kind}' id='{iq_id}'><query xmlns='jabber:iq:private'>"
                   f"{payload}</query></iq>")

    async def answer(iq_id: str):
        def find():
            return next((el for el in alice.stanzas
                         if local(el.tag) == "iq" and el.get("id") == iq_id), None)
        await alice.wait_until(lambda: find() is not None, WAIT, f"answer to {iq_id}")
        return find()

    for i in range(3):
        private(f"set{i}", "set", f"<doc xmlns='urn:x:doc{i}'>v1</doc>")
        assert (await answer(f"set{i}")).get("type") == "result"
    private("set3", "set", "<doc xmlns='urn:x:doc3'>v1</doc>")
    refused = await answer("set3")
    assert refused.get("type") == "error"
    assert refused.find(f".//{{{STANZA_ERRORS}}}resource-constraint") is not None
    private("get3", "get", "<doc xmlns='urn:x:doc3'/>")
    got = await answer("get3")
    assert got.get("type") == "result"
    assert "v1" not in "".join(got.itertext()), "the refused document was stored"
    # Replacing a stored document is not a new one.
    private("replace", "set", "<doc xmlns='urn:x:doc0'>v2</doc>")
    assert (await answer("replace")).get("type") == "result"
    private("get0", "get", "<doc xmlns='urn:x:doc0'/>")
    assert "v2" in "".join((await answer("get0")).itertext())
    await alice.close()
