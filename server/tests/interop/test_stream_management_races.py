"""XEP-0198 hand-overs under pressure: what happens to a session's stanzas
when its end, its resumption and the traffic for it race each other.

Every test counts messages end to end with the raw client of smclient.py
(which knows exactly what it handled): nothing may be lost, and what the
client acknowledged must not come back.
"""

import asyncio

import pytest

from conftest import WAIT
from smclient import SmClient, chat

pytestmark = pytest.mark.asyncio


def sm_server(srv, resume_timeout: int, extra: str = ""):
    cfg = srv.root / "vireo.toml"
    cfg.write_text(f"[stream]\nsmacks_resume_timeout = {resume_timeout}\n{extra}")
    srv.config_path = cfg
    srv.start()
    return srv


async def flood(sender: SmClient, to: str, prefix: str, n: int, per_tick: int = 50) -> None:
    """Send `n` numbered messages, `per_tick` at a time, yielding in between
    so the server sees a steady stream rather than one burst."""
    for i in range(0, n, per_tick):
        for k in range(i, min(n, i + per_tick)):
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
    """A hibernated session ends (its resume timeout fires, or its queue
    outgrows smacks_max_queue_size) while messages for it keep arriving:
    those queued in the session, those waiting in its connection's mailbox,
    and those the hub hands over while the connection ends must all reach
    offline storage."""
    limit = "100000" if end == "timeout" else "200"
    srv = sm_server(configured_server, 1, f"smacks_max_queue_size = {limit}\n")
    alice_acc, bob_acc = srv.new_account("race"), srv.new_account("flood")
    alice = await SmClient(srv, alice_acc, "phone").connect()
    bob = await SmClient(srv, bob_acc, "pc").connect(sm=False)
    alice.abort()
    await asyncio.sleep(0.3)
    n = 3000
    # ~1.2 s of traffic around the 1 s deadline (or past the queue limit).
    await flood(bob, alice.jid, "m", n, per_tick=25)
    await bob.ping(timeout=20)
    await asyncio.sleep(1.5)
    got = await offline_bodies(srv, alice_acc, "m", n)
    missing = sorted(set(range(n)) - {int(b[1:]) for b in got})
    assert not missing, f"{len(missing)} of {n} messages lost, first {missing[:10]}"


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
