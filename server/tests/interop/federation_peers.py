"""Federation peers: Prosody 0.12 and ejabberd 23.01 (Debian packages) as
real s2s counterparts on loopback, for tests that federate them with each
other or with Vireo.

Each peer serves one domain with a c2s (STARTTLS) and an s2s listener on
free loopback ports, a certificate from a throwaway CA (throwaway_ca.py),
and its own config, data and logs under a temporary directory. It runs as
its own system user through setpriv (see /work/shared/REFERENCE-SERVERS.md)
and is stopped by PID. Two things make federation work without DNS:

  routes       {domain: s2s port} of the other test domains: every test
               domain resolves to 127.0.0.1 but its s2s listener is on a
               free port, which each peer is told statically (ejabberd: SRV
               records in the Erlang resolver; Prosody: a small module, see
               PROSODY_ROUTES_MODULE);
  trusted_cas  extra CA certificates to verify peers with, besides the CA
               that issued the peer's own certificate.

Both can be changed until start() (they are written to the config then), so
two peers can be told about each other: see federate().

    ca = ThrowawayCA(ca_dir)
    with ProsodyPeer("p.localhost", ca=ca) as p, EjabberdPeer("e.localhost", ca=ca) as e:
        federate(p, e)
        p.add_user("alice", "pw"); e.add_user("bob", "pw")
        p.start(); e.start()
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable

from conftest import STARTUP_TIMEOUT, free_ports, port_accepts
from throwaway_ca import ThrowawayCA

STOP_TIMEOUT = 15.0
CTL_TIMEOUT = 30.0


def peers_available() -> str | None:
    """None when both peers can run here, else what is missing."""
    missing = [b for b in ("prosody", "prosodyctl", "ejabberdctl", "setpriv", "openssl")
               if shutil.which(b) is None]
    if missing:
        return "missing " + ", ".join(missing) + " (Debian packages prosody, ejabberd, util-linux)"
    return None


def federate(*peers: "FederationPeer") -> None:
    """Tell every peer where the others' s2s listeners are and trust their CAs."""
    for p in peers:
        for q in peers:
            if q is not p:
                p.routes[q.domain] = q.s2s_port
                if q.ca_path not in p.trusted_cas and q.ca_path != p.ca_path:
                    p.trusted_cas.append(q.ca_path)


