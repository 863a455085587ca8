"""XEP-0077 In-Band Registration against the real binary, with slixmpp's
xep_0077 plugin (registration, password change, cancellation), raw
sockets for what slixmpp does not show (stream features, error details),
and the two registration clients of the benchmark kit (vireo-bench
--register and benchlib.py register), written for Prosody and ejabberd."""

import asyncio
import importlib.util
import json
import secrets
import subprocess
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from conftest import REPO_ROOT, VIREO_BIN, WAIT, RawConn, unique_user

REGISTER_NS = "jabber:iq:register"
FEATURE = "{http://jabber.org/features/iq-register}register"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def start_with(srv, toml: str):
    """Start a configured server from a single-file configuration."""
    path = srv.root / "vireo.toml"
    path.write_text(toml)
    srv.config_path = path
    srv.start()
    return srv


OPEN = "[registration]\nallow_registration = true\n"


def registering_client(xmpp, srv, user, password, name, *, as_user=None):
    """A slixmpp client that registers `as_user` (default: its own user)
    when the server offers in-band registration, then logs in as `user`.
    Returns the client and a dict that receives the outcome."""
    c = xmpp.client(srv, f"{user}@{srv.domain}", password, name=name)
    c.xmpp.register_plugin("xep_0077")
    outcome = {}

    async def on_register(form):
        outcome["form"] = form
        iq = c.xmpp.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = as_user or user
        iq["register"]["password"] = password
        try:
            await iq.send(timeout=WAIT)
            outcome["result"] = "created"
        except IqError as e:
            outcome["result"] = e.iq["error"]["condition"]
            outcome["error"] = e.iq

    c.xmpp.add_event_handler("register", on_register)
    return c, outcome


@pytest.mark.asyncio
async def test_register_then_log_in_and_duplicate_conflicts(configured_server, xmpp):
    srv = start_with(configured_server, OPEN)
    user, pw = unique_user("ibr"), secrets.token_urlsafe(12)
    c, outcome = registering_client(xmpp, srv, user, pw, "newcomer")
    await c.connect()
    assert outcome.get("result") == "created", outcome
    # The server asked for exactly the legacy fields.
    form = outcome["form"]["register"]
    assert form["instructions"], form
    assert {"username", "password"} <= set(form.get_fields()), form
    assert c.jid.bare == f"{user}@{srv.domain}"

    # The same username again (any case: it is the same account): conflict.
    other, outcome2 = registering_client(
        xmpp, srv, unique_user("late"), "another-password", "late", as_user=user.upper())
    assert await other.try_connect() in ("failed_auth", "disconnected")
    assert outcome2.get("result") == "conflict", outcome2
    err = outcome2["error"]["error"]
    assert err["type"] == "cancel" and err["code"] == "409", err


@pytest.mark.asyncio
async def test_second_quick_registration_from_one_ip_is_refused(configured_server, xmpp):
    srv = start_with(
        configured_server,
        OPEN + "min_seconds_between_registrations = 600\nregistration_whitelist = []\n")
    first, pw = unique_user("first"), secrets.token_urlsafe(12)
    c, outcome = registering_client(xmpp, srv, first, pw, "first")
    await c.connect()
    assert outcome.get("result") == "created", outcome

    second, outcome2 = registering_client(
        xmpp, srv, unique_user("second"), secrets.token_urlsafe(12), "second")
    assert await second.try_connect() in ("failed_auth", "disconnected")
    assert outcome2.get("result") == "resource-constraint", outcome2
    assert outcome2["error"]["error"]["type"] == "wait"
    srv.wait_log("in-band registration refused: too soon")


@pytest.mark.asyncio
async def test_change_password(configured_server, xmpp):
    srv = start_with(configured_server, OPEN)
    a = srv.new_account("pw")
    alice = xmpp.client(srv, a, name="alice")
    alice.xmpp.register_plugin("xep_0077")
    await alice.connect()

    # Too short for min_password_length (8): refused, the old one stays.
    with pytest.raises(IqError) as err:
        await alice.xmpp.plugin["xep_0077"].change_password("short", timeout=WAIT)
    assert err.value.iq["error"]["condition"] == "not-acceptable"

    new_pw = secrets.token_urlsafe(12)
    await alice.xmpp.plugin["xep_0077"].change_password(new_pw, timeout=WAIT)

    fresh = xmpp.client(srv, a.jid, new_pw, resource="fresh", name="fresh")
    await fresh.connect()
    stale = xmpp.client(srv, a.jid, a.password, resource="stale", name="stale")
    assert await stale.try_connect() == "failed_auth"


