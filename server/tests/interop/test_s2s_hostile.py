"""Hostile input on the s2s port (issue 13): what one address can hold
(connections, verifications, bytes), what an unauthenticated peer may do
and for how long, and what many idle TLS peers cost in server memory. The
attacker is a raw socket speaking just enough of RFC 6120 / XEP-0220;
loopback's 127.0.0.0/8 gives it as many source addresses as it likes."""

from __future__ import annotations

import re
import socket
import ssl
import time
from pathlib import Path

import pytest

from conftest import ConfiguredVireoServer, free_ports, rss_kib

DOMAIN = "v.localhost"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
STREAM_ERR_NS = "urn:ietf:params:xml:ns:xmpp-streams"


def header(sender: str = "evil.localhost") -> bytes:
    return (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
        "xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' "
        f"from='{sender}' to='{DOMAIN}' version='1.0'>"
    ).encode()


class Peer:
    """A raw s2s connection from `source` (a loopback address)."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until(self, needle: bytes, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, ssl.SSLError, OSError):
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True

    def closed_within(self, timeout: float) -> bool:
        """Whether the server closes the connection within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, ssl.SSLError, OSError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def open(self) -> None:
        self.send(header())
        assert self.read_until(b"</stream:features>"), self.buf

    def starttls(self) -> None:
        self.open()
        self.send(f"<starttls xmlns='{TLS_NS}'/>".encode())
        assert self.read_until(b"<proceed"), self.buf
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)
        self.buf = b""
        self.open()

    def stream_error(self) -> str | None:
        m = re.search(rb"<([a-z-]+) xmlns=['\"]" + STREAM_ERR_NS.encode(), self.buf)
        return m.group(1).decode() if m else None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def start_server(request, tmp_path, s2s_timeout: int) -> ConfiguredVireoServer:
    """Vireo serving v.localhost with federation on, and the attacker's
    claimed domains routed to a closed port (their verifications fail at
    once instead of waiting on DNS)."""
    (closed,) = free_ports(1)
    config = tmp_path / "vireo.toml"
    config.write_text(
        f'domain = "{DOMAIN}"\n'
        "[transport]\n"
        f"s2s_timeout = {s2s_timeout}\n"
        "s2s_max_incoming_per_address = 8\n"
        "[stream]\n"
        "max_stanza_size = 65536\n")
    srv = ConfiguredVireoServer(request.node.name, config)
    srv.domain = DOMAIN
    routes = ",".join(f"evil{i}.localhost=127.0.0.1:{closed}" for i in range(32))
    base_env = srv.env

    def env():
        e = base_env()
        e["VIREO_DOMAIN"] = DOMAIN
        e["VIREO_S2S_OVERRIDES"] = routes + f",evil.localhost=127.0.0.1:{closed}"
        return e

    srv.env = env
    request.node.log_sources = [srv]
    srv.start()
    return srv


@pytest.fixture
def s2s_server(request, tmp_path):
    """A short s2s_timeout (2 s), for the tests of unauthenticated peers."""
    srv = start_server(request, tmp_path, 2)
    yield srv
    srv.cleanup()


@pytest.fixture
def patient_s2s_server(request, tmp_path):
    """The default s2s_timeout (60 s): idle peers stay while measured."""
    srv = start_server(request, tmp_path, 60)
    yield srv
    srv.cleanup()


def test_one_address_holds_at_most_its_share_of_connections(s2s_server):
    peers = [Peer(s2s_server.s2s_port) for _ in range(8)]
    try:
        for p in peers:
            p.open()
        extra = Peer(s2s_server.s2s_port)
        try:
            assert extra.closed_within(5), "a ninth connection from one address is closed"
            assert extra.buf == b"", "and costs no stream: not even a header"
        finally:
            extra.close()
        # Another address is not affected.
        other = Peer(s2s_server.s2s_port, source="127.0.0.2")
        try:
            other.open()
        finally:
            other.close()
    finally:
        for p in peers:
            p.close()
    # Slots are given back when connections close.
    time.sleep(0.3)
    again = Peer(s2s_server.s2s_port)
    try:
        again.open()
    finally:
        again.close()


