"""A raw XMPP-over-WebSocket client (RFC 6455 framing, RFC 7395 XMPP) for
hostile-input tests: every byte is under the test's control, so it builds
well-formed frames and malformed ones alike (unmasked, reserved bits,
unknown opcodes, fragmented control frames, non-minimal or absurd lengths).

    ws = WsConn(srv.http_port, source="127.0.3.1")   # upgrade → 101
    ws.open_stream()                                 # <open/> → features
    ws.send_text("<presence/>")
    res = ws.read_until_closed()                     # WsResult
    res.stream_error(), res.close_code, res.closed

Server frames are parsed incrementally from a buffer; a Close frame is
remembered (`close_code`), and a TCP close or reset sets `eof`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

from conftest import DOMAIN, SASL_NS, STREAM_ERR_NS, WAIT

FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing"
BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"
OPEN = f"<open xmlns='{FRAMING_NS}' to='{DOMAIN}' version='1.0'/>"
CLOSE = f"<close xmlns='{FRAMING_NS}'/>"

CONT, TEXT, BINARY, CLOSE_OP, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# RFC 6455 §1.3's example key; its accept value is checked on the 101.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = base64.b64encode(hashlib.sha1(
    (KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    """XOR `payload` with the 4-byte `key` repeated (fast for megabytes)."""
    n = len(payload)
    if n == 0 or key == b"\0\0\0\0":
        return payload
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes | str = b"", *, fin: bool = True, rsv: int = 0,
          masked: bool = True, key: bytes | None = None, length: int | None = None,
          length_form: str | None = None) -> bytes:
    """One client frame. `length` overrides the announced payload length
    (the payload sent is still `payload`); `length_form` forces the
    encoding of the length: '7', '16' or '64' (a non-minimal one when the
    length is small)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)
    mbit = 0x80 if masked else 0
    form = length_form or ("7" if n < 126 else "16" if n < 65536 else "64")
    if form == "7":
        head = struct.pack("!BB", b0, mbit | n)
    elif form == "16":
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4) if key is None else key
    return head + key + mask_bytes(payload, key)


@dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    @property
    def close_code(self) -> int | None:
        if self.opcode != CLOSE_OP:
            return None
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else 1005


@dataclass
class WsResult:
    frames: list
    closed: bool  # the server closed the TCP connection
    close_code: int | None  # the server's Close frame, if any
    unmasked_ok: bool = True  # no server frame was masked (§5.1)
    texts: list = field(default_factory=list)

    def stream_error(self) -> str | None:
        """Condition of the <stream:error> the server sent, if any."""
        for t in self.texts:
            if "error" not in t:
                continue
            m = re.search(r"<([a-z-]+)\s+xmlns\s*=\s*['\"]" + re.escape(STREAM_ERR_NS) + r"['\"]", t)
            if m and m.group(1) != "text":
                return m.group(1)
        return None

    def error_text(self) -> str:
        for t in self.texts:
            m = re.search(r"<text[^>]*>(.*?)</text>", t, re.S)
            if "error" in t and m:
                return m.group(1)
        return ""

    @property
    def sent_close_element(self) -> bool:
        return any(t.startswith("<close") for t in self.texts)

    def describe(self) -> str:
        shown = [t if len(t) < 300 else t[:300] + "…" for t in self.texts[-6:]]
        return (f"closed={self.closed} close_code={self.close_code} "
                f"frames={len(self.frames)} texts(last)={shown}")


