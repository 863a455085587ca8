"""External components (XEP-0114) for the interop suite: a server started
with [[interfaces.component]] entries, and slixmpp's ComponentXMPP wrapped
like the suite's clients (bounded waits, recorded events)."""

from __future__ import annotations

import asyncio
import time

import pytest
from slixmpp.componentxmpp import ComponentXMPP

from conftest import CONNECT_TIMEOUT, WAIT, ConfiguredVireoServer, free_ports, port_accepts, wait_any


def start_with_components(srv: ConfiguredVireoServer, components: dict[str, str],
                          extra: str = "") -> None:
    """Write a single-file configuration declaring `components`
    ({jid: secret}) on a free component port, and start the server."""
    (srv.component_port,) = free_ports(1)
    lines = ["[interfaces]", f"component_port = {srv.component_port}"]
    for jid, secret in components.items():
        lines += ["[[interfaces.component]]", f'jid = "{jid}"', f'secret = "{secret}"']
    path = srv.root / "vireo.toml"
    path.write_text(extra + "\n" + "\n".join(lines) + "\n")
    srv.config_path = path
    srv.start()
    wait_component_port(srv)


def wait_component_port(srv: ConfiguredVireoServer, timeout: float = 10.0) -> None:
    """Wait (bounded) until the component listener accepts TCP."""
    deadline = time.monotonic() + timeout
    while not port_accepts(srv.component_port):
        if time.monotonic() > deadline:
            pytest.fail(f"component port {srv.component_port} not listening:\n{srv.log_tail()}")
        time.sleep(0.05)


class Component:
    """A slixmpp ComponentXMPP connected to a test server."""

    def __init__(self, srv: ConfiguredVireoServer, jid: str, secret: str):
        self.name = jid
        x = ComponentXMPP(jid, secret, srv.host, srv.component_port)
        x.use_ipv6 = False
        x.whitespace_keepalive = False
        self.xmpp = x
        self.started = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.failed = asyncio.Event()
        self.stream_errors: list[str] = []
        self.messages: list = []
        self.events: list[str] = []
        self._changed = asyncio.Event()
        x.add_event_handler("session_start", lambda _: self._set(self.started, "session_start"))
        x.add_event_handler("disconnected", lambda r: self._set(self.disconnected, f"disconnected {r!r}"))
        x.add_event_handler("connection_failed", lambda r: self._set(self.failed, f"connection_failed {r!r}"))
        x.add_event_handler("stream_error", self._on_stream_error)
        x.add_event_handler("message", self._on_message)

    def _set(self, ev: asyncio.Event, what: str) -> None:
        self.events.append(what)
        ev.set()
        self._changed.set()

    def _on_stream_error(self, error) -> None:
        self.stream_errors.append(error["condition"])
        self._set(asyncio.Event(), f"stream_error {error['condition']}")

    def _on_message(self, msg) -> None:
        self.messages.append(msg)
        self._changed.set()

    async def connect(self) -> str:
        """Connect; 'session_start' when the handshake was accepted, else
        'disconnected', 'connection_failed' or 'timeout'."""
        self.xmpp.connect()
        return await wait_any(
            {
                "session_start": self.started,
                "disconnected": self.disconnected,
                "connection_failed": self.failed,
            },
            CONNECT_TIMEOUT,
        )

    async def online(self) -> "Component":
        outcome = await self.connect()
        assert outcome == "session_start", f"{self.name}: {outcome}; events={self.events}"
        return self

    async def wait_disconnected(self, timeout: float = WAIT) -> None:
        await asyncio.wait_for(self.disconnected.wait(), timeout)

    async def wait_message(self, pred, timeout: float = WAIT):
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if pred(m):
                    return m
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: no matching message within {timeout}s; "
                    f"got {[str(m) for m in self.messages]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        x = self.xmpp
        x.cancel_connection_attempt()
        if x.transport is not None:
            try:
                await asyncio.wait_for(x.disconnect(wait=1.0), 3)
            except (asyncio.TimeoutError, Exception):
                pass
        if x.transport is not None:
            x.abort()
