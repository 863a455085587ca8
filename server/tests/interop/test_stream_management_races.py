"""XEP-0198 hand-overs under pressure: what happens to a session's stanzas
when its end, its resumption and the traffic for it race each other.

Every test counts messages end to end with the raw client of smclient.py
(which knows exactly what it handled): nothing may be lost, and what the
client acknowledged must not come back.
"""

import asyncio

import pytest

from conftest import WAIT
from smclient import (REGISTRY_LOG, SM, SmClient, StreamClosed, chat, resumable_sessions,
                      wait_no_resumable_sessions)

STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def log_registry(monkeypatch):
    """Every test here checks that ended sessions leave no SM-ID behind."""
    monkeypatch.setenv("VIREO_TEST_LOG", REGISTRY_LOG)


def sm_server(srv, resume_timeout: int, extra: str = ""):
    cfg = srv.root / "vireo.toml"
    cfg.write_text(f"[stream]\nsmacks_resume_timeout = {resume_timeout}\n{extra}")
    srv.config_path = cfg
    srv.start()
    return srv


async def flood(sender: SmClient, targets: list[str], prefix: str, n: int,
                per_tick: int = 25) -> None:
    """Send `n` numbered messages to each target, `per_tick` each at a time,
    yielding in between so the server sees a steady stream rather than one
    burst."""
    for i in range(0, n, per_tick):
        for k in range(i, min(n, i + per_tick)):
            for to in targets:
                sender.send(chat(to, f"{prefix}{k}"))
        await asyncio.sleep(0.01)


async def offline_bodies(srv, account, prefix: str, expected: int) -> list[str]:
    """Log in afresh (no SM) with initial presence; what offline storage
    (and nothing else) delivers with `prefix`."""
    again = SmClient(srv, account, "again")
    await again.connect(sm=False, presence=True)
    try:
        def got():
            return [b for b in again.bodies() if b.startswith(prefix)]
        try:
            await again.wait_until(lambda: len(set(got())) >= expected, 10.0,
                                   f"{expected} offline messages")
        except AssertionError:
            pass
        await asyncio.sleep(0.5)
        return got()
    finally:
        again.shutdown()


@pytest.mark.parametrize("end", ["timeout", "max_queue"])
async def test_messages_racing_the_session_end_go_offline(configured_server, end):
    """Hibernated sessions end (their resume timeout fires, or their queue
    outgrows smacks_max_queue_size) while messages for them keep arriving:
    those queued in a session, those waiting in its connection's mailbox,
    and those the hub hands over while the connection ends must all reach
    offline storage. Four sessions ending at staggered moments give the
    race four chances."""
    limit = "100000" if end == "timeout" else "200"
    # Beyond the offline quota senders are told resource-constraint; this
    # test is about the race, so the quota stays out of the way.
    srv = sm_server(configured_server, 1, f"smacks_max_queue_size = {limit}\n"
                    "[services]\nmax_offline_messages = 10000\n")
    victims = [await SmClient(srv, srv.new_account(f"race{i}x"), "phone").connect()
               for i in range(4)]
    bob = await SmClient(srv, srv.new_account("flood"), "pc").connect(sm=False)
    for v in victims:
        v.abort()
        await asyncio.sleep(0.1)
    n = 1500
    # ~1 s of traffic across the deadlines (or past the queue limit).
    await flood(bob, [v.jid for v in victims], "m", n, per_tick=15)
    await bob.ping(timeout=20)
    await asyncio.sleep(1.5)
    for v in victims:
        got = await offline_bodies(srv, v.account, "m", n)
        missing = sorted(set(range(n)) - {int(b[1:]) for b in got})
        assert not missing, f"{v.name}: {len(missing)} of {n} lost, first {missing[:10]}"
    await wait_no_resumable_sessions(srv)


