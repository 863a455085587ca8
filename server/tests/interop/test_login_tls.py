"""Login over STARTTLS and direct TLS (XEP-0368), SASL, graceful shutdown."""

import asyncio
import base64
import ssl

import pytest

from conftest import (
    QUIET,
    SASL_NS,
    TLS_NS,
    WAIT,
    RawConn,
    unique_user,
)


def _tls_version(client) -> str | None:
    obj = client.xmpp.transport.get_extra_info("ssl_object")
    return obj.version() if obj is not None else None


async def _self_message_roundtrip(client, body: str) -> None:
    """A message to the own full JID comes back: the session really works."""
    client.send_chat(client.jid.full, body)
    msg = await client.wait_message(body=body)
    assert msg["from"].full == client.jid.full


@pytest.mark.asyncio
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_scram_sha256_login(server, xmpp, direct_tls):
    acc = server.new_account("login")
    c = xmpp.client(server, acc, direct_tls=direct_tls)
    # connect() asserts slixmpp negotiated SCRAM-SHA-256 (no -PLUS: Python's
    # ssl has no tls-exporter binding on TLS 1.3).
    await c.connect()
    assert c.mech_used == "SCRAM-SHA-256"
    assert _tls_version(c) in ("TLSv1.2", "TLSv1.3"), "session is not encrypted"
    assert c.jid.bare == acc.jid
    assert c.jid.resource, "server bound no resource"
    await _self_message_roundtrip(c, f"ping over {'direct TLS' if direct_tls else 'STARTTLS'}")


@pytest.mark.asyncio
async def test_requested_resource_is_bound(server, xmpp):
    acc = server.new_account("res")
    c = await xmpp.online(server, acc, resource="laptop")
    assert c.jid.full == f"{acc.jid}/laptop"


@pytest.mark.asyncio
async def test_emoji_resource_is_kept_and_routable(server, xmpp):
    """RFC 7622 resourceparts are OpaqueString: emoji (also post-Unicode-6.3
    ones and ZWJ sequences) are bound as requested, not replaced. slixmpp
    itself still applies RFC 6122 resourceprep and refuses such JIDs, so the
    emoji side logs in over a raw direct-TLS socket with PLAIN."""
    acc = server.new_account("emo")
    resource = "phone📱🦀👩\u200d💻"
    user = acc.jid.split("@", 1)[0]
    plain = base64.b64encode(f"\0{user}\0{acc.password}".encode()).decode()
    raw = RawConn(server.c2s_tls_port, tls=True)
    try:
        raw.open_stream()
        raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
        assert raw.read_until(lambda b: b"<success" in b), raw.result().describe()
        raw.buf = b""
        raw.open_stream()
        raw.send(f"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 f"<resource>{resource}</resource></bind></iq><presence/>")
        full = f"{acc.jid}/{resource}"
        assert raw.read_until(lambda b: f"<jid>{full}</jid>".encode() in b), raw.result().describe()
        sender = await xmpp.online(server, server.new_account("emosender"))
        sender.xmpp.send_raw(f"<message to='{full}' type='chat'><body>to the crab</body></message>")
        got = await asyncio.to_thread(raw.read_until, lambda b: b"to the crab" in b)
        assert got, raw.result().describe()
        assert f"to='{full}'".encode() in raw.buf or f'to="{full}"'.encode() in raw.buf
    finally:
        raw.close()


@pytest.mark.asyncio
async def test_emoji_password(server, xmpp):
    password = "🦀🔑" + unique_user("")
    jid = server.adduser(unique_user("emopw"), password)
    c = xmpp.client(server, jid, password)
    await c.connect()


@pytest.mark.asyncio
@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "PLAIN"])
async def test_other_mechanisms_over_tls(server, xmpp, mech):
    acc = server.new_account("mech")
    c = xmpp.client(server, acc, mech=mech)
    await c.connect(expect_mech=mech)
    await _self_message_roundtrip(c, f"hello via {mech}")


@pytest.mark.asyncio
async def test_non_ascii_password(server, xmpp):
    user = unique_user("uni")
    password = "pässwörd-ĉĥ-" + unique_user("")
    jid = server.adduser(user, password)
    c = xmpp.client(server, jid, password)
    await c.connect()


