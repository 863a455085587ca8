"""Acknowledgements are promises: what the server confirmed survives kill -9.

XEP-0198: once the server answers <r/> with <a h='N'/>, the client drops
its first N stanzas for good. The server may count a stanza only once its
effects are durable: a message to an offline contact must be in offline
storage, committed. Each round sends N messages to an offline contact (while
other clients keep the storage busy), waits for <a h='N'/>, SIGKILLs the
server at once, restarts it and logs the contact in: all N must be there.

The same promise holds for iq results of requests that store something
(roster set, private XML, vCard, blocking, archive preferences, push
registration) and for a registration: the answer comes after the commit.
"""

import asyncio
import time
import secrets
import xml.etree.ElementTree as ET

import pytest

from conftest import DOMAIN, WAIT, Account, RawConn
from smclient import SM, SmClient, chat, local

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]

ROUNDS = int(__import__('os').environ.get('ACK_ROUNDS', '20'))
MESSAGES = 100
NOISE_SENDERS = 3


async def noise(srv, accounts, targets, stop: asyncio.Event) -> None:
    """Other traffic into offline storage, until told to stop (or the
    server dies): each sender sends bursts of 30 messages to offline
    accounts and waits for their acknowledgement, so storage stays busy at
    the pace it can commit (an unpaced flood would only measure a backlog)."""
    senders = []
    for acc in accounts:
        try:
            senders.append(await SmClient(srv, acc, "n").connect(sm=True))
        except Exception:
            return

    async def pace(s: SmClient) -> None:
        sent = 0
        while not stop.is_set() and s.conn is not None and not s.conn.eof:
            burst = "".join(chat(targets[(sent + i) % len(targets)], f"noise {sent + i}")
                            for i in range(30))
            sent += 30
            s.send(burst + f"<r xmlns='{SM}'/>")
            try:
                await s.wait_until(lambda: s.server_h >= sent or stop.is_set(), 30, "noise ack")
            except AssertionError:
                return

    try:
        await asyncio.gather(*(pace(s) for s in senders))
    finally:
        for s in senders:
            s.shutdown()


async def offline_bodies(srv, account, prefix: str, expect: int) -> list[str]:
    """Log `account` in with presence and collect its offline messages
    whose body starts with `prefix`."""
    reader = await SmClient(srv, account, "r").connect(sm=False, presence=True)
    try:
        await reader.wait_until(
            lambda: sum(b.startswith(prefix) for b in reader.bodies()) >= expect,
            10, f"{expect} offline messages")
    except AssertionError:
        pass
    await reader.ping()
    got = [b for b in reader.bodies() if b.startswith(prefix)]
    reader.shutdown()
    return got


async def test_acknowledged_messages_survive_kill9(own_server):
    srv = own_server
    alice_acc = srv.new_account("alice")
    noisy = [srv.new_account(f"noise{i}x") for i in range(NOISE_SENDERS)]
    sinks = [srv.new_account(f"sink{i}x").jid for i in range(3)]
    # One contact for every round: logging in takes its offline messages,
    # and each round's bodies carry the round number.
    bob = srv.new_account("bob")
    lost_total = 0
    for rnd in range(ROUNDS):
        stop = asyncio.Event()
        load = asyncio.ensure_future(noise(srv, noisy, sinks, stop))
        ta = time.monotonic()
        alice = await SmClient(srv, alice_acc, "phone").connect(sm=True)
        await asyncio.sleep(0.05)  # the noise is flowing
        tb = time.monotonic()
        prefix = f"r{rnd}:"
        alice.send("".join(chat(bob.jid, f"{prefix}{i}") for i in range(MESSAGES))
                   + f"<r xmlns='{SM}'/>")
        await alice.wait_until(lambda: alice.server_h >= MESSAGES, 20,
                               f"<a h='{MESSAGES}'/>")
        # The promise is made: kill at once, no grace.
        t0 = time.monotonic()
        print(f"round {rnd}: connect {tb-ta:.2f}s ack {t0-tb:.2f}s", flush=True)
        await asyncio.to_thread(srv.kill9)
        t1 = time.monotonic()
        stop.set()
        alice.shutdown()
        load.cancel()
        try:
            await load
        except (asyncio.CancelledError, Exception):
            pass
        t2 = time.monotonic()
        await asyncio.to_thread(srv.start)
        t3 = time.monotonic()
        got = await offline_bodies(srv, bob, prefix, MESSAGES)
        t4 = time.monotonic()
        print(f"round {rnd}: kill {t1-t0:.2f}s noise {t2-t1:.2f}s start {t3-t2:.2f}s read {t4-t3:.2f}s", flush=True)
        missing = MESSAGES - len(set(got))
        lost_total += missing
        assert missing == 0, (
            f"round {rnd}: {missing} of {MESSAGES} acknowledged messages lost "
            f"after kill -9")
        assert len(got) == MESSAGES, f"round {rnd}: duplicates {len(got) - MESSAGES}"
    assert lost_total == 0


async def iq(client: SmClient, xml: str, iq_id: str, timeout: float = WAIT) -> ET.Element:
    if xml:
        client.send(xml)
    await client.wait_until(
        lambda: any(local(e.tag) == "iq" and e.get("id") == iq_id for e in client.stanzas),
        timeout, f"answer to {iq_id}")
    answer = next(e for e in client.stanzas if local(e.tag) == "iq" and e.get("id") == iq_id)
    assert answer.get("type") == "result", ET.tostring(answer)
    return answer