def test_an_unauthenticated_peer_is_closed_after_s2s_timeout(s2s_server):
    p = Peer(s2s_server.s2s_port)
    try:
        p.starttls()
        start = time.monotonic()
        assert p.closed_within(10), "the idle, unverified stream is closed"
        waited = time.monotonic() - start
        assert waited < 6, f"closed after {waited:.1f} s (s2s_timeout = 2)"
        assert p.stream_error() == "connection-timeout", p.buf
    finally:
        p.close()


def test_stanzas_before_verification_are_not_authorized(s2s_server):
    p = Peer(s2s_server.s2s_port)
    try:
        p.starttls()
        p.send(b"<message from='a@evil.localhost' to='u@v.localhost'><body>x</body></message>")
        assert p.closed_within(5)
        assert p.stream_error() == "not-authorized", p.buf
    finally:
        p.close()


def test_an_oversized_stanza_is_refused_before_it_is_buffered(s2s_server):
    p = Peer(s2s_server.s2s_port)
    try:
        p.starttls()
        before = rss_kib(s2s_server)
        body = b"x" * (1 << 20)
        try:
            p.send(b"<message from='a@evil.localhost' to='u@v.localhost'><body>" + body)
        except OSError:
            pass  # the server stopped reading: what it said is read next
        assert p.closed_within(5)
        assert p.stream_error() == "policy-violation", p.buf[-400:]
        grew = rss_kib(s2s_server) - before
        assert grew < 4096, f"a refused 1 MiB stanza grew the server by {grew} KiB"
    finally:
        p.close()


def test_deep_nesting_is_refused(s2s_server):
    p = Peer(s2s_server.s2s_port)
    try:
        p.starttls()
        try:
            p.send(b"<message>" + b"<a>" * 100_000)
        except OSError:
            pass
        assert p.closed_within(5)
        assert p.stream_error() in ("policy-violation", "not-well-formed"), p.buf[-400:]
    finally:
        p.close()


def test_a_verification_flood_is_bounded_and_answered(s2s_server):
    """One stream asks to verify many claimed domains: a few at a time are
    checked (each costs an outgoing connection), the rest are refused with
    resource-constraint, every request gets an answer, nothing is routed."""
    p = Peer(s2s_server.s2s_port)
    try:
        p.starttls()
        for i in range(32):
            p.send(f"<db:result from='evil{i}.localhost' to='{DOMAIN}'>"
                   f"{'ab' * 20}</db:result>".encode())
        deadline = time.monotonic() + 15
        while p.buf.count(b"<db:result") < 32 and time.monotonic() < deadline:
            p.read_until(b"\x00", timeout=0.2)
        answers = re.findall(rb"<db:result[^>]*type=['\"](\w+)['\"]", p.buf)
        assert len(answers) == 32, p.buf
        assert set(answers) == {b"error"}, answers
        assert b"resource-constraint" in p.buf, "requests beyond the budget are refused"
        assert b"remote-connection-failed" in p.buf or b"remote-server-not-found" in p.buf, p.buf
        assert b"type='valid'" not in p.buf
    finally:
        p.close()


def test_many_idle_tls_peers_cost_little(patient_s2s_server):
    """240 peers from 30 addresses, each past STARTTLS and idle: the
    server's memory per connection is measured from /proc."""
    srv = patient_s2s_server
    before = rss_kib(srv)
    peers = []
    try:
        for a in range(30):
            for _ in range(8):
                p = Peer(srv.s2s_port, source=f"127.0.1.{a + 1}")
                p.starttls()
                peers.append(p)
        during = rss_kib(srv)
        per_conn = (during - before) / len(peers)
        print(f"\n{len(peers)} idle TLS s2s peers: RSS {before} -> {during} KiB, "
              f"{per_conn:.1f} KiB per connection")
        assert per_conn < 64, f"{per_conn:.1f} KiB per idle s2s connection"
    finally:
        for p in peers:
            p.close()