async def test_resume_while_the_old_connection_is_stuck_writing(configured_server):
    """The old connection is half-open and its socket buffers are full, so
    the server's write to it blocks. A resume from a new connection must not
    wait for that write (nor fail after a hand-over timeout): it takes the
    session at once, and every message arrives exactly once, in order."""
    srv = sm_server(configured_server, 60, "smacks_max_queue_size = 1000\n")
    alice_acc, bob_acc = srv.new_account("stuck"), srv.new_account("big")
    alice = SmClient(srv, alice_acc, "phone")
    alice.rcvbuf = 4096
    await alice.connect()
    bob = await SmClient(srv, bob_acc, "pc").connect(sm=False)
    bob.send(chat(alice.jid, "first"))
    await alice.wait_until(lambda: "first" in alice.bodies(), what="first message")
    alice.ack()

    alice.stop_reading()
    n, pad = 400, "x" * 10_000
    for i in range(n):
        bob.send(chat(alice.jid, f"big{i} {pad}"))
    await bob.ping(timeout=20)
    await asyncio.sleep(1.0)  # the server is now blocked writing to alice

    alice.rcvbuf = None
    loop = asyncio.get_running_loop()
    started = loop.time()
    _, answer = await alice.resume(timeout=15)
    took = loop.time() - started
    assert answer.tag.endswith("}resumed"), f"resume refused: {answer.tag} {answer.attrib}"
    assert took < 3, f"the resume waited {took:.1f}s for the stuck connection"
    want = ["first"] + [f"big{i}" for i in range(n)]
    await alice.wait_until(lambda: len(alice.bodies()) >= len(want), 10, f"{n} messages")
    await asyncio.sleep(0.5)
    got = [b.split(" ", 1)[0] for b in alice.bodies()]
    assert got == want, f"got {len(got)} messages; first difference at " \
        f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), len(want))}"
    await alice.close()
    await wait_no_resumable_sessions(srv)


async def test_resume_again_from_a_third_connection_then_end_cleanly(configured_server):
    """A phone resumes, then resumes again from a third connection while the
    second still looks alive; the second is told <conflict/>. After a clean
    close the SM-ID is gone: resuming it fails with <item-not-found/>, and
    the server keeps no resumable session."""
    srv = sm_server(configured_server, 60)
    alice_acc, bob_acc = srv.new_account("chain"), srv.new_account("chainbob")
    alice = await SmClient(srv, alice_acc, "phone").connect()
    bob = await SmClient(srv, bob_acc, "pc").connect(sm=False)
    assert resumable_sessions(srv) == 1

    async def say(body):
        bob.send(chat(alice.jid, body))
        await alice.wait_until(lambda: body in alice.bodies(), what=body)

    await say("one")
    alice.abort()
    bob.send(chat(alice.jid, "two"))
    await bob.ping()
    _, answer = await alice.resume()
    assert answer.tag == f"{{{SM}}}resumed", answer.tag
    await alice.wait_until(lambda: "two" in alice.bodies(), what="two")
    await say("three")

    second = alice.conn
    _, answer = await alice.resume(abort_old=False)
    assert answer.tag == f"{{{SM}}}resumed", answer.tag
    await alice.wait_until(lambda: second.eof, what="end of the second connection")
    assert second.stream_error == "conflict", second.stream_error
    await say("four")
    await asyncio.sleep(0.3)
    assert alice.bodies() == ["one", "two", "three", "four"], alice.bodies()

    await alice.close()
    conn, answer = await alice.resume()
    assert answer.tag == f"{{{SM}}}failed", answer.tag
    assert answer.find(f"{{{STANZAS_NS}}}item-not-found") is not None
    conn.writer.transport.abort()
    await wait_no_resumable_sessions(srv)