class FederationPeer:
    """What both peers share: directory, certificate, process and logs.

    Subclasses write their config (write_config), say how to run (command)
    and when they are ready (ready), and register accounts (_register)."""

    user = ""  # the system user the server runs as
    kind = ""
    registers_offline = False  # whether _register works while stopped
    spare_ports = 0  # more free ports the server needs (self._spare_ports)

    def __init__(self, domain: str, *, ca: ThrowawayCA | None = None,
                 routes: dict[str, int] | None = None, trusted_cas: Iterable[Path] = (),
                 name: str | None = None):
        self.domain = domain
        self.name = name or f"{self.kind} {domain}"
        self.host = "127.0.0.1"
        self.routes: dict[str, int] = dict(routes or {})
        self.trusted_cas: list[Path] = [Path(p) for p in trusted_cas]
        # Not under pytest's tmp_path: the server's user cannot enter root's
        # directories there.
        self.root = Path(tempfile.mkdtemp(prefix=f"vireo-fed-{self.kind}-"))
        os.chmod(self.root, 0o755)
        self.c2s_port, self.s2s_port, *self._spare_ports = free_ports(2 + self.spare_ports)
        self.c2s_tls_port = None  # XmppClient(direct_tls=True) is not served
        self.ca = ca or ThrowawayCA(self._mkdir("ca"))
        # The server's copies of its certificate and key, readable by it.
        cert, key = self.ca.issue(domain)
        self.cert_path = self.root / "cert.pem"
        self.key_path = self.root / "key.pem"
        shutil.copyfile(cert, self.cert_path)
        shutil.copyfile(key, self.key_path)
        self.proc: subprocess.Popen | None = None
        self.users: dict[str, str] = {}
        self._unregistered: list[str] = []
        self._console = self.root / "console.log"

    @property
    def ca_path(self) -> Path:
        """The certificate of the CA that issued this peer's certificate."""
        return self.ca.cert

    def jid(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def _mkdir(self, rel: str) -> Path:
        d = self.root / rel
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _trust_bundle(self) -> Path:
        """One PEM file with every CA this peer verifies s2s peers with."""
        bundle = self.root / "trusted-cas.pem"
        bundle.write_text("".join(Path(p).read_text() for p in [self.ca_path, *self.trusted_cas]))
        return bundle

    def _chown(self) -> None:
        subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(self.root)], check=True)
        os.chmod(self.key_path, 0o600)

    def _as_user(self, *argv: str) -> list[str]:
        return ["setpriv", f"--reuid={self.user}", f"--regid={self.user}",
                "--init-groups", *argv]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ERL_", "VIREO_"))}
        env["HOME"] = str(self.root)
        return env

    # -- to be provided by the subclasses --------------------------------

    def write_config(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        # Both servers open their listeners last, once their hosts are up.
        return port_accepts(self.c2s_port) and port_accepts(self.s2s_port)

    def _register(self, user: str, password: str) -> None:
        raise NotImplementedError

    def log_text(self) -> str:
        raise NotImplementedError

    # -- accounts ----------------------------------------------------------

    def add_user(self, user: str, password: str) -> str:
        """Create an account (now if running, else on the next start);
        returns its JID."""
        self.users[user] = password
        if self.is_running() or self.registers_offline:
            self._register(user, password)
        else:
            self._unregistered.append(user)
        return self.jid(user)

    def _ctl(self, argv: list[str]) -> None:
        res = subprocess.run(argv, env=self.env(), cwd=self.root, capture_output=True,
                             text=True, timeout=CTL_TIMEOUT, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise AssertionError(
                f"{self.name}: {' '.join(argv)} failed ({res.returncode}):\n"
                f"{res.stdout}{res.stderr}\n--- log ---\n{self.log_tail()}")

    # -- process control ---------------------------------------------------

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Write the config (with the current routes and CAs), start, wait
        until both listeners accept, then create the pending accounts."""
        assert not self.is_running(), f"{self.name} already running"
        self.write_config()
        self._chown()
        with open(self._console, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.root, env=self.env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise RuntimeError(f"{self.name} exited with {code} during startup:\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not listen on {self.c2s_port} and "
                                   f"{self.s2s_port} within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)
        while self._unregistered:
            user = self._unregistered[0]
            self._register(user, self.users[user])
            self._unregistered.pop(0)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (a clean shutdown), wait, then SIGKILL whatever is left
        in the process group it started (its own: start_new_session)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            for pid in self._signal_targets_of(proc):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    def _signal_targets_of(self, proc: subprocess.Popen) -> list[int]:
        """The PIDs to send SIGTERM to for a clean stop."""
        return [proc.pid]

    def restart(self) -> None:
        """Stop and start again with the same ports, data and accounts."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if os.environ.get("VIREO_TEST_KEEP") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "FederationPeer":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- logs --------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 150) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"

    def wait_log(self, needle: str, timeout: float = 10.0) -> None:
        """Wait until the server's log contains `needle` (bounded)."""
        deadline = time.monotonic() + timeout
        while needle not in self.log_text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the log of {self.name} after "
                                     f"{timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)


# --------------------------------------------------------------------------
# Prosody 0.12
# --------------------------------------------------------------------------

# Prosody finds a domain's s2s port through DNS SRV. The stock way to add
# records, the `unbound` option's local-data (with lua-unbound), takes one
# value per option name: lua-unbound 1.0 crashes (SIGSEGV) on a list, so
# only two domains could be routed (the names "local-data:" and "local-data"
# both work, and each route needs its local-zone too). This module instead
# points Prosody's s2s resolver at 127.0.0.1:PORT for each domain of
# `test_s2s_routes`, and leaves every other domain to DNS.
PROSODY_ROUTES_MODULE = """\
-- Generated by server/tests/interop/federation_peers.py: static s2s routes
-- for tests on loopback. Not for production.
local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";
local routes = module:get_option("test_s2s_routes", {});
local dns_new = service.new;

function service.new(hostname, service_name, protocol, extra)
	local port = routes[hostname];
	if port and service_name == "xmpp-server" then
		module:log("debug", "s2s route for %s: 127.0.0.1:%d", hostname, port);
		return basic.new("127.0.0.1", port, protocol, extra);
	elseif port then -- no direct TLS (xmpps-server) there
		return { next = function (_, cb) cb(nil); end };
	end
	return dns_new(hostname, service_name, protocol, extra);
end

function module.unload()
	service.new = dns_new;
end
"""

PROSODY_CONFIG = """\
-- Generated by server/tests/interop/federation_peers.py. Not for production.
pidfile = "{root}/prosody.pid"
data_path = "{root}/data"
plugin_paths = {{ "{root}/plugins" }}
log = {{ debug = "{root}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ {s2s} }}
s2s_direct_tls_ports = {{ }}
http_ports = {{ {http_ports} }}
https_ports = {{ }}
use_ipv6 = false
c2s_require_encryption = true
s2s_require_encryption = {require_encryption}
s2s_secure_auth = {secure_auth}
authentication = "internal_hashed"
password_hash = "SHA-256"
-- s2s, presence, message, iq, offline and s2s_auth_certs are always loaded.
modules_enabled = {{ "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix"; "test_s2s_routes";{extra_modules} }}
ssl = {{ certificate = "{cert}"; key = "{key}"; cafile = "{cafile}" }}
test_s2s_routes = {{ {routes} }}
{extra_config}
VirtualHost "{domain}"
"""


def _lua_bool(v: bool) -> str:
    return "true" if v else "false"


class ProsodyPeer(FederationPeer):
    """Prosody 0.12 serving `domain`, federating over its s2s port.

    s2s_secure_auth=False lets it fall back to dialback when a peer's
    certificate is not trusted; s2s_require_encryption refuses s2s
    without TLS."""

    user = "prosody"
    kind = "prosody"
    registers_offline = True
    # For subclasses: plain-HTTP ports, more modules, and more global
    # settings (Lua, written before the VirtualHost); see ProsodyWebPeer in
    # test_browser_prosody.py.
    http_ports: tuple[int, ...] = ()
    extra_modules: tuple[str, ...] = ()
    extra_config = ""

    def __init__(self, domain: str = "p.localhost", *, s2s_secure_auth: bool = False,
                 s2s_require_encryption: bool = True, **kw):
        super().__init__(domain, **kw)
        self.s2s_secure_auth = s2s_secure_auth
        self.s2s_require_encryption = s2s_require_encryption
        self.config = self.root / "prosody.cfg.lua"
        self._mkdir("data")
        (self._mkdir("plugins") / "mod_test_s2s_routes.lua").write_text(PROSODY_ROUTES_MODULE)

    def write_config(self) -> None:
        routes = " ".join(f'["{d}"] = {p};' for d, p in sorted(self.routes.items()))
        self.config.write_text(PROSODY_CONFIG.format(
            root=self.root, c2s=self.c2s_port, s2s=self.s2s_port, domain=self.domain,
            require_encryption=_lua_bool(self.s2s_require_encryption),
            secure_auth=_lua_bool(self.s2s_secure_auth), cert=self.cert_path,
            key=self.key_path, cafile=self._trust_bundle(), routes=routes,
            http_ports="; ".join(str(p) for p in self.http_ports),
            extra_modules="".join(f' "{m}";' for m in self.extra_modules),
            extra_config=self.extra_config))

    def command(self) -> list[str]:
        return self._as_user("prosody", "-F", "--config", str(self.config))

    def _register(self, user: str, password: str) -> None:
        # prosodyctl writes the account files directly: it works whether
        # Prosody runs or not.
        self.write_config()
        self._chown()
        self._ctl(self._as_user("prosodyctl", "--config", str(self.config),
                                "register", user, self.domain, password))

    def log_text(self) -> str:
        return self._read(self._console) + self._read(self.root / "prosody.log")


# --------------------------------------------------------------------------
# ejabberd 23.01
# --------------------------------------------------------------------------

EJABBERD_CONFIG = """\
# Generated by server/tests/interop/federation_peers.py. Not for production.
# No shaper (Debian's default shapes every client to 3,000 B/s).
loglevel: {loglevel}
log_rotate_count: 0
hosts:
  - "{domain}"
certfiles:
  - "{cert}"
  - "{key}"
ca_file: "{cafile}"
s2s_cafile: "{cafile}"
s2s_use_starttls: {starttls}
{retry}s2s_protocol_options:
  - "no_sslv3"
  - "no_tlsv1"
  - "no_tlsv1_1"
c2s_protocol_options:
  - "no_sslv3"
  - "no_tlsv1"
  - "no_tlsv1_1"
listen:
  -
    port: {c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    starttls_required: true
  -
    port: {s2s}
    ip: "127.0.0.1"
    module: ejabberd_s2s_in
    max_stanza_size: 524288
auth_method: internal
auth_password_format: scram
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_disco: {{}}
  mod_offline: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_s2s_dialback: {{}}
"""

# ejabberdctl sources this; ERL_OPTIONS is split on spaces, so the -eval
# expression must have none.
EJABBERDCTL_CFG = """\
# Generated by server/tests/interop/federation_peers.py.
ERLANG_NODE={node}@localhost
ERL_DIST_PORT={dist}
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS='-env ERL_CRASH_DUMP_BYTES 0{eval}'
EJABBERD_PID_PATH={root}/ejabberd.pid
EJABBERD_CONFIG_PATH={root}/etc/ejabberd.yml
CONTRIB_MODULES_CONF_DIR={root}/etc/modules.d
"""

# The Erlang resolver without /etc/resolv.conf: re-reading it would clear
# the SRV records ERL_OPTIONS adds, and nothing here needs real DNS.
EJABBERD_INETRC = """\
%% Generated by server/tests/interop/federation_peers.py.
{resolv_conf, ""}.
"""


class EjabberdPeer(FederationPeer):
    """ejabberd 23.01 serving `domain`, federating over its s2s port.

    s2s_use_starttls: "required" (default), "optional" or "false".
    s2s_max_retry_delay: seconds; after an outgoing s2s connection fails,
    ejabberd bounces everything for that domain for a random time up to
    this (default 300), even once the peer is back."""

    user = "ejabberd"
    kind = "ejabberd"
    spare_ports = 1  # its Erlang distribution port

    def __init__(self, domain: str = "e.localhost", *, s2s_use_starttls: str = "required",
                 loglevel: str = "info", s2s_max_retry_delay: int | None = None, **kw):
        super().__init__(domain, **kw)
        self.s2s_use_starttls = s2s_use_starttls
        self.s2s_max_retry_delay = s2s_max_retry_delay
        self.loglevel = loglevel
        self.dist_port = self._spare_ports[0]
        for d in ("etc/modules.d", "log", "db"):
            self._mkdir(d)

    def write_config(self) -> None:
        etc = self.root / "etc"
        (etc / "ejabberd.yml").write_text(EJABBERD_CONFIG.format(
            loglevel=self.loglevel, domain=self.domain, cert=self.cert_path, key=self.key_path,
            cafile=self._trust_bundle(), starttls=self.s2s_use_starttls,
            retry=("" if self.s2s_max_retry_delay is None
                   else f"s2s_max_retry_delay: {self.s2s_max_retry_delay}\n"),
            c2s=self.c2s_port, s2s=self.s2s_port))
        # SRV records in the Erlang resolver's cache: ejabberd looks up
        # _xmpp-server._tcp.DOMAIN, and the system resolver cannot answer.
        rrs = ",".join(
            f'inet_db:add_rr("_xmpp-server._tcp.{d}",in,srv,31536000,{{0,0,{p},"127.0.0.1"}})'
            for d, p in sorted(self.routes.items()))
        (etc / "ejabberdctl.cfg").write_text(EJABBERDCTL_CFG.format(
            node=f"fedpeer{self.dist_port}", dist=self.dist_port, root=self.root,
            eval=f" -eval {rrs}" if rrs else ""))
        (etc / "inetrc").write_text(EJABBERD_INETRC)

    def _ctl_argv(self, *args: str) -> list[str]:
        r = self.root
        return self._as_user("ejabberdctl", "--config-dir", str(r / "etc"), "--logs",
                             str(r / "log"), "--spool", str(r / "db"), *args)

    def command(self) -> list[str]:
        return self._ctl_argv("foreground")

    def _register(self, user: str, password: str) -> None:
        self._ctl(self._ctl_argv("register", user, self.domain, password))

    def _signal_targets_of(self, proc: subprocess.Popen) -> list[int]:
        # ejabberdctl (a shell) waits for the Erlang VM: stop the VM, and
        # the shell returns when it has.
        pids = [pid for pid, comm in _group(proc.pid) if comm == "beam.smp"]
        return pids or [proc.pid]

    def log_text(self) -> str:
        # Its console repeats the log: keep only what the log lacks (the
        # Erlang VM's own errors).
        other = "".join(line for line in self._read(self._console).splitlines(True)
                        if not _TIMESTAMPED.match(line))
        return self._read(self.root / "log" / "ejabberd.log") + other


_TIMESTAMPED = re.compile(r"\d{4}-\d\d-\d\d ")


def _group(pgid: int) -> list[tuple[int, str]]:
    """(PID, command name) of the processes in process group `pgid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            out.append((int(entry), comm))
    return out

