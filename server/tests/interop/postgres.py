"""A throwaway PostgreSQL cluster for the interop suite's PostgreSQL pass.

`start_cluster()` runs `initdb` and `pg_ctl start` in a fresh temporary
directory on a free loopback port (trust authentication, superuser
`postgres`, the Unix socket in that directory too), and returns a
`PgCluster`:

    cluster = start_cluster()
    db = cluster.create_database("vireo_1")   # -> "vireo_1"
    env = cluster.server_env(db)              # VIREO_DB_* for a vireo server
    cluster.restart()                         # stop + start, same port and data
    cluster.stop()                            # stop and remove the directory

initdb refuses to run as root: as root the directory is owned by the
`postgres` user (Debian's package creates it) and initdb/pg_ctl run through
`runuser -u postgres --`; as anyone else they run directly. The client
programs (psql) connect over TCP as `postgres` and need no user switch.

The cluster is stopped and its directory removed by `stop()`, and at the
latest when the Python process exits (atexit; SIGTERM is turned into a
normal exit while a cluster runs). A cluster left behind by a process that
was SIGKILLed is stopped by the next `start_cluster()` (its directory names
the owning PID).

Binaries: $VIREO_TEST_PG_BINDIR, else Debian's /usr/lib/postgresql/15/bin,
else the newest /usr/lib/postgresql/*/bin, else `initdb` on PATH.
Run this file directly for a self-check (start, create, query, restart,
stop), or with --check: print the binaries' directory, exit 1 if missing.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

DIR_PREFIX = "vireo-pg-"
PG_USER = "postgres"
START_TIMEOUT = 60  # pg_ctl start -w -t
STOP_TIMEOUT = 60


class PgUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bindir() -> Path | None:
    """The directory of initdb/pg_ctl/psql, or None if PostgreSQL is missing."""
    override = os.environ.get("VIREO_TEST_PG_BINDIR")
    if override:
        return Path(override) if (Path(override) / "initdb").exists() else None
    debian = Path("/usr/lib/postgresql/15/bin")
    if (debian / "initdb").exists():
        return debian
    def major(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=major)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def available() -> bool:
    return find_bindir() is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


_live: list["PgCluster"] = []
_lock = threading.Lock()
_hooks_installed = False


def _stop_all() -> None:
    for cluster in list(_live):
        try:
            cluster.stop()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"postgres.py: stopping the cluster in {cluster.dir} failed: {e}")


def _install_hooks() -> None:
    """atexit for every started cluster; SIGTERM (default action: die
    without atexit) becomes a KeyboardInterrupt, so that pytest finishes,
    its fixtures clean up, and atexit stops the cluster."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            def on_term(signum, frame):
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                raise KeyboardInterrupt(f"signal {signum}")
            signal.signal(signal.SIGTERM, on_term)


def _base_dir(as_root: bool) -> Path:
    """Where the cluster directory goes: the temp dir, if the postgres
    user can reach it when we are root; /tmp otherwise."""
    base = Path(tempfile.gettempdir())
    if as_root:
        ok = subprocess.run(["runuser", "-u", PG_USER, "--", "test", "-x", str(base)],
                            capture_output=True).returncode == 0
        if not ok:
            base = Path("/tmp")
    return base


