"""XEP-0163 PEP with a client nobody here wrote: xmpp.js (npm `@xmpp/client`,
pinned in js/package-lock.json, installed by run.sh with `npm ci`) in Node.

js/pep.mjs runs two xmpp.js clients against the server: they subscribe to
each other's presence, B comes online with XEP-0115 caps advertising
`http://jabber.org/protocol/tune+notify` and answers the server's caps
query, A publishes a tune with the default (presence) access, B is
notified and reads the item back. The server's self-signed certificate is
trusted through NODE_EXTRA_CA_CERTS: STARTTLS is verified as usual."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent / "js"
TIMEOUT = 90


def test_xmppjs_publishes_a_tune_and_a_contact_is_notified(server):
    node = shutil.which("node")
    assert node, "node is not installed (run.sh needs Node.js >= 20 and npm)"
    assert (JS / "node_modules" / "@xmpp" / "client").is_dir(), (
        "xmpp.js is not installed: run server/tests/interop/run.sh (it runs npm ci)")
    cert = server.data_dir / "certs" / f"{server.domain}.crt"
    assert cert.is_file(), f"no certificate at {cert}"
    a = server.new_account("jsa")
    b = server.new_account("jsb")
    env = dict(os.environ)
    env.update(
        VIREO_PORT=str(server.c2s_port),
        VIREO_DOMAIN=server.domain,
        A_JID=a.jid, A_PASSWORD=a.password,
        B_JID=b.jid, B_PASSWORD=b.password,
        NODE_EXTRA_CA_CERTS=str(cert),
    )
    env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)
    run = subprocess.run([node, "pep.mjs"], cwd=JS, env=env, capture_output=True,
                         text=True, timeout=TIMEOUT)
    out = run.stdout
    assert run.returncode == 0, f"xmpp.js run failed ({run.returncode}):\n{out}\n{run.stderr}"
    assert "subscription: both" in out, out
    assert "published: result" in out, out
    assert "notified: Heart of the Sunrise" in out, out
    assert "retrieved: Yes" in out, out
