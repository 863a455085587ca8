"""Configuration in practice: a generated configuration tree serves logins,
and a live reload (`vireo reload` or SIGHUP) swaps the certificate for new
connections without dropping sessions, and refuses a broken configuration
while the server keeps running with the old one."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import CLI_TIMEOUT, DOMAIN, VIREO_BIN, WAIT

PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S
)


# --------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------


def _openssl_cert(out: Path) -> tuple[Path, Path] | None:
    if shutil.which("openssl") is None:
        return None
    cert, key = out / f"{DOMAIN}.crt", out / f"{DOMAIN}.key"
    res = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN}"],
        capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    return (cert, key) if res.returncode == 0 else None


def _cryptography_cert(out: Path) -> tuple[Path, Path] | None:
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = out / f"{DOMAIN}.crt", out / f"{DOMAIN}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def _vireo_cert(server, out: Path) -> tuple[Path, Path]:
    res = server.cli("cert", "generate", DOMAIN, "--out", str(out))
    assert res.returncode == 0, f"vireo cert generate failed: {res.stderr}"
    return out / f"{DOMAIN}.crt", out / f"{DOMAIN}.key"


def make_cert(server, out: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate and key for DOMAIN in `out`: with the
    openssl CLI, else Python's cryptography, else `vireo cert generate`."""
    out.mkdir(parents=True, exist_ok=True)
    return _openssl_cert(out) or _cryptography_cert(out) or _vireo_cert(server, out)


def pem_sha256(cert: Path) -> str:
    """SHA-256 of the first (end-entity) certificate of a PEM file."""
    m = PEM_CERT.search(cert.read_text())
    assert m, f"no certificate in {cert}"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(m.group(0))).hexdigest()


def served_sha256(port: int) -> str:
    """SHA-256 of the certificate a new direct-TLS connection is shown."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw:
        with ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der, "the server presented no certificate"
    return hashlib.sha256(der).hexdigest()


def wait_served(port: int, want: str, timeout: float = WAIT) -> str:
    """Poll new connections until they are shown `want` (bounded); returns
    the last fingerprint seen."""
    deadline = time.monotonic() + timeout
    seen = served_sha256(port)
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = served_sha256(port)
    return seen


def wait_log_re(server, pattern: str, timeout: float = 10.0) -> None:
    """Wait until a line of the server log matches `pattern` (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, server.log_path.read_text(errors="replace")):
            return
        time.sleep(0.05)
    raise AssertionError(f"/{pattern}/ not in the server log after {timeout}s")


def install(src: tuple[Path, Path], dst: tuple[Path, Path]) -> None:
    """Replace the live certificate and key files atomically (as certbot &
    co. do): write next to them, then rename over them."""
    for s, d in zip(src, dst):
        tmp = d.with_name(d.name + ".new")
        shutil.copyfile(s, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, d)


def write_config(path: Path, cert: Path, key: Path, extra: str = "") -> None:
    """A single-file configuration: the certificate and key; domain, ports
    and data path come from the VIREO_* overrides of the fixture."""
    path.write_text(
        "# written by test_config_reload.py\n"
        "[tls]\n"
        f'certificate = "{cert}"\n'
        f'key = "{key}"\n'
        + extra
    )


def _explain(res: subprocess.CompletedProcess) -> str:
    return f"exit {res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"


class Setup:
    """A configured server serving certificate A from live files, with
    certificate B ready to replace it."""

    def __init__(self, server):
        self.server = server
        root = server.root
        self.a = make_cert(server, root / "cert-a")
        self.b = make_cert(server, root / "cert-b")
        self.fp_a, self.fp_b = pem_sha256(self.a[0]), pem_sha256(self.b[0])
        assert self.fp_a != self.fp_b
        live = root / "tls"
        live.mkdir()
        self.live = (live / "server.crt", live / "server.key")
        install(self.a, self.live)
        self.config = root / "vireo.toml"
        write_config(self.config, *self.live)
        server.config_path = self.config
        server.start()
        assert served_sha256(server.c2s_tls_port) == self.fp_a


async def _exchange(a, b, tag: str) -> None:
    """A message each way between two online clients."""
    body = f"{tag} {a.name} -> {b.name}"
    a.send_chat(b.xmpp.boundjid.bare, body)
    await b.wait_message(sender=a.xmpp.boundjid.bare, body=body)
    body = f"{tag} {b.name} -> {a.name}"
    b.send_chat(a.xmpp.boundjid.bare, body)
    await a.wait_message(sender=b.xmpp.boundjid.bare, body=body)


