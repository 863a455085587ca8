"""Web clients for the interop tests: Converse.js in headless Debian Chromium
(js/converse.mjs) and xmpp.js over WebSocket (js/xmppjs_ws.mjs), run as
background Node processes while the test's own slixmpp clients keep running
on the same asyncio loop.

Both scripts print one line per milestone (`connected: ...`, `roster: ...`,
`sent: ...`, `received: ...`, `OK` or `FAILED: ...`); a test waits for the
ones it needs, answering in between:

    ws = f"ws://127.0.0.1:{server.http_port}/xmpp-websocket"   # or bosh=http://.../http-bind
    async with converse(a.jid, a.password, websocket=ws, peer=b.jid,
                        send="hi bob", expect="hi alice") as web:
        await web.wait_for("connected")
        assert b.jid in (await web.wait_for("roster")).split(",")
        await web.wait_for("sent")
        await bob.wait_message(sender=a.jid, body="hi bob")   # bob: a conftest.XmppClient
        bob.send_chat(a.jid, "hi alice")
        await web.wait_for("received")
        await web.wait_for("displayed")   # Converse only: rendered in the chat view
        await web.finish()          # exit code 0 and `OK`, or an AssertionError

make_contacts(alice, bob) subscribes two online XmppClients to each other
first, so that each is in the other's roster. test_browser_prosody.py is the
worked example (against Prosody).

Every failure message carries the script's whole output (on failure the
scripts add the Chromium console and the XMPP traffic they saw). Leaving the
`async with` kills whatever still runs (the Node process group; Chromium
exits with it) and removes the run's temporary directory, where Chromium's
profile lives.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

JS = Path(__file__).resolve().parent / "js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
RUN_TIMEOUT = 90.0  # the scripts' own overall limit; wait_for/finish add a margin
STEP_TIMEOUT = 20.0


def node() -> str:
    path = shutil.which("node")
    assert path, "node is not installed (run.sh needs Node.js >= 20 and npm)"
    return path


def browser_missing() -> str | None:
    """None when the browser tests can run here, else what is missing."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (Debian package chromium; .ci/run installs it)"
    for pkg in ("playwright-core", "converse.js", "@xmpp/client"):
        if not (JS / "node_modules" / pkg).is_dir():
            return f"{pkg} is not installed: run server/tests/interop/run.sh (npm ci in {JS})"
    return None


@lru_cache(maxsize=1)
def _node_websocket_flags() -> tuple[str, ...]:
    """Node 20 has a WebSocket global only behind a flag (22+ by default)."""
    probe = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    if subprocess.run([node(), "-e", probe], capture_output=True).returncode == 0:
        return ()
    return ("--experimental-websocket",)


class JsRun:
    """One Node script in the background, its stdout read line by line."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None,
                 timeout: float = RUN_TIMEOUT):
        self.name = name
        self.argv = argv
        self.timeout = timeout
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VIREO_")}
        self.env.update(env or {})
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.returncode: int | None = None
        self.started_at = 0.0
        self.proc: asyncio.subprocess.Process | None = None
        self._changed = asyncio.Event()
        self._readers: list[asyncio.Task] = []
        self._tmp: Path | None = None
        self._taken: set[int] = set()

    async def start(self) -> "JsRun":
        # Chromium's profile and anything else temporary stays in here.
        self._tmp = Path(tempfile.mkdtemp(prefix="vireo-web-"))
        self.env["TMPDIR"] = str(self._tmp)
        self.started_at = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=JS, env=self.env, stdin=subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
        self._readers = [asyncio.ensure_future(self._read(self.proc.stdout, self.lines)),
                         asyncio.ensure_future(self._read(self.proc.stderr, self.stderr))]
        return self

    async def _read(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        while True:
            line = await stream.readline()
            if not line:
                break
            into.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        if into is self.lines:
            self.returncode = await self.proc.wait()
            self._changed.set()

    def output(self) -> str:
        out = "\n".join(self.lines) or "(no output)"
        err = "\n".join(self.stderr)
        code = "running" if self.returncode is None else f"exit code {self.returncode}"
        return f"--- {self.name} ({code}) ---\n{out}" + (f"\n--- stderr ---\n{err}" if err else "")

    def seconds(self) -> float:
        return time.monotonic() - self.started_at

    async def wait_for(self, milestone: str, timeout: float | None = None) -> str:
        """The rest of the first not yet consumed line `<milestone>: rest` (or
        the line `<milestone>`); fails as soon as the script fails or exits."""
        timeout = self.timeout + 10 if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.lines):
                if i in self._taken:
                    continue
                if line == milestone or line.startswith(milestone + ":"):
                    self._taken.add(i)
                    return line[len(milestone) + 1:].strip()
            if any(line.startswith("FAILED") for line in self.lines) or self.returncode is not None:
                await self._settle()
                raise AssertionError(f"{self.name}: no {milestone!r} line\n{self.output()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no {milestone!r} line within {timeout}s\n"
                                     f"{self.output()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def _settle(self, timeout: float = 15) -> None:
        """Let a failed script print its diagnostics and exit (bounded)."""
        try:
            await asyncio.wait_for(asyncio.gather(*self._readers), timeout)
        except asyncio.TimeoutError:
            pass

    async def finish(self, timeout: float | None = None) -> None:
        """Wait for the exit; assert exit code 0 and a final `OK`."""
        await self.wait_for("OK", timeout)
        try:
            await asyncio.wait_for(asyncio.gather(*self._readers), 15)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.name}: still running after OK\n{self.output()}")
        assert self.returncode == 0, f"{self.name}: exit code {self.returncode}\n{self.output()}"

    async def close(self) -> None:
        """Stop it if it still runs (SIGTERM lets the script close Chromium,
        then SIGKILL to its process group), then remove its temporary files."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                pass
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
        for task in self._readers:
            if not task.done():
                try:
                    await asyncio.wait_for(task, 5)
                except (asyncio.TimeoutError, Exception):
                    task.cancel()
        if self._tmp is not None and os.environ.get("VIREO_TEST_KEEP") != "1":
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> "JsRun":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()


