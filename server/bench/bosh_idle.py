#!/usr/bin/env python3
"""Idle BOSH sessions (XEP-0124, XEP-0206) and the server memory they cost
(standard library only; server/bench/compare.sh --websocket runs it).

  bosh_idle.py --port HTTP_PORT --sessions N [--path /http-bind]
               [--domain localhost] [--prefix u] [--password pw]
               [--server-pid PID] [--concurrency 50] [--wait 60]
               [--settle-ms 1000] [--hold 0] [--label NAME]

Each session behaves as a web client's: it creates a BOSH session (hold=1,
wait=--wait), authenticates with SASL PLAIN (the servers must accept it
over plain HTTP: Vireo's bosh_consider_secure, Prosody's
consider_bosh_secure, ejabberd as configured by compare.sh), restarts the
stream, binds a resource, sends initial presence and a ping, waits for the
ping's answer, and then leaves one empty request with the server, which
holds it (the held request a real client always has outstanding). Every
session uses its own HTTP/1.1 connection, as a browser tab would.

With N sessions held, the server's RSS (/proc/PID/status VmRSS) is read
after --settle-ms and compared with the reading before the first login:
KiB per session. Then every session is terminated (type='terminate' with
unavailable presence, on a second connection) and its held request
collected.

Prints one JSON line on stdout, shaped like vireo-bench's (scenario
"bosh-idle", kib_per_session, server_rss_before_kib, server_rss_after_kib,
logins_per_s, ok, error) and a short table on stderr; exits 1 on any
failure.
"""

import argparse
import asyncio
import base64
import json
import random
import re
import sys
import time

NS_BOSH = "http://jabber.org/protocol/httpbind"
NS_XBOSH = "urn:xmpp:xbosh"
SID = re.compile(r"""\bsid=['"]([^'"]+)['"]""")