async def test_two_resumes_of_one_session_at_once(configured_server):
    """Two connections resume the same SM-ID at the same moment (a phone
    retrying on two networks). Both get an answer at once, one connection
    ends up holding the session, the other is refused or told <conflict/>,
    and messages reach the holder exactly once."""
    srv = sm_server(configured_server, 60)
    alice_acc, bob_acc = srv.new_account("twin"), srv.new_account("twinbob")
    alice = await SmClient(srv, alice_acc, "phone", name="first").connect()
    bob = await SmClient(srv, bob_acc, "pc").connect(sm=False)
    bob.send(chat(alice.jid, "before"))
    await alice.wait_until(lambda: "before" in alice.bodies(), what="before")
    alice.ack()
    alice.abort()
    bob.send(chat(alice.jid, "while cut"))
    await bob.ping()

    twin = alice.twin("second")
    c1, c2 = await asyncio.gather(alice.login(), twin.login())
    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await asyncio.gather(alice.resume(conn=c1, timeout=3),
                                   twin.resume(conn=c2, timeout=3), return_exceptions=True)
    assert loop.time() - started < 3, "a resume waited for the other"
    for a in answers:
        assert not isinstance(a, BaseException) or isinstance(a, StreamClosed), repr(a)
    resumed = [c for c, a in zip((alice, twin), answers)
               if not isinstance(a, BaseException) and a[1].tag == f"{{{SM}}}resumed"]
    assert resumed, f"neither resume succeeded: {answers}"
    await asyncio.sleep(0.5)
    holders = [c for c in resumed if not c.conn.eof]
    assert len(holders) == 1, [(c.name, c.conn.eof, c.conn.stream_error) for c in resumed]
    [holder] = holders
    for c in resumed:
        if c is not holder:
            assert c.conn.stream_error == "conflict", c.conn.stream_error
    bob.send(chat(alice.jid, "after"))
    await holder.wait_until(lambda: "after" in holder.bodies(), what="after")
    await asyncio.sleep(0.3)
    assert holder.bodies().count("after") == 1
    # The first to resume may have acknowledged the replay before the
    # second took over; between them the phone saw it, and nothing it had
    # acknowledged before the cut came back.
    both = alice.bodies() + twin.bodies()
    assert "while cut" in both, both
    assert both.count("before") == 1, "an acknowledged message was replayed"
    await holder.close()
    await wait_no_resumable_sessions(srv)


async def test_shutdown_puts_queued_messages_into_offline_storage(configured_server):
    """SIGTERM while sessions hibernate with queued messages and others are
    connected but never acknowledge: after the restart, every one of those
    messages is in offline storage (each account has to be loaded again
    once its session ended, and shutdown must wait for that)."""
    srv = sm_server(configured_server, 300)
    phones = [await SmClient(srv, srv.new_account(f"sleep{i}x"), "phone").connect()
              for i in range(8)]
    bob = await SmClient(srv, srv.new_account("talk"), "pc").connect(sm=False)
    for i, p in enumerate(phones):
        if i % 2:
            p.stop_reading()  # connected, deaf
        else:
            p.abort()  # hibernated
    await asyncio.sleep(0.2)
    n = 20
    for k in range(n):
        for p in phones:
            bob.send(chat(p.jid, f"a{k}"))
    await bob.ping()
    await asyncio.sleep(0.3)
    srv.restart()
    for p in phones:
        got = await offline_bodies(srv, p.account, "a", n)
        missing = sorted(set(range(n)) - {int(b[1:]) for b in got})
        assert not missing, f"{p.name}: {len(missing)} of {n} lost at shutdown: {missing[:10]}"


async def test_deleted_account_with_a_hibernated_session(configured_server):
    """`vireo deluser` while the account's session hibernates with queued
    messages: the session ends, the senders get errors instead of silence,
    the SM-ID is gone, and an account created again under the same name
    inherits nothing."""
    srv = sm_server(configured_server, 300)
    alice_acc, bob_acc = srv.new_account("doomed"), srv.new_account("witness")
    alice = await SmClient(srv, alice_acc, "phone").connect()
    bob = await SmClient(srv, bob_acc, "pc").connect(sm=False)
    alice.abort()
    await asyncio.sleep(0.2)
    for i in range(5):
        bob.send(chat(alice.jid, f"secret{i}"))
    await bob.ping()
    await asyncio.sleep(0.3)
    res = srv.cli("deluser", alice_acc.jid)
    assert res.returncode == 0, res.stderr

    def errors():
        return [e for e in bob.stanzas if e.get("type") == "error"
                and (e.findtext("{jabber:client}body") or "").startswith("secret")]
    await bob.wait_until(lambda: len(errors()) >= 5, what="5 bounces")
    await wait_no_resumable_sessions(srv)

    user = alice_acc.jid.split("@", 1)[0]
    reborn = type(alice_acc)(srv.adduser(user, "new password"), "new password")
    got = await offline_bodies(srv, reborn, "secret", 0)
    assert not got, f"the new account inherited {got}"


