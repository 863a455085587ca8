"""Fixtures for the Vireo interop suite.

The suite drives the real `vireo` binary (built by run.sh; override the path
with VIREO_BIN) with slixmpp, a third-party XMPP client, and with raw sockets
for hostile input.  Every wait is bounded so that a broken server makes tests
fail fast instead of hanging.

Environment knobs:
  VIREO_BIN           path of the binary (default: <repo>/target/debug/vireo)
  VIREO_TEST_LOG      log filter for the server under test (VIREO_LOG and
                      RUST_LOG; default: the server's own default)
  VIREO_TEST_KEEP=1   keep the temporary data dirs and logs (and, under
                      PostgreSQL, the cluster and its databases)
  VIREO_TEST_STORAGE  the store of every server under test: `embedded` (the
                      default: redb in the data dir) or `postgresql`: one
                      throwaway PostgreSQL cluster for the session
                      (postgres.py, started at the first server), a fresh
                      database `vireo_<n>` for each VireoServer (kept across
                      its restart() and kill9(), dropped at cleanup), passed
                      as VIREO_DB_* in VireoServer.env(). Tests of the
                      embedded store's own files are marked
                      `@pytest.mark.embedded_store` and skipped there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pytest
import pytest_asyncio
import slixmpp

import postgres

REPO_ROOT = Path(__file__).resolve().parents[3]
VIREO_BIN = Path(os.environ.get("VIREO_BIN", REPO_ROOT / "target" / "debug" / "vireo"))
DOMAIN = "localhost"

STARTUP_TIMEOUT = 20.0  # server start until the c2s ports accept TCP
SHUTDOWN_TIMEOUT = 10.0  # SIGTERM until exit, then SIGKILL
CONNECT_TIMEOUT = 10.0  # TCP + TLS + SASL + bind
WAIT = 5.0  # waiting for one stanza/event
QUIET = 1.5  # how long "nothing arrives" is observed
CLI_TIMEOUT = 30.0
TEST_TIMEOUT = 120  # per test, pytest-timeout

STREAMS_NS = "http://etherx.jabber.org/streams"
STREAM_ERR_NS = "urn:ietf:params:xml:ns:xmpp-streams"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
STREAM_HEADER = (
    "<?xml version='1.0'?>"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    f"to='{DOMAIN}' version='1.0'>"
)

# slixmpp is chatty at INFO and its logs end up in failure reports; keep
# warnings and errors only.
logging.getLogger("slixmpp").setLevel(logging.WARNING)


# --------------------------------------------------------------------------
# the storage of the servers under test (VIREO_TEST_STORAGE)
# --------------------------------------------------------------------------

_STORAGE_NAMES = {"": "embedded", "embedded": "embedded", "redb": "embedded",
                  "postgresql": "postgresql", "postgres": "postgresql", "pg": "postgresql"}
STORAGE_SETTING = os.environ.get("VIREO_TEST_STORAGE", "").strip().lower()
STORAGE = _STORAGE_NAMES.get(STORAGE_SETTING, STORAGE_SETTING)
ON_POSTGRES = STORAGE == "postgresql"

_pg_cluster: postgres.PgCluster | None = None
_pg_failure: str | None = None
_pg_databases_made = 0
_pg_stopped: str | None = None  # the description of the stopped cluster
_pg_lock = threading.RLock()  # servers may be made from threads (asyncio.to_thread)


def pg_cluster() -> postgres.PgCluster:
    """The session's PostgreSQL cluster, started at the first call (the
    first server). A cluster that failed to start fails every later test
    at once with the same reason."""
    assert ON_POSTGRES, "pg_cluster() outside VIREO_TEST_STORAGE=postgresql"
    with _pg_lock:
        return _pg_cluster_locked()


def _pg_cluster_locked() -> postgres.PgCluster:
    global _pg_cluster, _pg_failure
    if _pg_failure is not None:
        pytest.fail(f"the PostgreSQL cluster did not start: {_pg_failure}", pytrace=False)
    if _pg_cluster is None:
        try:
            _pg_cluster = postgres.start_cluster()
        except Exception as e:  # noqa: BLE001 - reported to every test
            _pg_failure = str(e)
            pytest.fail(f"the PostgreSQL cluster did not start: {e}", pytrace=False)
        logging.getLogger("interop").warning("storage: %s", _pg_cluster.describe())
    return _pg_cluster


def pg_new_database() -> str:
    """A fresh, empty database `vireo_<n>` in the session's cluster."""
    global _pg_databases_made
    with _pg_lock:
        cluster = pg_cluster()
        _pg_databases_made += 1
        name = f"vireo_{_pg_databases_made}"
    return cluster.create_database(name)