@pytest.mark.asyncio
async def test_cancel_removes_the_account(configured_server, xmpp):
    srv = start_with(configured_server, OPEN)
    a = srv.new_account("bye")
    b = srv.new_account("reader")
    alice = xmpp.client(srv, a, resource="phone", name="alice")
    alice.xmpp.register_plugin("xep_0077")
    alice.xmpp.register_plugin("xep_0054")
    await alice.connect()
    laptop = await xmpp.online(srv, a, resource="laptop", name="laptop")
    vcard = alice.xmpp.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Alice leaving"
    await alice.xmpp.plugin["xep_0054"].publish_vcard(vcard, timeout=WAIT)

    await alice.xmpp.plugin["xep_0077"].cancel_registration(timeout=WAIT)
    # §3.2: every session of the account ends with <not-authorized/>.
    for c in (alice, laptop):
        assert await c.wait_disconnected(), c.events
        assert [e["condition"] for e in c.stream_errors] == ["not-authorized"], c.events

    again = xmpp.client(srv, a, resource="again", name="again")
    assert await again.try_connect() == "failed_auth"
    # Its data went with it.
    bob = xmpp.client(srv, b, name="bob")
    bob.xmpp.register_plugin("xep_0054")
    await bob.connect()
    with pytest.raises(IqError) as err:
        await bob.xmpp.plugin["xep_0054"].get_vcard(a.jid, cached=False, timeout=WAIT)
    assert err.value.iq["error"]["condition"] == "service-unavailable"
    srv.wait_log("account removed in-band")


def _raw_register_get(port: int) -> tuple[list, str]:
    """Open a direct-TLS stream: (stream features, the answer to a
    registration get, as text)."""
    conn = RawConn(port, tls=True)
    try:
        res = conn.open_stream()
        features = [el for el in res.elements if el.tag.endswith("}features")]
        conn.buf = b""
        conn.send(f"<iq type='get' id='g1'><query xmlns='{REGISTER_NS}'/></iq>")
        conn.read_until(lambda b: b"</iq>" in b)
        return features, conn.buf.decode(errors="replace")
    finally:
        conn.close()


@pytest.mark.asyncio
async def test_closed_by_default(server, xmpp):
    """The default configuration: no <register/> feature, the iq refused,
    but password changes advertised (jabber:iq:register in disco)."""
    features, answer = await asyncio.to_thread(_raw_register_get, server.c2s_tls_port)
    assert features and features[0].find(FEATURE) is None, ET.tostring(features[0])
    assert "type='error'" in answer and "service-unavailable" in answer, answer

    a = server.new_account("dflt")
    c = xmpp.client(server, a, name="dflt")
    c.xmpp.register_plugin("xep_0030")
    await c.connect()
    info = await c.xmpp.plugin["xep_0030"].get_info(jid=server.domain, timeout=WAIT)
    assert REGISTER_NS in info["disco_info"]["features"]


@pytest.mark.asyncio
async def test_open_registration_is_a_stream_feature(configured_server):
    srv = start_with(configured_server, OPEN)
    features, answer = await asyncio.to_thread(_raw_register_get, srv.c2s_tls_port)
    assert features[0].find(FEATURE) is not None, ET.tostring(features[0])
    assert "<username/>" in answer and "<password/>" in answer, answer


@pytest.mark.asyncio
async def test_module_switched_off(configured_server, xmpp):
    srv = configured_server
    tree = srv.root / "conf"
    subprocess.run([str(VIREO_BIN), "config", "init", str(tree), "--domain", "localhost"],
                   check=True, capture_output=True)
    legacy = tree / "stack" / "04-protocol" / "legacy.toml"
    text = legacy.read_text()
    assert 'modules = ["register"]' in text, text
    legacy.write_text(text.replace('modules = ["register"]', "modules = []"))
    srv.config_path = tree
    srv.start()
    a = srv.new_account("off")
    c = xmpp.client(srv, a, name="off")
    c.xmpp.register_plugin("xep_0030")
    c.xmpp.register_plugin("xep_0077")
    await c.connect()
    info = await c.xmpp.plugin["xep_0030"].get_info(jid="localhost", timeout=WAIT)
    assert REGISTER_NS not in info["disco_info"]["features"]
    with pytest.raises(IqError) as err:
        await c.xmpp.plugin["xep_0077"].change_password("whatever-new-pw", timeout=WAIT)
    assert err.value.iq["error"]["condition"] == "service-unavailable"


def _benchlib():
    spec = importlib.util.spec_from_file_location(
        "benchlib", REPO_ROOT / "server" / "bench" / "benchlib.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_clients_register_on_vireo(configured_server):
    """Both provisioning clients of server/bench/compare.sh work against
    Vireo as they do against Prosody and ejabberd (loopback is exempt from
    the per-IP limit, as in Prosody)."""
    srv = start_with(configured_server,
                     "[stream]\nrequire_encryption = false\n" + OPEN)
    lib = _benchlib()
    out = {"created": 0, "existed": 0, "failed": 0}
    lib.register_range(srv.c2s_port, srv.domain, "bl", range(5), "bench-pw", out)
    assert out == {"created": 5, "existed": 0, "failed": 0}, out
    lib.register_range(srv.c2s_port, srv.domain, "bl", range(5), "bench-pw", out)
    assert out == {"created": 5, "existed": 5, "failed": 0}, out

    bench = VIREO_BIN.parent / "vireo-bench"
    res = subprocess.run(
        [str(bench), "--port", str(srv.c2s_port), "--domain", srv.domain,
         "--tls", "starttls", "--password", "bench-pw", "--user-prefix", "vb",
         "--register", "login", "--accounts", "4", "--concurrency", "2"],
        capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["registered"] == 4 and line["already_registered"] == 0, line