def _common(peer: str | None, send: str | None, expect: str | None,
            timeout: float, step_timeout: float) -> list[str]:
    args = ["--timeout", str(timeout), "--step-timeout", str(step_timeout)]
    for flag, value in (("--peer", peer), ("--send", send), ("--expect", expect)):
        if value is not None:
            args += [flag, value]
    return args


def converse(jid: str, password: str, *, websocket: str | None = None, bosh: str | None = None,
             peer: str | None = None, send: str | None = None, expect: str | None = None,
             timeout: float = RUN_TIMEOUT, step_timeout: float = STEP_TIMEOUT,
             trace: bool = False) -> JsRun:
    """Converse.js logging in as `jid` over `websocket` (ws://.../xmpp-websocket)
    or `bosh` (http://.../http-bind); with `peer`, it opens a chat, sends
    `send` and waits for `expect` from the peer. Not started: use `async with`."""
    assert (websocket is None) != (bosh is None), "one of websocket= and bosh="
    transport = ["--websocket", websocket] if websocket else ["--bosh", bosh]
    argv = [node(), "converse.mjs", "--jid", jid, *transport,
            *_common(peer, send, expect, timeout, step_timeout)]
    if trace:
        argv.append("--trace")
    return JsRun(f"converse.js {jid} over {'websocket' if websocket else 'BOSH'}", argv,
                 {"XMPP_PASSWORD": password, "CHROMIUM": CHROMIUM}, timeout)


def xmppjs_ws(jid: str, password: str, *, websocket: str, peer: str | None = None,
              send: str | None = None, expect: str | None = None,
              timeout: float = RUN_TIMEOUT, step_timeout: float = STEP_TIMEOUT) -> JsRun:
    """xmpp.js logging in as `jid` over `websocket`, then as converse()."""
    argv = [node(), *_node_websocket_flags(), "xmppjs_ws.mjs", "--jid", jid,
            "--service", websocket, *_common(peer, send, expect, timeout, step_timeout)]
    return JsRun(f"xmpp.js {jid} over websocket", argv, {"XMPP_PASSWORD": password}, timeout)


async def make_contacts(a, b) -> None:
    """Mutual presence subscription between two online conftest.XmppClients
    (each asks, the other approves), so each is in the other's roster with
    subscription 'both'."""
    for asker, approver in ((a, b), (b, a)):
        asker.xmpp.send_presence(pto=approver.jid.bare, ptype="subscribe")
        await approver.wait_presence(asker.jid.bare, "subscribe")
        approver.xmpp.send_presence(pto=asker.jid.bare, ptype="subscribed")
        await asker.wait_presence(approver.jid.bare, "subscribed")
    for c, other in ((a, b), (b, a)):
        roster = {str(k): v for k, v in (await c.fetch_roster()).items()}
        sub = roster.get(other.jid.bare, {}).get("subscription")
        assert sub == "both", f"{c.name}: roster item for {other.jid.bare}: {roster}"