def reap_stale(base: Path | None = None) -> list[Path]:
    """Stop and remove the clusters of processes that no longer exist
    (a pytest run that was SIGKILLed). Only directories named
    vireo-pg-<pid>-* whose <pid> is dead are touched."""
    reaped = []
    bases = {Path(tempfile.gettempdir()), Path("/tmp")} if base is None else {base}
    bindir = find_bindir()
    for b in bases:
        for d in b.glob(f"{DIR_PREFIX}*-*"):
            try:
                pid = int(d.name[len(DIR_PREFIX):].split("-", 1)[0])
            except ValueError:
                continue
            if pid == os.getpid() or _pid_alive(pid) or not d.is_dir():
                continue
            data = d / "data"
            if bindir is not None and (data / "postmaster.pid").exists():
                argv = [str(bindir / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate", "-w"]
                if os.geteuid() == 0:
                    argv = ["runuser", "-u", PG_USER, "--", *argv]
                subprocess.run(argv, capture_output=True, timeout=STOP_TIMEOUT)
            shutil.rmtree(d, ignore_errors=True)
            reaped.append(d)
    return reaped


class PgCluster:
    """One running PostgreSQL cluster in its own directory (see the module
    docstring)."""

    def __init__(self, bindir: Path, directory: Path, port: int, as_root: bool):
        self.bindir = bindir
        self.dir = directory
        self.data = directory / "data"
        self.log_path = directory / "log"
        self.port = port
        self.host = "127.0.0.1"
        self.user = PG_USER
        self.as_root = as_root
        self.running = False
        self.version = ""
        self.databases: list[str] = []

    # -- helpers -------------------------------------------------------------

    def _as_pg(self, *argv: str) -> list[str]:
        return ["runuser", "-u", PG_USER, "--", *argv] if self.as_root else list(argv)

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> str:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise RuntimeError(
                f"{what} failed ({res.returncode}): {' '.join(argv)}\n"
                f"stdout: {res.stdout}\nstderr: {res.stderr}\nlog:\n{self.log_tail()}")
        return res.stdout

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle -----------------------------------------------------------

    def initdb(self) -> None:
        self._run(self._as_pg(str(self.bindir / "initdb"), "-D", str(self.data),
                              "-A", "trust", "-U", PG_USER, "-E", "UTF8",
                              "--locale=C", "--no-instructions"),
                  "initdb")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses={self.host} "
                "-c fsync=on -c max_connections=300")
        self._run(self._as_pg(str(self.bindir / "pg_ctl"), "-D", str(self.data),
                              "-o", opts, "-l", str(self.log_path),
                              "-t", str(START_TIMEOUT), "-w", "start"),
                  "pg_ctl start", timeout=START_TIMEOUT + 10)
        self.running = True
        self.version = self.psql("SHOW server_version").strip()

    def stop(self, remove: bool = True) -> None:
        """pg_ctl stop -m fast; remove the directory (unless `remove` is
        false or VIREO_TEST_KEEP=1). Idempotent."""
        if self.running or (self.data / "postmaster.pid").exists():
            argv = self._as_pg(str(self.bindir / "pg_ctl"), "-D", str(self.data),
                               "-m", "fast", "-t", str(STOP_TIMEOUT), "-w", "stop")
            res = subprocess.run(argv, capture_output=True, text=True,
                                 timeout=STOP_TIMEOUT + 10, stdin=subprocess.DEVNULL)
            if res.returncode != 0 and (self.data / "postmaster.pid").exists():
                # Not stopped by a fast shutdown: immediate, then SIGKILL.
                subprocess.run(self._as_pg(str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                           "-m", "immediate", "-w", "stop"),
                               capture_output=True, timeout=STOP_TIMEOUT)
                self._kill_postmaster()
            self.running = False
        if remove:
            with _lock:
                if self in _live:
                    _live.remove(self)
            if os.environ.get("VIREO_TEST_KEEP") == "1":
                print(f"postgres.py: VIREO_TEST_KEEP=1: cluster kept in {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def restart(self) -> None:
        """Stop (fast) and start again: same port, same data."""
        self.stop(remove=False)
        self.start()

    def enable_tls(self) -> Path:
        """TLS on (restarting the server), with a certificate for
        "localhost" from a private authority made here: returns the
        authority's certificate, which a client must be told to trust."""
        cert, key = self.data / "server.crt", self.data / "server.key"
        authority, authority_key = self.dir / "authority.pem", self.dir / "authority.key"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._run(["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=Vireo test authority",
                   "-keyout", str(authority_key), "-out", str(authority)], "openssl req (authority)")
        csr = self.dir / "server.csr"
        self._run(["openssl", "req", "-new", *ec, "-subj", "/CN=localhost",
                   "-keyout", str(key), "-out", str(csr)], "openssl req (server)")
        ext = self.dir / "server.ext"
        ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost\n")
        self._run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(authority),
                   "-CAkey", str(authority_key), "-CAcreateserial", "-days", "2",
                   "-extfile", str(ext), "-out", str(cert)], "openssl x509 (sign)")
        os.chmod(key, 0o600)
        if self.as_root:
            shutil.chown(cert, PG_USER, PG_USER)
            shutil.chown(key, PG_USER, PG_USER)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        self.restart()
        return authority

    # -- databases -----------------------------------------------------------

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run([str(self.bindir / "psql"), "-X", "-q", "-A", "-t",
                          "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                          "-U", PG_USER, "-d", database, "-c", sql],
                         f"psql {sql!r}")

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop it, closing whatever connection a killed server left."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.databases:
            self.databases.remove(name)

    def server_env(self, database: str) -> dict[str, str]:
        """The VIREO_DB_* variables that make a vireo server use `database`."""
        return {
            "VIREO_DB_DRIVER": "postgresql",
            "VIREO_DB_HOST": self.host,
            "VIREO_DB_PORT": str(self.port),
            "VIREO_DB_NAME": database,
            "VIREO_DB_USER": self.user,
        }

    def describe(self) -> str:
        return (f"PostgreSQL {self.version or '?'} at {self.host}:{self.port} "
                f"(bin {self.bindir}, dir {self.dir})")


def start_cluster() -> PgCluster:
    """initdb + start a new cluster (see the module docstring). Raises
    PgUnavailable when the binaries are missing, RuntimeError (with the
    server log) when it does not start."""
    bindir = find_bindir()
    if bindir is None:
        raise PgUnavailable(
            "PostgreSQL server binaries not found (initdb): install Debian's "
            "postgresql package (.ci/run does), or set VIREO_TEST_PG_BINDIR")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        raise PgUnavailable("running as root needs runuser (util-linux) to run initdb as postgres")
    base = _base_dir(as_root)
    reap_stale(base)
    directory = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-", dir=base))
    if as_root:
        shutil.chown(directory, PG_USER, PG_USER)
    cluster = PgCluster(bindir, directory, _free_port(), as_root)
    with _lock:
        _live.append(cluster)
    _install_hooks()
    try:
        cluster.initdb()
        try:
            cluster.start()
        except RuntimeError:
            # The free port was taken in between: once more on another.
            if "could not bind" not in cluster.log_tail() and "in use" not in cluster.log_tail():
                raise
            cluster.port = _free_port()
            cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _self_check() -> None:
    t0 = time.monotonic()
    c = start_cluster()
    print(f"started in {time.monotonic() - t0:.1f}s: {c.describe()}")
    t1 = time.monotonic()
    for i in range(5):
        c.create_database(f"vireo_selfcheck_{i}")
    print(f"5 databases created in {time.monotonic() - t1:.2f}s")
    c.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (42)", "vireo_selfcheck_0")
    t2 = time.monotonic()
    c.restart()
    print(f"restarted in {time.monotonic() - t2:.1f}s on port {c.port}")
    assert c.psql("SELECT x FROM t", "vireo_selfcheck_0").strip() == "42"
    t3 = time.monotonic()
    c.drop_database("vireo_selfcheck_1")
    print(f"dropped in {time.monotonic() - t3:.2f}s")
    print(c.server_env("vireo_selfcheck_0"))
    d = c.dir
    c.stop()
    assert not d.exists(), d
    print(f"stopped and removed {d}; total {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    import sys
    if sys.argv[1:] == ["--check"]:
        found = find_bindir()
        print(found if found is not None else "PostgreSQL server binaries (initdb) not found")
        sys.exit(0 if found is not None else 1)
    _self_check()