@pytest.mark.asyncio
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_wrong_password_refused(server, xmpp, direct_tls):
    acc = server.new_account("wrongpw")
    c = xmpp.client(server, acc.jid, acc.password + "x", direct_tls=direct_tls)
    outcome = await c.try_connect()
    assert outcome == "failed_auth", f"expected a SASL failure, got {outcome}; events={c.events}"
    assert c.mech_used is None
    # slixmpp then tries its remaining mechanisms; none may succeed.
    await asyncio.sleep(QUIET)
    assert not c.session_started.is_set(), f"session started with a wrong password: {c.events}"
    assert all(f["condition"] == "not-authorized" for f in c.auth_failures), [
        str(f) for f in c.auth_failures
    ]


@pytest.mark.asyncio
async def test_unknown_user_refused(server, xmpp):
    c = xmpp.client(server, server.jid(unique_user("ghost")), "whatever")
    outcome = await c.try_connect()
    assert outcome == "failed_auth", f"got {outcome}; events={c.events}"
    await asyncio.sleep(QUIET)
    assert not c.session_started.is_set()


def _mechanisms(features) -> set[str]:
    mechs = features.find(f"{{{SASL_NS}}}mechanisms")
    if mechs is None:
        return set()
    return {m.text for m in mechs.findall(f"{{{SASL_NS}}}mechanism")}


def test_starttls_offered_and_plain_not_before_tls(server):
    conn = RawConn(server.c2s_port)
    try:
        res = conn.open_stream()
    finally:
        conn.close()
    feats = res.find("{http://etherx.jabber.org/streams}features")
    assert feats, f"no stream features: {res.describe()}"
    assert feats[0].find(f"{{{TLS_NS}}}starttls") is not None, f"no STARTTLS offered: {res.text!r}"
    assert "PLAIN" not in _mechanisms(feats[0]), f"PLAIN offered in clear text: {res.text!r}"


def test_auth_before_starttls_never_succeeds(server):
    acc = server.new_account("cleartext")
    user = acc.jid.split("@")[0]
    blob = base64.b64encode(f"\0{user}\0{acc.password}".encode()).decode()
    conn = RawConn(server.c2s_port)
    try:
        conn.open_stream()
        conn.send(f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{blob}</auth>")
        res = conn.read_until_closed(WAIT)
    finally:
        conn.close()
    assert not res.find(f"{{{SASL_NS}}}success"), f"cleartext PLAIN accepted: {res.describe()}"
    refused = res.find(f"{{{SASL_NS}}}failure") or res.stream_error() is not None
    assert refused, f"cleartext auth neither failed nor got a stream error: {res.describe()}"


def test_direct_tls_port_speaks_tls(server):
    """XEP-0368: the TLS port starts with a TLS handshake, then XMPP; no STARTTLS inside."""
    conn = RawConn(server.c2s_tls_port, tls=True)
    try:
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        cert = conn.sock.getpeercert(binary_form=True)
        assert cert, "no server certificate"
        res = conn.open_stream()
    finally:
        conn.close()
    feats = res.find("{http://etherx.jabber.org/streams}features")
    assert feats, f"no stream features over direct TLS: {res.describe()}"
    assert "SCRAM-SHA-256" in _mechanisms(feats[0]), res.text
    assert feats[0].find(f"{{{TLS_NS}}}starttls") is None, "STARTTLS offered inside TLS"


def test_generated_certificate_files(server):
    certs = server.data_dir / "certs"
    assert (certs / f"{server.domain}.crt").is_file(), list(certs.glob("*")) if certs.exists() else "no certs dir"
    assert (certs / f"{server.domain}.key").is_file()
    # The certificate served is the one on disk.
    pem = (certs / f"{server.domain}.crt").read_text()
    on_disk = [
        ssl.PEM_cert_to_DER_cert(block + "-----END CERTIFICATE-----\n")
        for block in pem.split("-----END CERTIFICATE-----")
        if "BEGIN CERTIFICATE" in block
    ]
    conn = RawConn(server.c2s_tls_port, tls=True)
    try:
        served = conn.sock.getpeercert(binary_form=True)
    finally:
        conn.close()
    assert served in on_disk, "served certificate differs from DATA/certs/DOMAIN.crt"


@pytest.mark.asyncio
async def test_sigterm_graceful_shutdown(own_server, xmpp):
    acc = own_server.new_account("shutdown")
    c = await xmpp.online(own_server, acc)
    code = await asyncio.to_thread(own_server.stop)
    assert code == 0, f"vireo exited with {code} after SIGTERM (None = needed SIGKILL)"
    assert await c.wait_disconnected(WAIT), "client still connected after shutdown"
    conditions = [e["condition"] for e in c.stream_errors]
    assert "system-shutdown" in conditions, f"stream errors seen: {conditions}; events={c.events}"
