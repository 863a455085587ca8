"""XEP-0198 under churn: many phones on bad networks at once.

Receivers with resumable stream management get a steady stream of
numbered messages from senders while their TCP connections are cut (or
silently replaced by a new connection that resumes) at random moments.
The raw client of smclient.py counts exactly what it handled and resumes
with that count, so the check is strict: every receiver ends up with every
message exactly once, in the order each sender sent them.

In the second test some receivers vanish for good: their sessions time
out and what they had not acknowledged, plus everything sent afterwards,
must be waiting in offline storage at their next login; what they had
acknowledged must not come back.
"""

import asyncio
import random
import re
from collections import defaultdict

import pytest

from conftest import WAIT
from smclient import REGISTRY_LOG, SM, SmClient, chat, wait_no_resumable_sessions

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

RECEIVERS = 20
SENDERS = 2
ROUNDS = 60  # messages from each sender to each receiver
TICK = 0.08  # seconds between a sender's rounds
BODY = re.compile(r"^s(\d+):(\d+)$")


def start(srv, resume_timeout: int) -> None:
    cfg = srv.root / "vireo.toml"
    cfg.write_text(f"[stream]\nsmacks_resume_timeout = {resume_timeout}\n"
                   "smacks_max_queue_size = 5000\n")
    srv.config_path = cfg
    srv.start()


async def online(srv, n: int, prefix: str, sm: bool) -> list[SmClient]:
    accounts = [srv.new_account(f"{prefix}{i}x") for i in range(n)]
    return list(await asyncio.gather(
        *(SmClient(srv, a, "phone", name=f"{prefix}{i}").connect(sm=sm)
          for i, a in enumerate(accounts))))


async def send_rounds(sender: SmClient, index: int, receivers: list[SmClient]) -> None:
    for k in range(ROUNDS):
        for r in receivers:
            sender.send(chat(r.jid, f"s{index}:{k}"))
        await asyncio.sleep(TICK)
    await sender.ping(timeout=20)


def per_sender(bodies: list[str]) -> dict[int, list[int]]:
    seqs = defaultdict(list)
    for b in bodies:
        m = BODY.match(b)
        if m:
            seqs[int(m.group(1))].append(int(m.group(2)))
    return seqs


async def churn(client: SmClient, rng: random.Random, stop: asyncio.Event,
                resumes: list[int]) -> None:
    """Cut or replace the client's connection at random until `stop`, then
    make sure it is connected again."""
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        if rng.random() < 0.7:
            client.abort()  # the network dies...
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            _, answer = await client.resume(timeout=10)
        else:
            # ...or the phone switched networks and the old socket lingers.
            _, answer = await client.resume(abort_old=False, timeout=10)
        assert answer.tag == f"{{{SM}}}resumed", \
            f"{client.name}: resume refused: {answer.tag} {[c.tag for c in answer]}"
        resumes.append(1)


async def test_receivers_cut_at_random_get_every_message_once_in_order(
        configured_server, monkeypatch):
    monkeypatch.setenv("VIREO_TEST_LOG", REGISTRY_LOG)
    srv = configured_server
    start(srv, 300)
    rng = random.Random(0x198)
    receivers = await online(srv, RECEIVERS, "rcv", sm=True)
    senders = await online(srv, SENDERS, "snd", sm=False)
    stop = asyncio.Event()
    resumes: list[int] = []
    churners = [asyncio.ensure_future(churn(r, rng, stop, resumes)) for r in receivers]
    try:
        await asyncio.gather(*(send_rounds(s, i, receivers) for i, s in enumerate(senders)))
    finally:
        stop.set()
    await asyncio.gather(*churners)

    want = {i: list(range(ROUNDS)) for i in range(SENDERS)}

    def complete(r):
        return sum(len(v) for v in per_sender(r.bodies()).values()) >= SENDERS * ROUNDS
    for r in receivers:
        r.ack()
        await r.wait_until(lambda r=r: complete(r), 15, f"all {SENDERS * ROUNDS} messages")
    await asyncio.sleep(0.5)
    for r in receivers:
        got = dict(per_sender(r.bodies()))
        assert got == want, f"{r.name}: " + "; ".join(
            f"s{i}: {len(got.get(i, []))} messages, first bad index "
            f"{next((j for j, (a, b) in enumerate(zip(got.get(i, []), w)) if a != b), '-')}"
            for i, w in want.items())
    assert len(resumes) >= RECEIVERS * 5, f"only {len(resumes)} resumes happened"
    print(f"{len(resumes)} resumes, {RECEIVERS * SENDERS * ROUNDS} messages")
    await asyncio.gather(*(r.close() for r in receivers))
    await wait_no_resumable_sessions(srv)


async def test_receivers_that_never_come_back_find_everything_offline(
        configured_server, monkeypatch):
    monkeypatch.setenv("VIREO_TEST_LOG", REGISTRY_LOG)
    srv = configured_server
    start(srv, 2)
    rng = random.Random(0x357)
    receivers = await online(srv, 10, "van", sm=True)
    senders = await online(srv, SENDERS, "src", sm=False)
    vanishing, staying = receivers[::2], receivers[1::2]

    async def vanish(r):
        await asyncio.sleep(rng.uniform(0.2, ROUNDS * TICK * 0.6))
        r.abort()

    stop = asyncio.Event()
    resumes: list[int] = []
    tasks = [asyncio.ensure_future(vanish(r)) for r in vanishing]
    tasks += [asyncio.ensure_future(churn(r, rng, stop, resumes)) for r in staying]
    try:
        await asyncio.gather(*(send_rounds(s, i, receivers) for i, s in enumerate(senders)))
    finally:
        stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(3)  # every vanished session has timed out

    for r in staying:
        await r.wait_until(
            lambda r=r: sum(len(v) for v in per_sender(r.bodies()).values()) >= SENDERS * ROUNDS,
            15, "all messages")
        assert dict(per_sender(r.bodies())) == {i: list(range(ROUNDS)) for i in range(SENDERS)}

    for r in vanishing:
        handled = r.bodies()
        acked = [el.findtext("{jabber:client}body") or "" for el in r.stanzas[:r.acked]]
        again = SmClient(srv, r.account, "again", name=f"{r.name}-again")
        await again.connect(sm=False, presence=True)
        try:
            def seen():
                return per_sender(handled + again.bodies())
            await again.wait_until(
                lambda: all(set(seen().get(i, [])) >= set(range(ROUNDS))
                            for i in range(SENDERS)),
                15, "every message, live or offline")
        except AssertionError:
            pass
        finally:
            await asyncio.sleep(0.3)
            again.shutdown()
        for i in range(SENDERS):
            missing = sorted(set(range(ROUNDS)) - set(seen().get(i, [])))
            assert not missing, f"{r.name}: from s{i} lost {missing}"
        back = set(acked) & set(again.bodies())
        assert not back, f"{r.name}: acknowledged messages came back: {sorted(back)[:5]}"
    await asyncio.gather(*(r.close() for r in staying))
    await wait_no_resumable_sessions(srv, WAIT)