@pytest.fixture
def postgres_cluster() -> postgres.PgCluster:
    """The session's PostgreSQL cluster (e.g. to restart() it under a
    running server); skips the test unless VIREO_TEST_STORAGE=postgresql.
    Its restart() is felt by every server running at the time (the
    module-scoped ones too)."""
    if not ON_POSTGRES:
        pytest.skip("needs VIREO_TEST_STORAGE=postgresql")
    return pg_cluster()


# --------------------------------------------------------------------------
# pytest hooks
# --------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "embedded_store: the test reads or depends on the embedded store's own "
        "files (DATA/store/vireo.redb); skipped under VIREO_TEST_STORAGE=postgresql")
    if STORAGE not in ("embedded", "postgresql"):
        raise pytest.UsageError(
            f"VIREO_TEST_STORAGE={STORAGE_SETTING!r}: expected `embedded` or `postgresql`")
    if ON_POSTGRES and not postgres.available():
        raise pytest.UsageError(
            "VIREO_TEST_STORAGE=postgresql but the PostgreSQL server binaries were "
            "not found: install Debian's postgresql package (.ci/run does) or set "
            "VIREO_TEST_PG_BINDIR")


def storage_description() -> str:
    if not ON_POSTGRES:
        return "embedded (redb in each server's data dir)"
    if _pg_cluster is not None or _pg_stopped is not None:
        where = _pg_cluster.describe() if _pg_cluster is not None else _pg_stopped
        return f"postgresql: {where}, {_pg_databases_made} databases for the servers under test"
    return (f"postgresql (a throwaway cluster from {postgres.find_bindir()}, "
            "started at the first server; a fresh database per server)")


def pytest_report_header(config):
    return [f"vireo storage: {storage_description()}"]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(f"vireo storage: {storage_description()}")


def pytest_sessionfinish(session, exitstatus):
    """Stop the session's cluster (atexit in postgres.py would too)."""
    global _pg_cluster, _pg_stopped
    if _pg_cluster is not None:
        cluster, _pg_cluster = _pg_cluster, None
        _pg_stopped = cluster.describe() + ", stopped"
        cluster.stop()


def pytest_collection_modifyitems(config, items):
    """Give every test a hard time limit unless it sets its own; under
    PostgreSQL, skip the tests of the embedded store's own files."""
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))
        marker = item.get_closest_marker("embedded_store")
        if ON_POSTGRES and marker is not None:
            why = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(
                reason="embedded store only (VIREO_TEST_STORAGE=postgresql)"
                + (f": {why}" if why else "")))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the tail of the server log(s) to every failing test report:
    the VireoServer fixtures', and those of any other server a fixture
    lists in `item.log_sources` (objects with `name` and `log_tail()`,
    e.g. the federation peers of federation_peers.py)."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    funcargs = getattr(item, "funcargs", {}) or {}
    seen = set()
    servers = [v for v in funcargs.values() if isinstance(v, VireoServer)]
    for value in servers + list(getattr(item, "log_sources", [])):
        if id(value) not in seen:
            seen.add(id(value))
            what = "vireo server" if isinstance(value, VireoServer) else "peer"
            rep.sections.append(
                (f"{what} log ({value.name}, last lines)", value.log_tail())
            )


# --------------------------------------------------------------------------
# the server under test
# --------------------------------------------------------------------------