def rss_kib(pid):
    if not pid:
        return None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def xml_attr(value):
    return (value.replace("&", "&amp;").replace("<", "&lt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


class Http:
    """One HTTP/1.1 connection, one request at a time."""

    def __init__(self, host, port, path):
        self.host, self.port, self.path = host, port, path
        self.reader = self.writer = None

    async def post(self, body):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = body.encode()
        self.writer.write((
            "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/xml; charset=utf-8\r\n"
            "Content-Length: %d\r\n\r\n" % (self.path, self.host, self.port, len(data))
        ).encode() + data)
        await self.writer.drain()
        return await self.response()

    async def response(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        if len(status) < 2 or not status[1].isdigit():
            raise OSError("bad status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        text = body.decode("utf-8", errors="replace")
        if status[1] != "200":
            raise OSError("HTTP %s: %s" % (status[1], text[:200]))
        return text

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Session:
    """One BOSH session, logged in and holding one request."""

    def __init__(self, args, user):
        self.args, self.user = args, user
        self.http = Http(args.host, args.port, args.path)
        self.rid = random.randint(1 << 20, 1 << 40)
        self.sid = None
        self.seen = ""
        self.held = None

    def body(self, payload="", **attrs):
        a = "".join(" %s='%s'" % (k.replace("_", ":"), xml_attr(str(v))) for k, v in attrs.items())
        self.rid += 1
        return "<body rid='%d' sid='%s' xmlns='%s' xmlns:xmpp='%s'%s>%s</body>" % (
            self.rid, self.sid, NS_BOSH, NS_XBOSH, a, payload)

    async def exchange(self, body):
        text = await self.http.post(body)
        if "type='terminate'" in text or 'type="terminate"' in text:
            raise OSError("%s: the server terminated the session: %s" % (self.user, text[:300]))
        self.seen += text
        return text

    async def until(self, marker, payload):
        """Send `payload`, then poll (empty requests, held by the server)
        until `marker` has arrived; forget what came before it."""
        await self.exchange(self.body(payload))
        deadline = time.monotonic() + self.args.timeout
        while marker not in self.seen:
            if "<failure" in self.seen or "type='error'" in self.seen or 'type="error"' in self.seen:
                raise OSError("%s: refused while waiting for %r: %r" % (
                    self.user, marker, self.seen[-300:]))
            if time.monotonic() > deadline:
                raise OSError("%s: no %r within %ss; got %r" % (
                    self.user, marker, self.args.timeout, self.seen[-300:]))
            await self.exchange(self.body())
        self.seen = self.seen[self.seen.index(marker):]

    async def login(self):
        a = self.args
        self.rid += 1
        first = ("<body content='text/xml; charset=utf-8' hold='1' rid='%d' to='%s' ver='1.6' "
                 "wait='%d' xml:lang='en' xmpp:version='1.0' xmlns='%s' xmlns:xmpp='%s'/>" % (
                     self.rid, xml_attr(a.domain), a.wait, NS_BOSH, NS_XBOSH))
        text = await self.exchange(first)
        m = SID.search(text)
        if not m:
            raise OSError("%s: no sid in %r" % (self.user, text[:300]))
        self.sid = m.group(1)
        deadline = time.monotonic() + a.timeout
        while "mechanisms" not in self.seen:
            if time.monotonic() > deadline:
                raise OSError("%s: no SASL mechanisms offered: %r" % (self.user, self.seen[-300:]))
            await self.exchange(self.body())
        if "PLAIN" not in self.seen:
            raise OSError("%s: PLAIN is not offered over plain HTTP: %r" % (self.user, self.seen[-400:]))
        token = base64.b64encode(("\0%s\0%s" % (self.user, a.password)).encode()).decode()
        await self.until("success", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                         "mechanism='PLAIN'>%s</auth>" % token)
        self.seen = ""
        await self.exchange(self.body(to=a.domain, xml_lang="en", xmpp_restart="true"))
        deadline = time.monotonic() + a.timeout
        while "urn:ietf:params:xml:ns:xmpp-bind" not in self.seen:
            if time.monotonic() > deadline:
                raise OSError("%s: no bind feature: %r" % (self.user, self.seen[-300:]))
            await self.exchange(self.body())
        await self.until("bind1", "<iq type='set' id='bind1' xmlns='jabber:client'>"
                         "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        self.seen = ""
        await self.until("sync1", "<presence xmlns='jabber:client'/>"
                         "<iq type='get' id='sync1' to='%s' xmlns='jabber:client'>"
                         "<ping xmlns='urn:xmpp:ping'/></iq>" % xml_attr(a.domain))
        self.seen = ""
        # The request the server holds while the session idles.
        h = self.http
        h.writer.write(self.post_bytes(self.body()))
        await h.writer.drain()
        self.held = asyncio.ensure_future(h.response())

    def post_bytes(self, body):
        data = body.encode()
        return ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/xml; charset=utf-8\r\n"
                "Content-Length: %d\r\n\r\n" % (self.args.path, self.args.host, self.args.port,
                                                len(data))).encode() + data

    async def terminate(self):
        other = Http(self.args.host, self.args.port, self.args.path)
        try:
            await asyncio.wait_for(other.post(self.body(
                "<presence type='unavailable' xmlns='jabber:client'/>", type="terminate")), 10)
            if self.held is not None:
                await asyncio.wait_for(self.held, 10)
        finally:
            other.close()
            self.http.close()


async def limited(n, concurrency, make):
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            return await make(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def run(a, out):
    before = rss_kib(a.server_pid)
    out["server_rss_before_kib"] = before
    sessions = [Session(a, "%s%d" % (a.prefix, a.first + i)) for i in range(a.sessions)]
    t0 = time.monotonic()
    await limited(a.sessions, a.concurrency, lambda i: sessions[i].login())
    login_s = time.monotonic() - t0
    out["login_s"] = round(login_s, 3)
    out["logins_per_s"] = round(a.sessions / max(login_s, 1e-9), 1)
    await asyncio.sleep(a.settle_ms / 1000.0)
    held = sum(1 for s in sessions if s.held is not None and not s.held.done())
    out["held_requests"] = held
    after = rss_kib(a.server_pid)
    out["server_rss_after_kib"] = after
    if before is not None and after is not None and a.sessions:
        out["kib_per_session"] = round((after - before) / a.sessions, 3)
    out["bench_rss_kib"] = rss_kib(__import__("os").getpid())
    if held != a.sessions:
        raise OSError("%d of %d requests still held after %d ms (the server answered the others "
                      "early)" % (held, a.sessions, a.settle_ms))
    if a.hold:
        await asyncio.sleep(a.hold)
    t1 = time.monotonic()
    await limited(a.sessions, a.concurrency, lambda i: sessions[i].terminate())
    out["close_s"] = round(time.monotonic() - t1, 3)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/http-bind")
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--prefix", default="u")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--password", default="pw")
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--wait", type=int, default=60)
    ap.add_argument("--settle-ms", type=int, default=1000)
    ap.add_argument("--hold", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--label")
    a = ap.parse_args()
    out = {"scenario": "bosh-idle", "label": a.label, "transport": "bosh", "host": a.host,
           "port": a.port, "domain": a.domain, "server_pid": a.server_pid,
           "sessions": a.sessions, "wait": a.wait}
    t = time.monotonic()
    try:
        asyncio.run(run(a, out))
        out["ok"] = True
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
        out["ok"] = False
        out["error"] = "%s: %s" % (type(e).__name__, e)
    out["wall_s"] = round(time.monotonic() - t, 3)
    print("bosh_idle.py:", file=sys.stderr)
    for k, v in out.items():
        print("  %-22s %s" % (k, v), file=sys.stderr)
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
