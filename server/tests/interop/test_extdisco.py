"""XEP-0215 External Service Discovery against the real binary: the
STUN/TURN server of the turn_external_* settings is listed (raw XML
through slixmpp; slixmpp has no xep_0215 plugin), and the TURN credentials
are checked here with coturn's algorithm, independently of the server:
password = base64(HMAC-SHA1(secret, "<expiry>:<user>"))."""

import base64
import hashlib
import hmac
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest
from slixmpp.exceptions import IqError

from conftest import WAIT

NS = "urn:xmpp:extdisco:2"
SECRET = "coturn-shared-secret"


def start_with(srv, toml: str):
    path = srv.root / "vireo.toml"
    path.write_text(toml)
    srv.config_path = path
    srv.start()
    return srv


async def query(client, payload: str):
    iq = client.xmpp.make_iq_get(ito=client.server.domain)
    iq.append(ET.fromstring(payload))
    return await iq.send(timeout=WAIT)


def coturn_password(secret: str, username: str) -> str:
    return base64.b64encode(
        hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


@pytest.mark.asyncio
async def test_turn_services_with_coturn_credentials(configured_server, xmpp):
    srv = start_with(configured_server, (
        "[extdisco]\n"
        "turn_external_host = \"turn.example.org\"\n"
        f"turn_external_secret = \"{SECRET}\"\n"
        "turn_external_ttl = 3600\n"
        "turn_external_tcp = true\n"
        "turn_external_tls_port = 5349\n"))
    a = srv.new_account("call")
    alice = xmpp.client(srv, a, name="alice")
    alice.xmpp.register_plugin("xep_0030")
    await alice.connect()
    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=srv.domain, timeout=WAIT)
    assert NS in info["disco_info"]["features"]

    before = int(time.time())
    result = await query(alice, f"<services xmlns='{NS}'/>")
    after = int(time.time())
    services = result.xml.find(f"{{{NS}}}services")
    got = [(s.get("type"), s.get("transport"), s.get("host"), s.get("port"))
           for s in services]
    assert got == [
        ("stun", "udp", "turn.example.org", "3478"),
        ("turn", "udp", "turn.example.org", "3478"),
        ("stun", "tcp", "turn.example.org", "3478"),
        ("turn", "tcp", "turn.example.org", "3478"),
        ("turns", "tcp", "turn.example.org", "5349"),
    ], ET.tostring(services)
    for s in services:
        if s.get("type") == "stun":
            assert s.get("username") is None and s.get("password") is None
            continue
        expiry, user = s.get("username").split(":", 1)
        assert user == a.jid
        assert before + 3600 <= int(expiry) <= after + 3600
        assert s.get("password") == coturn_password(SECRET, s.get("username"))
        expires = datetime.fromisoformat(s.get("expires").replace("Z", "+00:00"))
        assert expires == datetime.fromtimestamp(int(expiry), timezone.utc)
        assert s.get("restricted") == "1"

    only_turns = await query(alice, f"<services xmlns='{NS}' type='turns'/>")
    types = [s.get("type") for s in only_turns.xml.find(f"{{{NS}}}services")]
    assert types == ["turns"]

    creds = await query(
        alice,
        f"<credentials xmlns='{NS}'><service host='turn.example.org' type='turn' port='3478'/></credentials>")
    entries = list(creds.xml.find(f"{{{NS}}}credentials"))
    assert [e.get("transport") for e in entries] == ["udp", "tcp"]
    for e in entries:
        assert e.get("password") == coturn_password(SECRET, e.get("username"))

    with pytest.raises(IqError) as err:
        await query(alice, f"<credentials xmlns='{NS}'><service type='turn'/></credentials>")
    assert err.value.iq["error"]["condition"] == "bad-request"


@pytest.mark.asyncio
async def test_not_advertised_unless_configured(server, xmpp):
    a = server.new_account("nocall")
    c = xmpp.client(server, a, name="nocall")
    c.xmpp.register_plugin("xep_0030")
    await c.connect()
    info = await c.xmpp.plugin["xep_0030"].get_info(jid=server.domain, timeout=WAIT)
    assert NS not in info["disco_info"]["features"]
    with pytest.raises(IqError) as err:
        await query(c, f"<services xmlns='{NS}'/>")
    assert err.value.iq["error"]["condition"] == "service-unavailable"


@pytest.mark.asyncio
async def test_switched_off_with_the_module(configured_server, xmpp):
    srv = start_with(configured_server, (
        "modules = [\"c2s\", \"c2s_direct_tls\", \"tls\", \"limits\", \"saslauth\", "
        "\"auth_internal\", \"bind\", \"router\", \"roster\", \"presence\", \"disco\", "
        "\"storage_embedded\", \"admin_socket\"]\n"
        "[extdisco]\nturn_external_host = \"turn.example.org\"\n"))
    a = srv.new_account("off")
    c = xmpp.client(srv, a, name="off")
    c.xmpp.register_plugin("xep_0030")
    await c.connect()
    info = await c.xmpp.plugin["xep_0030"].get_info(jid=srv.domain, timeout=WAIT)
    assert NS not in info["disco_info"]["features"]
    with pytest.raises(IqError) as err:
        await query(c, f"<services xmlns='{NS}'/>")
    assert err.value.iq["error"]["condition"] == "service-unavailable"