async def test_resume_as_the_resume_timeout_fires(configured_server):
    """Resumes that arrive just before or just after the session's
    resume timeout: each is answered at once (no hand-over timeout), and
    every message ends up either replayed on the resumed stream or in
    offline storage."""
    srv = sm_server(configured_server, 1)
    n = 8
    phones = [await SmClient(srv, srv.new_account(f"edge{i}x"), "phone").connect()
              for i in range(n)]
    bob = await SmClient(srv, srv.new_account("edgebob"), "pc").connect(sm=False)
    logins = await asyncio.gather(*(p.login() for p in phones))
    loop = asyncio.get_running_loop()
    cut = loop.time()
    for p in phones:
        p.abort()
    for p in phones:
        for k in range(5):
            bob.send(chat(p.jid, f"e{k}"))
    await bob.ping()

    async def resume_at(p, conn, offset):
        await asyncio.sleep(max(0.0, cut + 1.0 + offset - loop.time()))
        started = loop.time()
        try:
            _, answer = await p.resume(conn=conn, timeout=8)
        except StreamClosed:
            answer = None
        return answer, loop.time() - started

    results = await asyncio.gather(*(resume_at(p, c, -0.08 + 0.02 * i)
                                     for i, (p, c) in enumerate(zip(phones, logins))))
    outcomes = []
    for p, (answer, took) in zip(phones, results):
        assert took < 2, f"{p.name}: the answer to <resume/> took {took:.1f}s"
        resumed = answer is not None and answer.tag == f"{{{SM}}}resumed"
        outcomes.append(resumed)
        if resumed:
            await p.wait_until(lambda p=p: len(p.bodies()) >= 5, what="the replay")
            assert p.bodies() == [f"e{k}" for k in range(5)], p.bodies()
            await p.close()
    await asyncio.sleep(0.5)
    for p, resumed in zip(phones, outcomes):
        if not resumed:
            got = await offline_bodies(srv, p.account, "e", 5)
            assert set(got) >= {f"e{k}" for k in range(5)}, f"{p.name}: only {sorted(got)}"
    print(f"resumed: {sum(outcomes)} of {n}")
    await wait_no_resumable_sessions(srv)


async def test_resume_during_shutdown_loses_nothing(configured_server):
    """SIGTERM while phones are resuming: whether a resume wins or the
    shutdown does, every queued message is either received on the resumed
    stream or in offline storage after the restart."""
    srv = sm_server(configured_server, 300)
    n = 6
    phones = [await SmClient(srv, srv.new_account(f"term{i}x"), "phone").connect()
              for i in range(n)]
    bob = await SmClient(srv, srv.new_account("termbob"), "pc").connect(sm=False)
    logins = await asyncio.gather(*(p.login() for p in phones))
    for p in phones:
        p.abort()
    for p in phones:
        for k in range(10):
            bob.send(chat(p.jid, f"t{k}"))
    await bob.ping()
    await asyncio.sleep(0.2)

    async def resume(p, conn, delay):
        await asyncio.sleep(delay)
        try:
            await p.resume(conn=conn, timeout=8)
        except (StreamClosed, asyncio.TimeoutError):
            pass
        if p.conn is not None:  # resumed: read until the server goes away
            await p.wait_until(lambda p=p: p.conn.eof, 10, "the end of the stream")

    resuming = asyncio.gather(*(resume(p, c, 0.004 * i) for i, (p, c) in enumerate(zip(phones, logins))))
    await asyncio.sleep(0.01)
    await asyncio.get_running_loop().run_in_executor(None, srv.stop)
    await resuming
    srv.start()
    want = {f"t{k}" for k in range(10)}
    for p in phones:
        live = set(p.bodies()) & want
        got = live | set(await offline_bodies(srv, p.account, "t", len(want - live)))
        missing = want - got
        assert not missing, f"{p.name}: lost {sorted(missing)}"


