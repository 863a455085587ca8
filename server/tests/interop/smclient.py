"""A raw-socket XEP-0198 client for the interop suite.

slixmpp hides the moments that matter for stream management (what exactly
was handled when the socket died, which resume won); this client speaks the
protocol by hand over asyncio so tests control every byte: direct TLS,
SCRAM-SHA-256, bind, <enable resume='true'/>, <r/>/<a/>, <resume/>, and an
abort that drops the TCP connection without a closing handshake.

The session state (handled count, every stanza received, the SM-ID)
belongs to the client object and survives its connections, as on a phone.
"""

from __future__ import annotations

import asyncio
import base64
import re
import hashlib
import hmac
import secrets
import socket
import ssl
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from conftest import DOMAIN, SASL_NS, STREAM_HEADER, STREAMS_NS, WAIT, Account

SM = "urn:xmpp:sm:3"
CLIENT = "jabber:client"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
STANZAS = ("message", "presence", "iq")

# PBKDF2 is the slow part of SCRAM: cache it per (password, salt, rounds).
_salted: dict[tuple[str, bytes, int], bytes] = {}


def _scram_proof(password: str, salt: bytes, rounds: int, auth_message: bytes) -> bytes:
    key = (password, salt, rounds)
    if key not in _salted:
        _salted[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    client_key = hmac.new(_salted[key], b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    signature = hmac.new(stored, auth_message, hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(client_key, signature))


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


class StreamClosed(Exception):
    """The server closed the connection (or it was aborted) mid-negotiation."""


@dataclass
class Conn:
    """One TCP connection: its reader task feeds parsed top-level elements."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    elements: asyncio.Queue = field(default_factory=asyncio.Queue)
    parser: ET.XMLPullParser | None = None
    depth: int = 0
    eof: bool = False
    stream_error: str | None = None
    task: asyncio.Task | None = None

    def restart(self) -> None:
        self.parser = ET.XMLPullParser(("start", "end"))
        self.depth = 0


class SmClient:
    """One account/resource whose session may live on several connections."""

    def __init__(self, srv, account: Account, resource: str, *, name: str | None = None):
        self.srv = srv
        self.account = account
        self.resource = resource
        self.name = name or f"{account.jid}/{resource}"
        self.sm_id: str | None = None
        self.sm_enabled = False
        self.handled = 0  # stanzas received since <enabled/> (mod 2^32 in theory)
        self.acked = 0  # the last count we told the server
        self.stanzas: list[ET.Element] = []  # everything counted, in order
        self.changed = asyncio.Event()
        self.conn: Conn | None = None
        self.jid: str | None = None
        # Set by the server's <a h=''/>: how many of our stanzas it handled.
        self.server_h = 0
        # SO_RCVBUF for new connections (None: the kernel's default).
        self.rcvbuf: int | None = None

    # -- connections ---------------------------------------------------------

    async def _open(self) -> Conn:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf is not None:
            # Before connect(), so the window the server sees is small too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(
                sock, (self.srv.host, self.srv.c2s_tls_port)), WAIT)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=DOMAIN), WAIT)
        except BaseException:
            sock.close()
            raise
        conn = Conn(reader, writer)
        conn.restart()
        conn.task = asyncio.ensure_future(self._read(conn))
        return conn

    async def _read(self, conn: Conn) -> None:
        try:
            while True:
                data = await conn.reader.read(65536)
                if not data:
                    break
                assert conn.parser is not None
                conn.parser.feed(data)
                for event, el in conn.parser.read_events():
                    if event == "start":
                        conn.depth += 1
                        continue
                    conn.depth -= 1
                    if conn.depth == 1:
                        self._element(conn, el)
                    elif conn.depth == 0:
                        break
        except (ConnectionError, ssl.SSLError, OSError, ET.ParseError, asyncio.CancelledError):
            pass
        finally:
            conn.eof = True
            conn.elements.put_nowait(None)
            self.changed.set()

    def _element(self, conn: Conn, el: ET.Element) -> None:
        if el.tag == f"{{{STREAMS_NS}}}error":
            conn.stream_error = next((local(c.tag) for c in el if local(c.tag) != "text"), "?")
        if conn is self.conn and ns(el.tag) == CLIENT and local(el.tag) in STANZAS:
            if self.sm_enabled:
                self.handled += 1
            self.stanzas.append(el)
            self.changed.set()
            return
        if conn is self.conn and self.sm_enabled:
            if el.tag == f"{{{SM}}}r":
                self.ack(conn)
                return
            if el.tag == f"{{{SM}}}a":
                self.server_h = int(el.get("h", "0"))
                self.changed.set()
                return
        conn.elements.put_nowait(el)

    def ack(self, conn: Conn | None = None) -> None:
        conn = conn or self.conn
        if conn is not None and not conn.eof:
            self.acked = self.handled
            self._send(conn, f"<a xmlns='{SM}' h='{self.handled}'/>")

    @staticmethod
    def _send(conn: Conn, data: str) -> None:
        if not conn.writer.is_closing():
            conn.writer.write(data.encode())

    async def _next(self, conn: Conn, timeout: float = WAIT) -> ET.Element:
        el = await asyncio.wait_for(conn.elements.get(), timeout)
        if el is None:
            conn.elements.put_nowait(None)
            raise StreamClosed(f"{self.name}: stream closed (error={conn.stream_error})")
        return el

    async def _header(self, conn: Conn) -> ET.Element:
        conn.restart()
        self._send(conn, STREAM_HEADER)
        features = await self._next(conn)
        assert local(features.tag) == "features", ET.tostring(features)
        return features

    async def _login(self) -> Conn:
        conn = await self._open()
        try:
            await self._header(conn)
            user = self.account.jid.split("@", 1)[0]
            nonce = base64.b64encode(secrets.token_bytes(18)).decode()
            bare = f"n={user},r={nonce}"
            first = base64.b64encode(f"n,,{bare}".encode()).decode()
            self._send(conn, f"<auth xmlns='{SASL_NS}' mechanism='SCRAM-SHA-256'>{first}</auth>")
            challenge = await self._next(conn)
            assert local(challenge.tag) == "challenge", ET.tostring(challenge)
            server_first = base64.b64decode(challenge.text or "").decode()
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            without_proof = f"c=biws,r={attrs['r']}"
            auth_message = f"{bare},{server_first},{without_proof}".encode()
            proof = _scram_proof(self.account.password, base64.b64decode(attrs["s"]),
                                 int(attrs["i"]), auth_message)
            final = f"{without_proof},p={base64.b64encode(proof).decode()}"
            self._send(conn, f"<response xmlns='{SASL_NS}'>"
                             f"{base64.b64encode(final.encode()).decode()}</response>")
            success = await self._next(conn)
            assert local(success.tag) == "success", ET.tostring(success)
            await self._header(conn)
            return conn
        except BaseException:
            conn.writer.transport.abort()
            raise

    async def connect(self, *, sm: bool = True, presence: bool = False) -> "SmClient":
        """Log in, bind `resource`, and (with `sm`) enable resumable SM."""
        conn = await self._login()
        self._send(conn, f"<iq type='set' id='bind'><bind xmlns='{BIND}'>"
                         f"<resource>{escape(self.resource)}</resource></bind></iq>")
        bound = await self._next(conn)
        jid = bound.find(f"{{{BIND}}}bind/{{{BIND}}}jid")
        assert bound.get("type") == "result" and jid is not None, ET.tostring(bound)
        self.jid = jid.text
        self.conn = conn
        if sm:
            self._send(conn, f"<enable xmlns='{SM}' resume='true'/>")
            enabled = await self._next(conn)
            assert enabled.tag == f"{{{SM}}}enabled", ET.tostring(enabled)
            self.sm_id = enabled.get("id")
            self.sm_enabled = True
        if presence:
            self.send("<presence/>")
        return self

    async def login(self) -> Conn:
        """A new authenticated connection, not bound (for resume())."""
        return await self._login()

    async def resume(self, *, conn: Conn | None = None, abort_old: bool = True,
                     timeout: float = WAIT) -> tuple[Conn, ET.Element]:
        """Ask to resume on `conn` (default: a new connection); returns it
        with the server's <resumed/> or <failed/>. On <resumed/> the new
        connection becomes this client's (the old one is aborted unless
        `abort_old` is false), and the replayed stanzas are counted."""
        assert self.sm_id, "no resumable session"
        conn = conn or await self._login()
        # From the <resume/> on, the old connection no longer counts: what
        # it still receives is replayed on the new one.
        old, self.conn = self.conn, None
        self._send(conn, f"<resume xmlns='{SM}' previd='{self.sm_id}' h='{self.handled}'/>")
        try:
            answer = await self._next(conn, timeout)
        except BaseException:
            self.conn = old
            raise
        if answer.tag != f"{{{SM}}}resumed":
            self.conn = old
            return conn, answer
        self.conn = conn
        if old is not None and old is not conn and abort_old:
            old.writer.transport.abort()
        # Everything after <resumed/> was already queued on this
        # connection: count it now, in order.
        pending = []
        while not conn.elements.empty():
            pending.append(conn.elements.get_nowait())
        for el in pending:
            if el is None:
                conn.elements.put_nowait(None)
            else:
                self._element(conn, el)
        return conn, answer

    def abort(self) -> None:
        """The network goes away: no </stream:stream>, no goodbye."""
        if self.conn is not None:
            self.conn.writer.transport.abort()

    def stop_reading(self) -> None:
        """Like a half-open connection: bytes pile up in the socket buffers
        and nothing is acknowledged."""
        if self.conn is not None:
            self.conn.writer.transport.pause_reading()

    def send(self, xml: str) -> None:
        assert self.conn is not None
        self._send(self.conn, xml)

    async def close(self) -> None:
        """A clean close (ends the session, XEP-0198 §7)."""
        conn = self.conn
        if conn is None:
            return
        self._send(conn, "</stream:stream>")
        try:
            await asyncio.wait_for(conn.task, WAIT)
        except asyncio.TimeoutError:
            conn.writer.transport.abort()
        conn.writer.close()

    def twin(self, name: str) -> "SmClient":
        """Another client with this one's session state, as if the same
        phone tried from a second socket."""
        t = SmClient(self.srv, self.account, self.resource, name=name)
        t.sm_id, t.handled, t.sm_enabled = self.sm_id, self.handled, self.sm_enabled
        return t

    def shutdown(self) -> None:
        for conn in [self.conn]:
            if conn is not None:
                conn.writer.transport.abort()
                if conn.task is not None:
                    conn.task.cancel()

    async def ping(self, timeout: float = WAIT) -> None:
        """Round trip to the server: what was sent before has been handled."""
        pid = f"ping-{secrets.token_hex(4)}"
        self.send(f"<iq type='get' id='{pid}' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")
        await self.wait_until(
            lambda: any(local(e.tag) == "iq" and e.get("id") == pid for e in self.stanzas),
            timeout, f"answer to {pid}")

    # -- what arrived ----------------------------------------------------------

    def bodies(self) -> list[str]:
        return [el.findtext(f"{{{CLIENT}}}body") or "" for el in self.stanzas
                if local(el.tag) == "message" and el.get("type") != "error"]

    async def wait_until(self, pred, timeout: float = WAIT, what: str = "condition") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no {what} within {timeout}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


def chat(to: str, body: str, mid: str | None = None) -> str:
    mid = mid or secrets.token_hex(6)
    return f"<message to='{escape(to)}' type='chat' id='{mid}'><body>{escape(body)}</body></message>"


# The server logs the number of resumable sessions at debug level whenever
# it changes (xmpp_runtime::sm_registry); tests read it to catch leaks.
REGISTRY_LOG = "info,xmpp_runtime::hub_task=debug,xmpp_runtime::sm_registry=debug,xmpp_core::hub=debug"


def resumable_sessions(srv) -> int | None:
    """The server's last logged count of resumable sessions."""
    counts = re.findall(r"resumable=(\d+)", srv.log_path.read_text(errors="replace"))
    return int(counts[-1]) if counts else None


async def wait_no_resumable_sessions(srv, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while resumable_sessions(srv) != 0:
        assert loop.time() < deadline, \
            f"{resumable_sessions(srv)} SM-IDs still registered after every session ended"
        await asyncio.sleep(0.05)