def rss_kib(server) -> int:
    """The server process's resident memory now (VmRSS), in KiB."""
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def admin_accepts(path: Path) -> bool:
    """True when the admin socket at `path` takes a connection (a file
    left by a killed server does not)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(str(path))
            return True
    except OSError:
        return False


def unique_user(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class VireoServer:
    """One `vireo run` process with its own ports and data dir (and, under
    VIREO_TEST_STORAGE=postgresql, its own database, created at the first
    env() and kept until cleanup())."""

    # A subclass that runs another server (reference_peers.ProsodyServer)
    # sets this to False: it gets no database.
    uses_vireo_store = True

    def __init__(self, name: str):
        if not VIREO_BIN.exists():
            pytest.fail(
                f"vireo binary not found at {VIREO_BIN}; build it with "
                "`cargo build -p vireo` or run server/tests/interop/run.sh"
            )
        self.name = name
        self.domain = DOMAIN
        self.host = "127.0.0.1"
        self.root = Path(tempfile.mkdtemp(prefix="vireo-it-"))
        self.data_dir = self.root / "data"
        self.log_path = self.root / "vireo.log"
        # All six at once: ports from separate calls may repeat (a CI run
        # once got the same port for c2s and HTTPS, and the server refused
        # the configuration). Federation and HTTP are on by default.
        (self.c2s_port, self.c2s_tls_port, self.s2s_port, self.s2s_tls_port,
         self.http_port, self.https_port) = free_ports(6)
        self.proc: subprocess.Popen | None = None
        self.last_exit_code: int | None = None
        self.starts = 0
        # VIREO_TEST_STORAGE=postgresql: the database of this server
        # (created at the first env(), i.e. the first start or CLI call).
        self.pg_database: str | None = None

    def storage_env(self) -> dict[str, str]:
        """The VIREO_DB_* variables of this server's store: none for the
        embedded store; under PostgreSQL those of its own database."""
        if not ON_POSTGRES or not self.uses_vireo_store:
            return {}
        if self.pg_database is None:
            self.pg_database = pg_new_database()
        return pg_cluster().server_env(self.pg_database)

    # -- process control ---------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIREO_")}
        env.update(
            VIREO_DOMAIN=self.domain,
            VIREO_DATA_PATH=str(self.data_dir),
            VIREO_BIND=self.host,
            VIREO_C2S_PORT=str(self.c2s_port),
            VIREO_C2S_TLS_PORT=str(self.c2s_tls_port),
            VIREO_S2S_PORT=str(self.s2s_port),
            VIREO_S2S_TLS_PORT=str(self.s2s_tls_port),
            VIREO_HTTP_PORT=str(self.http_port),
            VIREO_HTTPS_PORT=str(self.https_port),
            RUST_BACKTRACE="1",
            NO_COLOR="1",
        )
        env.update(self.storage_env())
        # hub_task at debug logs "offline message stored", which tests use
        # as the sync point for durability.
        level = os.environ.get("VIREO_TEST_LOG") or "info,xmpp_runtime::hub_task=debug,xmpp_core::hub=debug"
        env["VIREO_LOG"] = level
        env["RUST_LOG"] = level
        return env

    def wait_log(self, needle: str, timeout: float = 10.0) -> None:
        """Wait until the server log contains `needle` (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the server log after {timeout}s")

    def _log_marker(self, text: str) -> None:
        with open(self.log_path, "ab") as f:
            f.write(f"\n===== [interop] {text} =====\n".encode())

    def run_args(self) -> list[str]:
        """The command line `start()` runs."""
        return [str(VIREO_BIN), "run"]

    def ready(self) -> bool:
        """Whether the started server serves: both c2s listeners, and the
        admin socket too (`vireo adduser` right after start talks to it, and
        it opens after the c2s listeners)."""
        return (port_accepts(self.c2s_port) and port_accepts(self.c2s_tls_port)
                and admin_accepts(self.data_dir / "admin.sock"))

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        env = self.env()
        storage = (f"postgresql database {env['VIREO_DB_NAME']} on "
                   f"{env['VIREO_DB_HOST']}:{env['VIREO_DB_PORT']}"
                   if "VIREO_DB_NAME" in env else "embedded")
        self._log_marker(f"start #{self.starts}: {' '.join(self.run_args())} (storage: {storage})")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.run_args(),
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(
                    f"vireo exited with code {code} during startup; log:\n{self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.05)
        self._terminate(SHUTDOWN_TIMEOUT)
        pytest.fail(
            f"vireo did not accept TCP on 127.0.0.1:{self.c2s_port} and "
            f":{self.c2s_tls_port} within {timeout}s; log:\n{self.log_tail()}"
        )

    def _terminate(self, timeout: float) -> int | None:
        """SIGTERM, wait, SIGKILL. Returns the exit code of the SIGTERM path
        (None if it had to be killed)."""
        proc = self.proc
        if proc is None:
            return self.last_exit_code
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._log_marker(f"no exit {timeout}s after SIGTERM: SIGKILL")
                proc.kill()
                proc.wait()
                code = None
        else:
            code = proc.returncode
        self.proc = None
        self.last_exit_code = code
        self._log_marker(f"stopped, exit code {code}")
        return code

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> int | None:
        """Graceful stop; returns the exit code (None if SIGKILL was needed)."""
        return self._terminate(timeout)

    def restart(self) -> int | None:
        """SIGTERM, wait, start again on the same ports and data dir.
        Returns the exit code of the stopped process."""
        code = self.stop()
        self.start()
        return code

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(SHUTDOWN_TIMEOUT)
        self.last_exit_code = self.proc.returncode
        self.proc = None
        self._log_marker("killed with SIGKILL")

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self) -> None:
        self._terminate(SHUTDOWN_TIMEOUT)
        if os.environ.get("VIREO_TEST_KEEP") != "1":
            shutil.rmtree(self.root, ignore_errors=True)
            if self.pg_database is not None and _pg_cluster is not None:
                try:
                    _pg_cluster.drop_database(self.pg_database)
                except Exception as e:  # noqa: BLE001 - the cluster goes at the end anyway
                    logging.getLogger("interop").warning(
                        "dropping %s failed: %s", self.pg_database, e)
                self.pg_database = None

    def log_tail(self, lines: int = 150) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- admin CLI ---------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None,
            timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        """Run `vireo ARGS...` against this server's data dir."""
        return subprocess.run(
            [str(VIREO_BIN), *args],
            env=self.env(),
            cwd=self.root,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def jid(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def adduser(self, user: str, password: str) -> str:
        """`vireo adduser user@domain` with the password on stdin; asserts success."""
        jid = self.jid(user)
        res = self.cli("adduser", jid, stdin=password + "\n")
        assert res.returncode == 0, (
            f"vireo adduser {jid} failed ({res.returncode}):\n"
            f"stdout: {res.stdout}\nstderr: {res.stderr}"
        )
        return jid

    def new_account(self, prefix: str = "u") -> "Account":
        user = unique_user(prefix)
        password = secrets.token_urlsafe(12)
        return Account(self.adduser(user, password), password)


@dataclass
class Account:
    jid: str
    password: str


def _start_server(name: str) -> VireoServer:
    srv = VireoServer(name)
    try:
        srv.start()
    except BaseException:
        srv.cleanup()
        raise
    return srv


@pytest.fixture(scope="module")
def server(request):
    """A server shared by the tests of one module (do not restart/kill it)."""
    srv = _start_server(request.module.__name__)
    yield srv
    srv.cleanup()


@pytest.fixture
def own_server(request):
    """A fresh server for one test; free to restart(), kill9() or stop() it."""
    srv = _start_server(request.node.name)
    yield srv
    srv.cleanup()


# --------------------------------------------------------------------------
# slixmpp client
# --------------------------------------------------------------------------


class ConnectError(AssertionError):
    pass


class XmppClient:
    """A slixmpp ClientXMPP bound to a test server, recording what arrives."""

    def __init__(self, server: VireoServer, jid: str, password: str, *,
                 resource: str | None = None, direct_tls: bool = False,
                 mech: str | None = None, name: str | None = None):
        self.server = server
        self.name = name or (jid if resource is None else f"{jid}/{resource}")
        self.direct_tls = direct_tls
        self.port = server.c2s_tls_port if direct_tls else server.c2s_port
        full = jid if resource is None else f"{jid}/{resource}"
        x = slixmpp.ClientXMPP(full, password, sasl_mech=mech)
        self.xmpp = x
        # The server's certificate is self-signed: accept it.
        x.ssl_context.check_hostname = False
        x.ssl_context.verify_mode = ssl.CERT_NONE
        # With a custom address slixmpp tries direct TLS, then STARTTLS, then
        # plaintext: allow exactly one of them.
        x.enable_direct_tls = direct_tls
        x.enable_starttls = not direct_tls
        x.enable_plaintext = False
        x.use_ipv6 = False
        # Handle subscriptions explicitly in the tests.
        x.auto_authorize = None
        x.auto_subscribe = False
        x.whitespace_keepalive = False

        self.received: dict[str, list] = {"message": [], "presence": [], "roster": []}
        self._taken: dict[str, set[int]] = {k: set() for k in self.received}
        self._changed = asyncio.Event()
        self.stream_errors: list = []
        self.auth_failures: list = []
        self.events: list[str] = []
        self.mech_used: str | None = None
        self.session_started = asyncio.Event()
        self.auth_failed = asyncio.Event()
        self.all_auth_failed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.connection_failed = asyncio.Event()

        x.add_event_handler("session_start", self._on_session_start)
        x.add_event_handler("auth_success", self._on_auth_success)
        x.add_event_handler("failed_auth", self._on_failed_auth)
        x.add_event_handler("failed_all_auth", self._on_failed_all_auth)
        x.add_event_handler("disconnected", self._on_disconnected)
        x.add_event_handler("connection_failed", self._on_connection_failed)
        x.add_event_handler("stream_error", self._on_stream_error)
        x.add_event_handler("message", lambda m: self._record("message", m))
        x.add_event_handler("presence", lambda p: self._record("presence", p))
        x.add_event_handler("roster_update", self._on_roster_update)

    # -- event plumbing ----------------------------------------------------

    def _note(self, what: str) -> None:
        self.events.append(what)
        self._changed.set()

    def _record(self, kind: str, stanza) -> None:
        self.received[kind].append(stanza)
        self._changed.set()

    def _on_session_start(self, _):
        self.session_started.set()
        self._note("session_start")

    def _on_auth_success(self, _):
        mech = self.xmpp.plugin["feature_mechanisms"].mech
        self.mech_used = mech.name if mech is not None else None
        self._note(f"auth_success {self.mech_used}")

    def _on_failed_auth(self, stanza):
        self.auth_failures.append(stanza)
        self.auth_failed.set()
        self._note("failed_auth")

    def _on_failed_all_auth(self, _):
        self.all_auth_failed.set()
        self._note("failed_all_auth")

    def _on_disconnected(self, reason):
        self.disconnected.set()
        self._note(f"disconnected {reason!r}")

    def _on_connection_failed(self, reason):
        self.connection_failed.set()
        self._note(f"connection_failed {reason!r}")

    def _on_stream_error(self, error):
        self.stream_errors.append(error)
        self._note(f"stream_error {error['condition']}")

    def _on_roster_update(self, iq):
        # get_roster() results also come through this event; keep pushes only.
        if iq["type"] == "set":
            self._record("roster", iq)

    # -- connection --------------------------------------------------------

    @property
    def jid(self) -> slixmpp.JID:
        """The bound JID (full JID after resource binding)."""
        return self.xmpp.boundjid

    async def connect(self, *, timeout: float = CONNECT_TIMEOUT,
                      expect_mech: str | None = "SCRAM-SHA-256",
                      roster: bool = True, presence: bool = True) -> "XmppClient":
        """Connect and wait for session_start; then fetch the roster (so this
        resource is 'interested' in roster pushes) and send initial presence."""
        self.session_started.clear()
        self.disconnected.clear()
        self.xmpp.connect(self.server.host, self.port)
        outcome = await wait_any(
            {
                "session_start": self.session_started,
                "failed_auth": self.auth_failed,
                "disconnected": self.disconnected,
                "connection_failed": self.connection_failed,
            },
            timeout,
        )
        if outcome != "session_start":
            self.xmpp.cancel_connection_attempt()
            self.xmpp.abort()
            raise ConnectError(
                f"{self.name}: no session on port {self.port} "
                f"({'direct TLS' if self.direct_tls else 'STARTTLS'}): got {outcome}; "
                f"events={self.events}"
            )
        if expect_mech is not None:
            assert self.mech_used == expect_mech, (
                f"{self.name}: slixmpp authenticated with {self.mech_used}, "
                f"expected {expect_mech}"
            )
        if roster:
            await asyncio.wait_for(self.xmpp.get_roster(timeout=WAIT), WAIT + 1)
        if presence:
            self.xmpp.send_presence()
        return self

    async def try_connect(self, *, timeout: float = CONNECT_TIMEOUT) -> str:
        """Attempt a login without asserting; returns 'session_start',
        'failed_auth', 'disconnected', 'connection_failed' or 'timeout'."""
        self.xmpp.connect(self.server.host, self.port)
        outcome = await wait_any(
            {
                "session_start": self.session_started,
                "failed_auth": self.auth_failed,
                "disconnected": self.disconnected,
                "connection_failed": self.connection_failed,
            },
            timeout,
        )
        return outcome

    async def close(self, wait: float = 2.0) -> None:
        x = self.xmpp
        x.cancel_connection_attempt()
        if x.transport is not None:
            try:
                await asyncio.wait_for(x.disconnect(wait=wait), wait + 2)
            except (asyncio.TimeoutError, Exception):
                pass
        if x.transport is not None:
            x.abort()
        x.cancel_connection_attempt()

    def abort(self) -> None:
        """Drop the TCP connection without closing the stream."""
        self.xmpp.cancel_connection_attempt()
        self.xmpp.abort()

    async def wait_disconnected(self, timeout: float = WAIT) -> bool:
        try:
            await asyncio.wait_for(self.disconnected.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # -- sending -----------------------------------------------------------

    def send_chat(self, to: str, body: str, mtype: str = "chat") -> None:
        self.xmpp.send_message(mto=slixmpp.JID(to), mbody=body, mtype=mtype)

    async def sync(self) -> None:
        """Round-trip to the server (roster get): everything sent before has
        been processed by the server once this returns (stanzas of one
        session are handled in order)."""
        await asyncio.wait_for(self.xmpp.get_roster(timeout=WAIT), WAIT + 1)

    async def fetch_roster(self) -> dict:
        """A full roster get (no version): {JID: item} as stored on the server."""
        iq = self.xmpp.Iq()
        iq["type"] = "get"
        iq.enable("roster")
        result = await asyncio.wait_for(iq.send(timeout=WAIT), WAIT + 1)
        return dict(result["roster"]["items"])

    # -- receiving ---------------------------------------------------------

    async def wait_for(self, kind: str, pred: Callable, *, timeout: float = WAIT,
                       desc: str = "a matching stanza"):
        """First not-yet-consumed received stanza of `kind` matching `pred`
        (including ones that arrived before the call)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, st in enumerate(self.received[kind]):
                if i not in self._taken[kind] and pred(st):
                    self._taken[kind].add(i)
                    return st
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = "\n  ".join(str(s) for s in self.received[kind][-10:]) or "(none)"
                raise AssertionError(
                    f"{self.name}: no {kind} ({desc}) within {timeout}s. "
                    f"Last {kind} stanzas received:\n  {got}\nevents={self.events}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def collect(self, kind: str, pred: Callable, duration: float = QUIET) -> list:
        """All stanzas of `kind` matching `pred` received by now + `duration`."""
        await asyncio.sleep(duration)
        return [s for s in self.received[kind] if pred(s)]

    async def wait_message(self, *, sender: str | None = None, body: str | None = None,
                           timeout: float = WAIT):
        def pred(m):
            if m["type"] == "error":
                return False
            if body is not None and m["body"] != body:
                return False
            if sender is not None and m["from"].bare != slixmpp.JID(sender).bare:
                return False
            return True
        return await self.wait_for("message", pred, timeout=timeout,
                                   desc=f"message from {sender} body={body!r}")

    async def wait_presence(self, sender: str, ptype: str = "available", *,
                            full: bool = False, timeout: float = WAIT):
        """Presence of type `ptype` from `sender` (bare match unless full)."""
        want = slixmpp.JID(sender)

        def pred(p):
            frm = p["from"]
            if full:
                ok = frm.full == want.full
            else:
                ok = frm.bare == want.bare
            return ok and p["type"] == ptype
        return await self.wait_for("presence", pred, timeout=timeout,
                                   desc=f"presence type={ptype} from {sender}")


async def wait_any(events: dict[str, asyncio.Event], timeout: float) -> str:
    """Name of the first event set within `timeout`, or 'timeout'."""
    for name, ev in events.items():
        if ev.is_set():
            return name
    tasks = {asyncio.ensure_future(ev.wait()): name for name, ev in events.items()}
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
    if not done:
        return "timeout"
    # Prefer the order of the dict when several are set at once.
    for name, ev in events.items():
        if ev.is_set():
            return name
    return "timeout"


class ClientFactory:
    """Creates clients for one test and closes all of them afterwards."""

    def __init__(self):
        self.clients: list[XmppClient] = []

    def client(self, server: VireoServer, account: Account | str,
               password: str | None = None, **kw) -> XmppClient:
        if isinstance(account, Account):
            jid, pw = account.jid, account.password
        else:
            jid, pw = account, password
        assert pw is not None
        c = XmppClient(server, jid, pw, **kw)
        self.clients.append(c)
        return c

    async def online(self, server: VireoServer, account: Account | str,
                     password: str | None = None, **kw) -> XmppClient:
        """client(...) + connect() with roster fetch and initial presence."""
        c = self.client(server, account, password, **kw)
        await c.connect()
        return c

    async def close_all(self):
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)


@pytest_asyncio.fixture
async def xmpp():
    factory = ClientFactory()
    yield factory
    await factory.close_all()


# --------------------------------------------------------------------------
# raw sockets for hostile input
# --------------------------------------------------------------------------


@dataclass
class RawResult:
    data: bytes
    closed: bool  # the server closed the TCP connection (EOF/reset)
    elements: list = field(default_factory=list)  # top-level elements
    header: dict | None = None  # attributes of the server's stream header
    stream_closed: bool = False  # the server sent </stream:stream>

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def stream_error(self) -> str | None:
        """Condition of the stream error the server sent, if any."""
        for el in self.elements:
            if el.tag == f"{{{STREAMS_NS}}}error":
                for child in el:
                    if child.tag.startswith(f"{{{STREAM_ERR_NS}}}") and not child.tag.endswith("}text"):
                        return child.tag.split("}", 1)[1]
        # Fallback for output the pull parser could not handle (e.g. an error
        # written without a stream header).
        m = re.search(
            r"<(?:[\w.-]+:)?error\b.*?<([a-z-]+)\s+xmlns\s*=\s*['\"]"
            + re.escape(STREAM_ERR_NS) + r"['\"]",
            self.text, re.S)
        return m.group(1) if m else None

    def find(self, tag: str) -> list:
        return [el for el in self.elements if el.tag == tag]

    def describe(self) -> str:
        return f"closed={self.closed} stream_closed={self.stream_closed} data={self.text!r}"


def parse_stream(data: bytes) -> tuple[dict | None, list, bool]:
    """Parse what a server wrote on a stream: (header attrs, top-level
    elements, whether the stream was closed)."""
    parser = ET.XMLPullParser(("start", "end"))
    header = None
    elements = []
    closed = False
    depth = 0
    try:
        parser.feed(data)
        for event, el in parser.read_events():
            if event == "start":
                depth += 1
                if depth == 1:
                    header = dict(el.attrib)
            else:
                depth -= 1
                if depth == 1:
                    elements.append(el)
                elif depth == 0:
                    closed = True
    except ET.ParseError:
        pass
    return header, elements, closed


class RawConn:
    """A raw (optionally TLS) connection to a c2s port."""

    def __init__(self, port: int, *, tls: bool = False, timeout: float = WAIT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=DOMAIN)
        self.buf = b""
        self.eof = False

    def send(self, data: bytes | str) -> None:
        """Send in chunks, reading whatever the server says in between: a
        server that refuses a huge stanza answers and closes while the
        rest is still being sent, and its answer must not be lost to the
        write that then fails (over TLS, reads after that fail too)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        view = memoryview(data)
        while view:
            if self._answered():
                return
            try:
                sent = self.sock.send(view[:16384])
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                # The server stopped reading: what it said before closing
                # is read next (or was read above).
                return
            view = view[sent:]

    def _answered(self) -> bool:
        """Read what is already waiting, without blocking; True once the
        server closed its stream or the connection."""
        pending = getattr(self.sock, "pending", lambda: 0)()
        readable = pending > 0 or select.select([self.sock], [], [], 0)[0]
        if readable and not self.eof:
            self.read_until(lambda _b: False, timeout=0.01)
        return self.eof or b"</stream:stream>" in self.buf

    def read_until(self, pred: Callable[[bytes], bool], timeout: float = WAIT) -> bool:
        """Read until pred(buffer) holds, EOF, or timeout. True if pred held."""
        deadline = time.monotonic() + timeout
        while not pred(self.buf):
            if self.eof:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, ssl.SSLError, OSError):
                self.eof = True
                return False
            if not chunk:
                self.eof = True
                return False
            self.buf += chunk
        return True

    def read_until_closed(self, timeout: float = WAIT) -> RawResult:
        self.read_until(lambda _b: False, timeout)
        return self.result()

    def result(self) -> RawResult:
        header, elements, stream_closed = parse_stream(self.buf)
        return RawResult(self.buf, self.eof, elements, header, stream_closed)

    def open_stream(self, timeout: float = WAIT) -> RawResult:
        """Send the client stream header and wait for the server's features."""
        self.send(STREAM_HEADER)
        self.read_until(lambda b: b"features>" in b, timeout)
        return self.result()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def raw_exchange(port: int, chunks: Iterable[bytes | str], *, tls: bool = False,
                 wait_features: bool = True, timeout: float = WAIT) -> RawResult:
    """Open a stream (optionally waiting for the features), send `chunks`,
    then read until the server closes the connection or `timeout`."""
    conn = RawConn(port, tls=tls, timeout=timeout)
    try:
        if wait_features:
            conn.open_stream(timeout)
        for chunk in chunks:
            conn.send(chunk)
        return conn.read_until_closed(timeout)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# servers started with a configuration (`vireo run --config PATH`)
# --------------------------------------------------------------------------


class ConfiguredVireoServer(VireoServer):
    """`vireo run --config PATH` with PATH a file or a configuration tree;
    the VIREO_* overrides of VireoServer.env() still give it its own ports
    and data dir. Set `config_path` before start()."""

    def __init__(self, name: str, config_path: Path | None = None):
        super().__init__(name)
        self.config_path = config_path

    def run_args(self) -> list[str]:
        args = [str(VIREO_BIN), "run"]
        if self.config_path is not None:
            args += ["--config", str(self.config_path)]
        return args

    def cli_config(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """`vireo -c CONFIG ARGS...` (the configuration the server runs with)."""
        assert self.config_path is not None
        return self.cli("-c", str(self.config_path), *args, **kw)

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, "not running"
        self._log_marker(f"sending signal {sig}")
        self.proc.send_signal(sig)


@pytest.fixture
def configured_server(request):
    """A ConfiguredVireoServer for one test, not started yet: write its
    configuration, set `config_path`, then start()."""
    srv = ConfiguredVireoServer(request.node.name)
    yield srv
    srv.cleanup()
