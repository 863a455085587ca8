"""Hostile input on the HTTP listener (issue 14): slow heads, huge heads
and bodies, pipelined floods, ambiguous paths, and what they cost the
server in memory (RSS from /proc). Requests are raw sockets: nothing a
browser would send, everything an attacker might."""

from __future__ import annotations

import socket
import time

import pytest

from conftest import ConfiguredVireoServer, rss_kib


@pytest.fixture
def http_server(request, tmp_path):
    """Vireo with a 2 s request timeout and 8 connections per address."""
    config = tmp_path / "vireo.toml"
    config.write_text(
        "[interfaces]\n"
        "http_request_timeout = 2\n"
        "http_max_per_address = 8\n")
    srv = ConfiguredVireoServer(request.node.name, config)
    request.node.log_sources = [srv]
    srv.start()
    yield srv
    srv.cleanup()


def connect(srv, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.http_port), timeout=10,
                                    source_address=(source, 0))


def read_all(s: socket.socket, timeout: float = 10.0) -> bytes:
    s.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError, ConnectionResetError):
            return out
        if not chunk:
            return out
        out += chunk


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def test_slow_heads_time_out_and_cost_little(http_server):
    """Slow-loris: 160 connections from 20 addresses trickle their heads;
    each gets 408 when the request timeout passes, and holding them costs
    the server little memory."""
    before = rss_kib(http_server)
    socks = []
    try:
        for a in range(20):
            for _ in range(8):
                s = connect(http_server, f"127.0.2.{a + 1}")
                s.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
                socks.append(s)
        during = rss_kib(http_server)
        per_conn = (during - before) / len(socks)
        print(f"\n{len(socks)} slow HTTP heads: RSS {before} -> {during} KiB, "
              f"{per_conn:.1f} KiB per connection")
        assert per_conn < 32, f"{per_conn:.1f} KiB per slow connection"
        started = time.monotonic()
        answers = [read_all(s) for s in socks]
        assert all(status_of(r) == 408 for r in answers), answers[:3]
        assert time.monotonic() - started < 8
    finally:
        for s in socks:
            s.close()


def test_a_huge_head_is_refused_at_its_budget(http_server):
    s = connect(http_server)
    before = rss_kib(http_server)
    try:
        try:
            s.sendall(b"GET /health HTTP/1.1\r\n" + b"X-Fill: " + b"a" * (4 << 20) + b"\r\n\r\n")
        except OSError:
            pass  # refused while still sending
        assert status_of(read_all(s)) == 431
    finally:
        s.close()
    grew = rss_kib(http_server) - before
    assert grew < 2048, f"a refused 4 MiB head grew the server by {grew} KiB"


def test_a_huge_body_is_refused_before_it_is_read(http_server):
    s = connect(http_server)
    try:
        s.sendall(b"POST /health HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n")
        assert status_of(read_all(s)) == 413
    finally:
        s.close()


def test_request_smuggling_shapes_are_refused(http_server):
    for raw in [
        b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
    ]:
        s = connect(http_server)
        try:
            s.sendall(raw)
            assert status_of(read_all(s)) in (400, 411, 505), raw
        finally:
            s.close()


@pytest.mark.parametrize("path", [
    "/health/../api", "/%2e%2e/health", "/health/%2E%2E/", "//health", "/health;x=1",
    "/health%2f..", "/health\\..", "/health/%00", "/%c0%ae%c0%ae/health",
])
def test_ambiguous_paths_never_reach_an_endpoint(http_server, path):
    s = connect(http_server)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        assert status_of(read_all(s)) == 400, path
    finally:
        s.close()


def test_a_pipelined_flood_is_answered_in_order(http_server):
    """500 requests in one write: answered one at a time, in order, on one
    kept-alive connection; the server buffers one request ahead only."""
    s = connect(http_server)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\n" * 499
                  + b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
        out = read_all(s, timeout=20)
        assert out.count(b"HTTP/1.1 200 OK") == 499, out[-300:]
        assert out.rstrip().endswith(b"not found"), out[-300:]
    finally:
        s.close()


def test_one_address_holds_at_most_its_share(http_server):
    held = [connect(http_server) for _ in range(8)]
    try:
        time.sleep(0.2)
        extra = connect(http_server)
        try:
            extra.sendall(b"GET /health HTTP/1.1\r\n\r\n")
            assert read_all(extra, timeout=5) == b"", "a ninth connection is closed unanswered"
        except OSError:
            pass
        finally:
            extra.close()
        other = connect(http_server, "127.0.0.3")
        try:
            other.sendall(b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert status_of(read_all(other)) == 200
        finally:
            other.close()
    finally:
        for s in held:
            s.close()