# --------------------------------------------------------------------------
# (a) a generated configuration tree
# --------------------------------------------------------------------------


def _config_init_missing() -> str | None:
    """Why `vireo config init` cannot be used with this binary, or None."""
    try:
        res = subprocess.run(
            [str(VIREO_BIN), "config", "init", "--help"],
            capture_output=True, text=True, timeout=CLI_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`vireo config init --help` could not run: {e}"
    if res.returncode != 0:
        said = (res.stderr or res.stdout).strip().splitlines()
        return (
            "`vireo config init` is not in this build yet "
            f"(`vireo config init --help` exited {res.returncode}: "
            f"{said[0] if said else 'no output'})"
        )
    return None


@pytest.mark.asyncio
async def test_generated_tree_serves_a_login(configured_server, xmpp):
    srv = configured_server
    if not VIREO_BIN.exists():
        pytest.fail(f"vireo binary not found at {VIREO_BIN}")
    missing = _config_init_missing()
    if missing:
        pytest.skip(missing)
    tree = srv.root / "config"
    res = await asyncio.to_thread(srv.cli, "config", "init", str(tree), "--domain", DOMAIN)
    assert res.returncode == 0, f"vireo config init failed: {_explain(res)}"
    assert (tree / "vireo.toml").is_file(), f"no vireo.toml in {sorted(tree.rglob('*'))}"
    srv.config_path = tree
    # The server is stopped: adduser writes the store directly.
    user = "alice"
    res = await asyncio.to_thread(
        srv.cli_config, "adduser", srv.jid(user), stdin="tree-secret-1\n")
    assert res.returncode == 0, f"vireo adduser failed: {_explain(res)}"
    srv.start()
    c = await xmpp.online(srv, srv.jid(user), "tree-secret-1", name="alice")
    c.send_chat(srv.jid(user), "hello from the generated tree")
    await c.wait_message(body="hello from the generated tree")
    # Reloading the unchanged tree changes nothing and keeps the session.
    res = await asyncio.to_thread(srv.cli_config, "reload")
    assert res.returncode == 0, f"vireo reload failed: {_explain(res)}"
    assert "needs restart: nothing" in res.stdout, _explain(res)
    c.send_chat(srv.jid(user), "still here after the reload")
    await c.wait_message(body="still here after the reload")


# --------------------------------------------------------------------------
# (b) a replaced certificate, live
# --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["files-replaced", "config-points-elsewhere"])
async def test_reload_new_certificate_keeps_sessions(configured_server, xmpp, how):
    srv = configured_server
    setup = await asyncio.to_thread(Setup, srv)
    alice, bob = srv.new_account("alice"), srv.new_account("bob")
    a = await xmpp.online(srv, alice, name="alice")
    b = await xmpp.online(srv, bob, name="bob", direct_tls=True)
    await _exchange(a, b, "before")

    if how == "files-replaced":
        install(setup.b, setup.live)
    else:
        write_config(setup.config, *setup.b)
    res = await asyncio.to_thread(srv.cli_config, "reload")
    assert res.returncode == 0, f"vireo reload failed: {_explain(res)}"
    out = res.stdout
    assert "reloaded:" in out and "needs restart:" in out, _explain(res)
    assert "certificate" in out.split("needs restart:")[0], _explain(res)
    assert "needs restart: nothing" in out, _explain(res)

    # New connections see the new certificate...
    assert await asyncio.to_thread(served_sha256, srv.c2s_tls_port) == setup.fp_b
    # ...the sessions opened before the reload are still up and work...
    assert not a.disconnected.is_set() and not b.disconnected.is_set(), (a.events, b.events)
    await _exchange(a, b, "after")
    # ...and new logins work with the new certificate, both ways in.
    c = await xmpp.online(srv, srv.new_account("carol"), name="carol")
    d = await xmpp.online(srv, srv.new_account("dave"), name="dave", direct_tls=True)
    await _exchange(c, a, "new-old")
    await _exchange(d, b, "new-old-tls")
    assert srv.is_running()


@pytest.mark.asyncio
async def test_sighup_reloads_certificate_and_logs(configured_server, xmpp):
    srv = configured_server
    setup = await asyncio.to_thread(Setup, srv)
    alice, bob = srv.new_account("alice"), srv.new_account("bob")
    a = await xmpp.online(srv, alice, name="alice")
    b = await xmpp.online(srv, bob, name="bob")

    install(setup.b, setup.live)
    srv.signal(signal.SIGHUP)
    await asyncio.to_thread(srv.wait_log, "reloaded: certificate")
    assert await asyncio.to_thread(wait_served, srv.c2s_tls_port, setup.fp_b) == setup.fp_b
    await _exchange(a, b, "after-sighup")
    assert srv.is_running()

    # A second SIGHUP with a limit changed reports just that.
    write_config(setup.config, *setup.live, "[transport]\nmax_connections = 777\n")
    srv.signal(signal.SIGHUP)
    await asyncio.to_thread(wait_log_re, srv, r"reloaded: max_connections \(\d+ -> 777\)")
    await _exchange(a, b, "after-second-sighup")


@pytest.mark.asyncio
async def test_reload_reports_what_needs_a_restart(configured_server, xmpp):
    srv = configured_server
    setup = await asyncio.to_thread(Setup, srv)
    a = await xmpp.online(srv, srv.new_account("alice"), name="alice")
    # A limit applies live; the thread count needs a restart. (Domains,
    # ports and the data path come from VIREO_* overrides here, which win
    # over the file.)
    threads = (os.cpu_count() or 1) + 3
    write_config(
        setup.config, *setup.live,
        f"[transport]\nthreads = {threads}\n[stream]\nauth_timeout = 12\n",
    )
    res = await asyncio.to_thread(srv.cli_config, "reload")
    assert res.returncode == 0, f"vireo reload failed: {_explain(res)}"
    applied, _, restart = res.stdout.partition("needs restart:")
    assert re.search(r"auth_timeout \(\d+s -> 12s\)", applied), _explain(res)
    assert "threads" in restart and f"-> {threads})" in restart, _explain(res)
    assert "certificate" not in applied, _explain(res)
    a.send_chat(a.xmpp.boundjid.bare, "still here")
    await a.wait_message(body="still here")


# --------------------------------------------------------------------------
# (c) a broken configuration changes nothing
# --------------------------------------------------------------------------


BROKEN = {
    # what to write, and which file the error must name
    "toml-syntax": ("[tls\ncertificate = \n", "config"),
    "bad-value": (None, "config"),
    "missing-certificate": (None, "cert"),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", list(BROKEN))
async def test_reload_broken_config_keeps_running(configured_server, xmpp, kind):
    srv = configured_server
    setup = await asyncio.to_thread(Setup, srv)
    a = await xmpp.online(srv, srv.new_account("alice"), name="alice")
    b = await xmpp.online(srv, srv.new_account("bob"), name="bob")

    good = setup.config.read_text()
    missing_cert = srv.root / "nowhere" / "gone.crt"
    if kind == "toml-syntax":
        setup.config.write_text(BROKEN[kind][0])
    elif kind == "bad-value":
        write_config(setup.config, *setup.b, "[stream]\nmax_stanza_size = 5\n")
    else:
        write_config(setup.config, missing_cert, setup.b[1])
    named = setup.config.name if BROKEN[kind][1] == "config" else missing_cert.name

    # Asked with the environment only (the command itself reads no file)...
    res = await asyncio.to_thread(srv.cli, "reload")
    assert res.returncode != 0, f"vireo reload accepted a broken configuration: {_explain(res)}"
    assert named in res.stderr, f"the error does not name {named}: {_explain(res)}"
    assert "reloaded:" not in res.stdout, _explain(res)
    # ...and with the broken file given to the command too.
    res = await asyncio.to_thread(srv.cli_config, "reload")
    assert res.returncode != 0, _explain(res)
    assert named in res.stderr, f"the error does not name {named}: {_explain(res)}"

    # The server runs on with the old configuration: same certificate,
    # sessions up, logins work.
    assert srv.is_running()
    assert await asyncio.to_thread(served_sha256, srv.c2s_tls_port) == setup.fp_a
    await _exchange(a, b, "after-failed-reload")
    c = await xmpp.online(srv, srv.new_account("carol"), name="carol", direct_tls=True)
    await _exchange(c, a, "new-after-failed-reload")

    # Fixed, the next reload goes through.
    setup.config.write_text(good)
    res = await asyncio.to_thread(srv.cli_config, "reload")
    assert res.returncode == 0, f"vireo reload failed: {_explain(res)}"


def test_reload_without_server_fails(configured_server):
    srv = configured_server
    res = srv.cli("reload")
    assert res.returncode != 0, _explain(res)
    assert "admin.sock" in res.stderr or "running" in res.stderr, _explain(res)
