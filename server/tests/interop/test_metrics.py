"""/metrics (issue 14): the Prometheus project's own parser reads what
Vireo serves, the values move when traffic flows, and an address not
allowed gets 403."""

from __future__ import annotations

import asyncio
import socket

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families


def get(server, path: str, source: str = "127.0.0.1") -> tuple[int, str]:
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10,
                                 source_address=(source, 0))
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def received(values, source: str, kind: str) -> float:
    key = ("vireo_stanzas_received_total", (("kind", kind), ("source", source)))
    return values.get(key, 0.0)


@pytest.mark.asyncio
async def test_metrics_parse_and_move_with_traffic(server, xmpp):
    status, text = get(server, "/metrics")
    assert status == 200, text
    before = samples(text)
    assert before[("vireo_process_resident_memory_bytes", ())] > 1_000_000
    assert before[("vireo_process_open_fds", ())] > 0
    a, b = server.new_account("ma"), server.new_account("mb")
    ca = await xmpp.online(server, a, name="metrics-a")
    cb = await xmpp.online(server, b, name="metrics-b")
    for i in range(5):
        ca.send_chat(b.jid, f"m{i}")
    for i in range(5):
        await cb.wait_message(body=f"m{i}")
    _, text = get(server, "/metrics")
    after = samples(text)
    assert received(after, "c2s", "message") - received(before, "c2s", "message") >= 5
    assert received(after, "c2s", "presence") >= 2
    assert after[("vireo_connections", ())] >= 2


def test_metrics_only_for_allowed_addresses(server):
    status, _ = get(server, "/metrics", source="127.0.0.2")
    assert status == 403
    status, _ = get(server, "/health", source="127.0.0.2")
    assert status == 200


@pytest.mark.asyncio
async def test_metrics_count_logins_sessions_and_store_calls(server, xmpp):
    """Authentications by mechanism and outcome, sessions by transport,
    hibernated sessions and the store's latency histogram."""
    _, text = get(server, "/metrics")
    before = samples(text)
    acc = server.new_account("mauth")
    c = await xmpp.online(server, acc, name="metrics-auth")
    bad = xmpp.client(server, acc.jid, "wrong-password", name="metrics-bad")
    assert await bad.try_connect() != "session"
    _, text = get(server, "/metrics")
    after = samples(text)

    def auth(values, outcome):
        return sum(v for (name, labels), v in values.items()
                   if name == "vireo_auth_attempts_total" and ("outcome", outcome) in labels)

    assert auth(after, "success") > auth(before, "success")
    assert auth(after, "failure") > auth(before, "failure")
    assert any(name == "vireo_auth_attempts_total" and ("mechanism", "SCRAM-SHA-256") in labels
               for (name, labels) in after), "labelled by mechanism"
    assert after[("vireo_sessions", (("transport", "tcp"),))] >= 1
    assert ("vireo_hibernated_sessions", ()) in after
    assert ("vireo_hub_queued_bytes", ()) in after
    assert after[("vireo_storage_call_seconds_count", ())] > before.get(
        ("vireo_storage_call_seconds_count", ()), 0)
    await c.close()


def test_health_reports_its_checks(server):
    status, text = get(server, "/health")
    assert status == 200, text
    assert '"checks":{"storage":"ok","listeners":"ok"}' in text, text
    assert '"ready":true' in text


@pytest.mark.asyncio
async def test_metrics_count_stored_messages(server, xmpp):
    """Offline and archived messages, from the store's own counts."""
    sender, away = server.new_account("msend"), server.new_account("maway")
    c = await xmpp.online(server, sender, name="metrics-sender")
    _, text = get(server, "/metrics")
    before = samples(text)
    for i in range(3):
        c.send_chat(away.jid, f"while away {i}")
    await c.sync()
    # Stored by the group commit shortly after: poll the scrape.
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        _, text = get(server, "/metrics")
        after = samples(text)
        stored = after[("vireo_offline_messages", ())] - before[("vireo_offline_messages", ())]
        if stored >= 3 or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert stored >= 3, stored
    assert after[("vireo_archive_entries", ())] >= before[("vireo_archive_entries", ())] + 3
    await c.close()