class WsConn:
    """One raw WebSocket connection to the HTTP port, upgraded to `xmpp`
    (unless `upgrade=False`: then call `upgrade()` or send by hand)."""

    def __init__(self, port: int, *, source: str = "127.0.0.1", timeout: float = WAIT,
                 upgrade: bool = True, path: str = "/xmpp-websocket", extra: str = "",
                 rcvbuf: int | None = None):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect: a small window, no autotuning (a client
            # that reads slowly, or not at all).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.timeout = timeout
        self.buf = bytearray()
        self.pos = 0  # parsed up to here
        self.frames: list[Frame] = []
        self.eof = False
        self.close_code: int | None = None
        self.masked_from_server = False
        self.head: bytes = b""
        self._taken = 0  # frames consumed by wait_text()
        self.in_http = True  # the response head is not parsed as frames
        if upgrade:
            self.upgrade(path=path, extra=extra)

    # -- handshake -----------------------------------------------------------

    def request(self, path: str = "/xmpp-websocket", extra: str = "") -> bytes:
        return (f"GET {path} HTTP/1.1\r\nHost: {DOMAIN}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n{extra}\r\n").encode()

    def upgrade(self, path: str = "/xmpp-websocket", extra: str = "",
                after: bytes = b"") -> bytes:
        """Send the upgrade request (and `after`, pipelined in the same
        write), read the response head; asserts 101 with the right accept
        value and subprotocol."""
        self.sock.sendall(self.request(path, extra) + after)
        head = self.read_head()
        assert head.startswith(b"HTTP/1.1 101 "), f"upgrade refused: {head!r}"
        assert f"Sec-WebSocket-Accept: {ACCEPT}".lower().encode() in head.lower(), head
        assert b"sec-websocket-protocol: xmpp" in head.lower(), head
        return head

    def read_head(self, timeout: float | None = None) -> bytes:
        """The HTTP response head; what follows stays in the frame buffer.
        b"" if the connection closed before a head."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._recv(deadline - time.monotonic()):
                if self.eof or time.monotonic() >= deadline:
                    head, self.buf = bytes(self.buf), bytearray()
                    return head
        end = self.buf.index(b"\r\n\r\n") + 4
        self.head = bytes(self.buf[:end])
        del self.buf[:end]
        self.in_http = False
        self._parse()
        return self.head

    # -- sending -------------------------------------------------------------

    def send_raw(self, data: bytes, chunk: int = 65536) -> bool:
        """Send `data`, reading what the server says in between: a server
        that fails the connection answers and closes while the rest is
        still being sent, and its answer must not be lost to a reset.
        Returns False once the server closed (or said Close) and the rest
        was not sent."""
        view = memoryview(data)
        while view:
            if self._answered():
                return False
            try:
                _, w, _ = select.select([], [self.sock], [], self.timeout)
                if not w:
                    self._poll(0.05)
                    continue
                sent = self.sock.send(view[:chunk])
            except (BrokenPipeError, ConnectionResetError, OSError):
                self._poll(0.5)
                return False
            view = view[sent:]
        return True

    def send_frame(self, opcode: int, payload: bytes | str = b"", **kw) -> bool:
        return self.send_raw(frame(opcode, payload, **kw))

    def send_text(self, text: str, **kw) -> bool:
        return self.send_frame(TEXT, text, **kw)

    def ping(self, payload: bytes = b"") -> bool:
        return self.send_frame(PING, payload)

    def send_close(self, code: int | None = 1000) -> bool:
        return self.send_frame(CLOSE_OP, b"" if code is None else struct.pack("!H", code))

    # -- receiving -----------------------------------------------------------

    def _recv(self, timeout: float) -> bool:
        """One read into the buffer; False on timeout or EOF."""
        if self.eof or timeout <= 0:
            return False
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(262144)
        except (socket.timeout, TimeoutError):
            return False
        except OSError:
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        if not self.in_http:
            self._parse()
        return True

    def _poll(self, timeout: float) -> None:
        """Read what arrives within `timeout` (at least what is waiting)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            r, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not r or not self._recv(0.01):
                return

    def _answered(self) -> bool:
        self._poll(0)
        return self.eof or self.close_code is not None

    def _parse(self) -> None:
        buf, pos = self.buf, self.pos
        n = len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            ln = b1 & 0x7F
            off = pos + 2
            if ln == 126:
                if n - off < 2:
                    break
                ln = struct.unpack_from("!H", buf, off)[0]
                off += 2
            elif ln == 127:
                if n - off < 8:
                    break
                ln = struct.unpack_from("!Q", buf, off)[0]
                off += 8
            if b1 & 0x80:
                self.masked_from_server = True
                if n - off < 4:
                    break
                key = bytes(buf[off:off + 4])
                off += 4
            else:
                key = None
            if n - off < ln:
                break
            payload = bytes(buf[off:off + ln])
            if key:
                payload = mask_bytes(payload, key)
            f = Frame(bool(b0 & 0x80), b0 & 0x0F, payload)
            self.frames.append(f)
            if f.opcode == CLOSE_OP and self.close_code is None:
                self.close_code = f.close_code
            pos = off + ln
        if pos > 1 << 20:
            del buf[:pos]
            pos = 0
        self.pos = pos

    def read_until(self, pred: Callable[["WsConn"], bool], timeout: float | None = None) -> bool:
        """Read until pred(self) holds, EOF or timeout; True if it held."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not pred(self):
            if self.eof:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._recv(remaining)
        return True

    def texts(self) -> list[str]:
        return [f.text for f in self.frames if f.opcode == TEXT]

    def count(self, opcode: int) -> int:
        return sum(1 for f in self.frames if f.opcode == opcode)

    def wait_text(self, needle: str, timeout: float | None = None) -> str:
        """The first not yet consumed text message containing `needle`
        (messages before it are consumed too); AssertionError otherwise."""
        found = []

        def pred(c):
            for i in range(self._taken, len(c.frames)):
                f = c.frames[i]
                if f.opcode == TEXT and needle in f.text:
                    found.append((i, f.text))
                    return True
            return False
        if not self.read_until(pred, timeout):
            raise AssertionError(f"no text message with {needle!r}: {self.result().describe()}")
        i, text = found[0]
        self._taken = i + 1
        return text

    def read_until_closed(self, timeout: float | None = None) -> WsResult:
        self.read_until(lambda _c: False, timeout)
        return self.result()

    def result(self) -> WsResult:
        return WsResult(list(self.frames), self.eof, self.close_code,
                        not self.masked_from_server, self.texts())

    # -- XMPP ----------------------------------------------------------------

    def open_stream(self, to: str = DOMAIN) -> str:
        """<open/>; returns the features message."""
        self.send_text(f"<open xmlns='{FRAMING_NS}' to='{to}' version='1.0'/>")
        self.wait_text("<open")
        return self.wait_text("features")

    def authenticate(self, jid: str, password: str) -> None:
        """SASL PLAIN on an open stream, until <success/>."""
        user = jid.split("@", 1)[0]
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send_text(f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{plain}</auth>")
        answer = self.wait_text(SASL_NS)
        assert "<success" in answer, answer

    def login(self, jid: str, password: str, resource: str = "ws") -> str:
        """Open, SASL PLAIN, restart, bind; returns the bound full JID."""
        self.open_stream()
        self.authenticate(jid, password)
        self.open_stream()
        self.send_text(f"<iq xmlns='jabber:client' type='set' id='bind1'>"
                       f"<bind xmlns='{BIND_NS}'><resource>{resource}</resource></bind></iq>")
        bound = self.wait_text("bind1")
        m = re.search(r"<jid>([^<]+)</jid>", bound)
        assert m, bound
        return m.group(1)

    def roundtrip(self, ident: str, timeout: float | None = None) -> str:
        """An XEP-0199 ping to the server, answered: the session works."""
        self.send_text(f"<iq xmlns='jabber:client' type='get' id='{ident}' to='{DOMAIN}'>"
                       f"<ping xmlns='urn:xmpp:ping'/></iq>")
        return self.wait_text(ident, timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def try_connect(port: int, source: str, timeout: float = WAIT,
                extra: str = "") -> tuple[WsConn | None, bytes]:
    """Upgrade without asserting: (connection, response head). The
    connection is None (and closed) when the answer was not a 101."""
    c = WsConn(port, source=source, timeout=timeout, upgrade=False)
    try:
        c.sock.sendall(c.request(extra=extra))
        head = c.read_head()
    except OSError:
        c.close()
        return None, b""
    if not head.startswith(b"HTTP/1.1 101 "):
        c.close()
        return None, head
    return c, head
