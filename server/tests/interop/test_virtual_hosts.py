"""Virtual hosts: a configuration tree with two domains, each with its own
certificate in its domain file; a TLS client asking for a domain by SNI
gets that domain's certificate (and one naming no known domain gets the
primary's), and users of both domains log in."""

import re
import socket
import ssl
import subprocess

import pytest

from conftest import VIREO_BIN


def _served_der(port: int, name: str) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


def _file_der(path) -> bytes:
    pem = path.read_text()
    first = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", pem, re.S)
    assert first, path
    return ssl.PEM_cert_to_DER_cert(first.group(0))


@pytest.mark.asyncio
async def test_each_domain_serves_its_own_certificate(configured_server, xmpp):
    srv = configured_server
    tree = srv.root / "conf"
    subprocess.run([str(VIREO_BIN), "config", "init", str(tree), "--domain", "a.localhost"],
                   check=True, capture_output=True)
    subprocess.run([str(VIREO_BIN), "cert", "generate", "b.localhost", "--out", str(tree / "certs")],
                   check=True, capture_output=True)
    (tree / "domains" / "b.localhost.toml").write_text(
        'domain = "b.localhost"\n'
        'certificate = "certs/b.localhost.crt"\n'
        'key = "certs/b.localhost.key"\n')
    vireo_toml = tree / "vireo.toml"
    vireo_toml.write_text(vireo_toml.read_text().replace(
        'domains = ["a.localhost"]', 'domains = ["a.localhost", "b.localhost"]'))
    srv.domain = "a.localhost,b.localhost"
    srv.config_path = tree
    check = subprocess.run([str(VIREO_BIN), "--config", str(tree), "check", "config"],
                           capture_output=True, text=True, env=srv.env())
    assert check.returncode == 0, check.stdout + check.stderr
    srv.start()

    a_der = _file_der(tree / "certs" / "a.localhost.crt")
    b_der = _file_der(tree / "certs" / "b.localhost.crt")
    assert a_der != b_der
    assert _served_der(srv.c2s_tls_port, "a.localhost") == a_der
    assert _served_der(srv.c2s_tls_port, "b.localhost") == b_der
    assert _served_der(srv.c2s_tls_port, "unknown.localhost") == a_der

    for domain in ("a.localhost", "b.localhost"):
        jid = f"user@{domain}"
        out = subprocess.run([str(VIREO_BIN), "--config", str(tree), "adduser", jid],
                             input="pw-" + domain + "\n", capture_output=True, text=True,
                             env=srv.env())
        assert out.returncode == 0, out.stderr
        c = xmpp.client(srv, jid, "pw-" + domain, direct_tls=True, name=domain)
        await c.connect()