STORED = [
    # (what, set, get, what the get answer must contain)
    ("roster", "<iq type='set' id='{id}'><query xmlns='jabber:iq:roster'>"
               "<item jid='friend{n}@{d}' name='F{n}'/></query></iq>",
     "<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>",
     "friend{n}@{d}"),
    ("private", "<iq type='set' id='{id}'><query xmlns='jabber:iq:private'>"
                "<note xmlns='x:acks'>kept {n}</note></query></iq>",
     "<iq type='get' id='{id}'><query xmlns='jabber:iq:private'><note xmlns='x:acks'/></query></iq>",
     "kept {n}"),
    ("vcard", "<iq type='set' id='{id}'><vCard xmlns='vcard-temp'><FN>Card {n}</FN></vCard></iq>",
     "<iq type='get' id='{id}'><vCard xmlns='vcard-temp'/></iq>",
     "Card {n}"),
    ("blocking", "<iq type='set' id='{id}'><block xmlns='urn:xmpp:blocking'>"
                 "<item jid='spam{n}@{d}'/></block></iq>",
     "<iq type='get' id='{id}'><blocklist xmlns='urn:xmpp:blocking'/></iq>",
     "spam{n}@{d}"),
    ("mam prefs", "<iq type='set' id='{id}'><prefs xmlns='urn:xmpp:mam:2' default='roster'>"
                  "<always><jid>keep{n}@{d}</jid></always><never/></prefs></iq>",
     "<iq type='get' id='{id}'><prefs xmlns='urn:xmpp:mam:2'/></iq>",
     "keep{n}@{d}"),
    ("push", "<iq type='set' id='{id}'><enable xmlns='urn:xmpp:push:0' jid='push.{d}' "
             "node='node{n}'/></iq>",
     None, None),
]


async def test_stored_iq_results_survive_kill9(own_server):
    """Each of these answers `result` only once the change is committed:
    SIGKILL right after the last result, and every change is still there."""
    srv = own_server
    acc = srv.new_account("keeper")
    for n in range(5):
        c = await SmClient(srv, acc, "desk").connect(sm=False)
        # All at once, then kill as soon as the last result is in.
        # Forty more roster items first keep the storage thread busy.
        extra = "".join(f"<iq type='set' id='x{n}-{i}'><query xmlns='jabber:iq:roster'>"
                        f"<item jid='x{n}-{i}@{DOMAIN}'/></query></iq>" for i in range(40))
        c.send(extra + "".join(set_xml.format(id=f"set-{what}-{n}", n=n, d=DOMAIN)
                               for what, set_xml, _, _ in STORED))
        for what, _, _, _ in STORED:
            await iq(c, "", f"set-{what}-{n}")
        await asyncio.to_thread(srv.kill9)
        c.shutdown()
        await asyncio.to_thread(srv.start)
        c = await SmClient(srv, acc, "desk").connect(sm=False)
        for what, _, get_xml, needle in STORED:
            if get_xml is None:
                continue
            answer = await iq(c, get_xml.format(id=f"get-{what}-{n}"), f"get-{what}-{n}")
            text = ET.tostring(answer, encoding="unicode")
            assert needle.format(n=n, d=DOMAIN) in text, \
                f"round {n}: {what} lost after kill -9: {text}"
        c.shutdown()


async def test_roster_set_acknowledged_then_kill9(own_server):
    """Through XEP-0198 as well: a burst of roster sets, <a h='N'/>, kill -9."""
    srv = own_server
    acc = srv.new_account("ros")
    for rnd in range(5):
        c = await SmClient(srv, acc, "phone").connect(sm=True)
        n = 10
        c.send("".join(
            f"<iq type='set' id='r{rnd}-{i}'><query xmlns='jabber:iq:roster'>"
            f"<item jid='c{rnd}-{i}@{DOMAIN}'/></query></iq>" for i in range(n))
            + f"<r xmlns='{SM}'/>")
        await c.wait_until(lambda: c.server_h >= n, 10, f"<a h='{n}'/>")
        await asyncio.to_thread(srv.kill9)
        c.shutdown()
        await asyncio.to_thread(srv.start)
        c = await SmClient(srv, acc, "phone").connect(sm=False)
        answer = await iq(c, "<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>", "g")
        text = ET.tostring(answer, encoding="unicode")
        missing = [i for i in range(n) if f"c{rnd}-{i}@{DOMAIN}" not in text]
        assert not missing, f"round {rnd}: roster items {missing} lost after kill -9"
        c.shutdown()


async def test_registration_survives_kill9(configured_server):
    """XEP-0077: the result of a registration means the account exists."""
    srv = configured_server
    path = srv.root / "vireo.toml"
    path.write_text("[registration]\nallow_registration = true\n")
    srv.config_path = path
    await asyncio.to_thread(srv.start)
    for n in range(5):
        user = f"reg{n}{secrets.token_hex(3)}"
        password = f"pw-{secrets.token_hex(4)}"
        await asyncio.to_thread(register_raw, srv, user, password)
        await asyncio.to_thread(srv.kill9)
        await asyncio.to_thread(srv.start)
        c = await SmClient(srv, Account(f"{user}@{DOMAIN}", password), "x").connect(sm=False)
        c.shutdown()


def register_raw(srv, user: str, password: str) -> None:
    """In-band registration over direct TLS with raw bytes; returns once
    the server answered `result`."""
    conn = RawConn(srv.c2s_tls_port, tls=True)
    try:
        features = conn.open_stream()
        assert "jabber.org/features/iq-register" in features.text, features.describe()
        conn.send(f"<iq type='set' id='reg'><query xmlns='jabber:iq:register'>"
                  f"<username>{user}</username><password>{password}</password></query></iq>")
        assert conn.read_until(lambda b: b"id='reg'" in b or b'id="reg"' in b, 10), \
            conn.result().describe()
        answer = [e for e in conn.result().elements if e.get("id") == "reg"]
        assert answer and answer[0].get("type") == "result", conn.result().describe()
    finally:
        conn.close()