async def wait_hibernations(srv, account: str, n: int, timeout: float = WAIT) -> None:
    """Wait (bounded) until the hub has logged `n` hibernations of `account`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        log = srv.log_path.read_text(errors="replace")
        seen = sum(1 for line in log.splitlines()
                   if "session hibernated" in line and f"account={account}" in line)
        if seen >= n:
            return
        assert loop.time() < deadline, f"{seen} of {n} hibernations of {account} logged"
        await asyncio.sleep(0.02)


async def test_one_account_cannot_hoard_hibernated_sessions(configured_server):
    """Each hibernated session holds a connection slot and its queue for the
    whole resume timeout without any socket on the client's side. One
    account opening and dropping sessions in a loop keeps only the newest
    ten (as Prosody's smacks_max_hibernated_sessions): older ones end, and
    what was queued for them goes to offline storage."""
    srv = sm_server(configured_server, 300)
    acc = srv.new_account("hoard")
    bob = await SmClient(srv, srv.new_account("hoardbob"), "pc").connect(sm=False)
    phones = []
    for i in range(12):
        p = await SmClient(srv, acc, f"r{i}").connect()
        p.abort()
        phones.append(p)
        # The server must have seen this one hibernate before the next
        # login, or "the oldest hibernated session" is not r0 yet.
        await wait_hibernations(srv, acc.jid, i + 1)
        if i == 0:
            await asyncio.sleep(0.2)
            bob.send(chat(p.jid, "for the oldest"))
            await bob.ping()
    await asyncio.sleep(0.5)
    assert resumable_sessions(srv) == 10, resumable_sessions(srv)
    for p in phones[:2]:
        conn, answer = await p.resume()
        assert answer.tag == f"{{{SM}}}failed", f"{p.name} still resumable"
        conn.writer.transport.abort()
    _, answer = await phones[-1].resume()
    assert answer.tag == f"{{{SM}}}resumed", answer.tag
    assert await offline_bodies(srv, acc, "for the oldest", 1) == ["for the oldest"]


async def test_half_open_session_that_never_returns_goes_offline(configured_server):
    """A phone vanishes without a trace (no FIN, no RST: its socket just
    stops reading) while messages keep coming. Once the server's writes
    make no progress for `stream.send_timeout`, the connection counts as
    broken: the session hibernates, nobody resumes it, and every message,
    also those the phone's kernel had buffered but the phone never
    acknowledged, is in offline storage. Without the send timeout the
    connection task would block in the write until TCP gives up (never,
    while the peer's kernel answers window probes)."""
    srv = sm_server(configured_server, 1, "send_timeout = 2\nsmacks_max_queue_size = 1000\n")
    alice_acc, bob_acc = srv.new_account("ghost"), srv.new_account("ghostbob")
    alice = SmClient(srv, alice_acc, "phone")
    alice.rcvbuf = 4096
    await alice.connect()
    bob = await SmClient(srv, bob_acc, "pc").connect(sm=False)
    alice.stop_reading()
    n, pad = 400, "x" * 10_000
    for i in range(n):
        bob.send(chat(alice.jid, f"big{i} {pad}"))
    await bob.ping(timeout=20)
    await asyncio.sleep(2 + 1 + 1.5)  # send timeout, resume timeout, margin
    got = await offline_bodies(srv, alice_acc, "big", n)
    missing = sorted(set(range(n)) - {int(b[3:].split(" ", 1)[0]) for b in got})
    assert not missing, f"{len(missing)} of {n} not in offline storage, first {missing[:10]}"
    await wait_no_resumable_sessions(srv)
    alice.shutdown()
