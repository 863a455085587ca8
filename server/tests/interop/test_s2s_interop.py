"""Vireo federating (s2s) with Prosody 0.12, ejabberd 23.01 and itself.

Vireo serves v.localhost on its own s2s port, routed to the peers'
(VIREO_S2S_OVERRIDES), and the peers are told where it is (routes of
federation_peers.py). Two ways to authenticate, each checked from both
servers' logs:

  dialback   Vireo has its generated self-signed certificate, the peer one
             from its own throwaway CA: neither trusts the other, so both
             directions fall back to dialback (XEP-0220) over TLS;
  external   Vireo and the peer have certificates from one CA both trust
             (tls.certificate / transport.s2s_cafile, s2s_secure_auth on):
             SASL EXTERNAL (XEP-0178) both ways.

On the dialback federation of each peer, users on each side subscribe to
each other, see each other's presence (also after logging in again:
probes), exchange messages (bare and full JIDs, escaped text, extension
payloads, 90 KB bodies) and iqs, chat in a room of Vireo's conference
service, get an error for an unknown remote user or a domain the peer does
not serve, and nothing is lost silently while the peer restarts. Two Vireo
instances federate with each other, and a spoofing peer on a raw socket is
refused: a forged dialback key, a domain that cannot be verified, a
stanza before any verification (STARTTLS and direct TLS), and, from a
domain it really owns (by dialback, or by a trusted certificate with SASL
EXTERNAL), a stanza from another domain. Where one side requires a
trusted certificate (s2s_secure_auth) the other lacks, neither falls back
to dialback and stanzas bounce. Vireo restarting under federation loses
nothing silently either, and stopping closes its s2s streams at once with
<system-shutdown/>.

Each federation (servers, CAs, accounts) is made once per module and
shared by the tests that need it; every process and directory is removed
at the end, also on failure. In CI (CI set) a missing Prosody or ejabberd
fails these tests.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import slixmpp
from slixmpp.xmlstream import ET

from conftest import (
    WAIT,
    Account,
    ConfiguredVireoServer,
    RawConn,
    free_ports,
    parse_stream,
    unique_user,
)
from federation_peers import EjabberdPeer, FederationPeer, ProsodyPeer, peers_available
from throwaway_ca import ThrowawayCA

V = "v.localhost"  # Vireo's domain
P = "p.localhost"  # Prosody's
E = "e.localhost"  # ejabberd's
V1 = "v1.localhost"  # two Vireo instances federating with each other
V2 = "v2.localhost"
CLOSED = "closed.localhost"  # routed to a port nothing listens on
EVIL = "evil.localhost"  # served by the spoofing peer of this module
MUC_SERVICE = f"conference.{V}"  # Vireo's group chat service, a domain of its own
UNSERVED = "q.localhost"  # routed to the peer, which does not serve it

# The first stanza to a domain opens the s2s streams (TCP, TLS, dialback or
# SASL EXTERNAL, and for dialback a second connection back to verify).
S2S_WAIT = 15.0

VIREO_LOG = "info,xmpp_runtime::federation=debug,xmpp_core::s2s=debug"

# What each server logs for each method, per direction (seen from it).
LOGS = {
    "prosody": {
        ("dialback", "out"): "sent dialback key on outgoing s2s stream",
        ("dialback", "in"): f"asking {V} if key",
        ("external", "out"): f"SASL EXTERNAL with {V} succeeded",
        ("external", "in"): f"Accepting SASL EXTERNAL identity from {V}",
    },
    "ejabberd": {
        ("dialback", "out"): f"Accepted outbound s2s dialback authentication {E} -> {V}",
        ("dialback", "in"): f"Accepted inbound s2s dialback authentication {V} -> {E}",
        ("external", "out"): f"Accepted outbound s2s EXTERNAL authentication {E} -> {V}",
        ("external", "in"): f"Accepted inbound s2s EXTERNAL authentication {V} -> {E}",
    },
}
VIREO_IN = {
    "dialback": "s2s domain pair verified by dialback",
    "external": "s2s domain pair verified by SASL EXTERNAL",
}


def require_peers() -> None:
    missing = peers_available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run this with Prosody and ejabberd (.ci/run): {missing}")
        pytest.skip(missing)


class FedVireo(ConfiguredVireoServer):
    """Vireo serving `domain`, with static s2s routes (VIREO_S2S_OVERRIDES)
    that can be changed until start()."""

    def __init__(self, name: str, domain: str, config_path: Path | None = None):
        super().__init__(name, config_path)
        self.domain = domain
        self.routes: dict[str, int] = {}

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.routes:
            env["VIREO_S2S_OVERRIDES"] = ",".join(
                f"{d}=127.0.0.1:{p}" for d, p in sorted(self.routes.items()))
        level = os.environ.get("VIREO_TEST_LOG") or VIREO_LOG
        env["VIREO_LOG"] = env["RUST_LOG"] = level
        return env

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, needle: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.log_text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the log of {self.name} after "
                                     f"{timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)


def write_external_config(srv: FedVireo, cert: Path, key: Path, cafile: Path) -> None:
    """A single-file configuration: a certificate from the shared CA, that
    CA as the s2s trust anchors, and certificates required of peers."""
    path = srv.root / "vireo.toml"
    path.write_text(
        "# written by test_s2s_interop.py\n"
        "[tls]\n"
        f'certificate = "{cert}"\n'
        f'key = "{key}"\n'
        "[transport]\n"
        f's2s_cafile = "{cafile}"\n'
        "[stream]\n"
        "s2s_secure_auth = true\n")
    srv.config_path = path


@dataclass
class Federation:
    """Vireo (v.localhost) and one peer, routed to each other and started,
    with an account on each."""

    kind: str  # "prosody" / "ejabberd"
    # "dialback", "external" (see the module's doc), or one side requiring
    # a certificate the other lacks: "prosody-secure" (Vireo self-signed),
    # "vireo-secure" (Vireo trusting only its own CA, not the peer's)
    method: str
    vireo: FedVireo
    peer: FederationPeer
    vuser: Account
    puser: Account
    ca: ThrowawayCA | None = None  # the shared CA (external)

    @property
    def sources(self) -> list:
        return [self.vireo, self.peer]


@dataclass
class VireoPair:
    method: str
    one: FedVireo  # serving V1
    two: FedVireo  # serving V2


class Federations:
    """The module's federations, each made on first use, all torn down at
    the end of the module."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="vireo-s2s-interop-"))
        os.chmod(self.root, 0o755)
        self.made: dict[tuple[str, str], Federation] = {}
        self.failed: dict[tuple[str, str], str] = {}
        self.cleanups: list = []
        self.closed_port, self.evil_port = free_ports(2)

    def get(self, request, kind: str, method: str) -> Federation:
        require_peers()
        key = (kind, method)
        if key in self.failed:
            pytest.fail(f"the {kind}/{method} federation could not be set up: {self.failed[key]}")
        if key not in self.made:
            try:
                self.made[key] = self._make(kind, method)
            except BaseException as e:
                self.failed[key] = repr(e)
                raise
        fed = self.made[key]
        request.node.log_sources = fed.sources
        return fed

    def _make(self, kind: str, method: str) -> Federation:
        d = self.root / f"{kind}-{method}"
        d.mkdir()
        vireo = FedVireo(f"vireo {V} ({kind}, {method})", V)
        self.cleanups.append(vireo.cleanup)
        ca = None  # the peer makes its own CA; Vireo's certificate is self-signed
        if method == "external":
            ca = ThrowawayCA(d, "shared-ca")
            write_external_config(vireo, *ca.issue(V), ca.cert)
        elif method == "vireo-secure":
            # Vireo requires certificates from its CA, which the peer's is not.
            vca = ThrowawayCA(d, "vireo-ca")
            write_external_config(vireo, *vca.issue(V), vca.cert)
        cls, domain = (ProsodyPeer, P) if kind == "prosody" else (EjabberdPeer, E)
        opts = {}
        if kind == "prosody":
            opts["s2s_secure_auth"] = method in ("external", "prosody-secure")
        else:
            # Not ejabberd's 300 s of bouncing for a domain it could not
            # reach once (the Vireo restart test).
            opts["s2s_max_retry_delay"] = 1
        peer = cls(domain, ca=ca, **opts)
        self.cleanups.append(peer.cleanup)
        peer.routes[V] = vireo.s2s_port
        peer.routes[MUC_SERVICE] = vireo.s2s_port
        vireo.routes[domain] = peer.s2s_port
        # Domains for the spoofing tests: one nobody serves (a closed port),
        # one the attacker serves itself (its Authoritative Server).
        vireo.routes[CLOSED] = self.closed_port
        vireo.routes[EVIL] = self.evil_port
        vireo.routes[UNSERVED] = peer.s2s_port
        puser = Account(peer.add_user("alice", "alice-secret"), "alice-secret")
        peer.start()
        vireo.start()
        vuser = vireo.new_account("vic")
        return Federation(kind, method, vireo, peer, vuser, puser, ca)

    def vireo_pair(self, request, method: str) -> "VireoPair":
        """Two Vireo instances, V1 and V2, routed to each other."""
        key = ("vireo", method)
        if key in self.failed:
            pytest.fail(f"the Vireo pair ({method}) could not be set up: {self.failed[key]}")
        if key not in self.made:
            try:
                self.made[key] = self._make_pair(method)
            except BaseException as e:
                self.failed[key] = repr(e)
                raise
        pair = self.made[key]
        request.node.log_sources = [pair.one, pair.two]
        return pair

    def _make_pair(self, method: str) -> "VireoPair":
        d = self.root / f"vireo-{method}"
        d.mkdir()
        ca = ThrowawayCA(d, "shared-ca") if method == "external" else None
        servers = []
        for domain in (V1, V2):
            srv = FedVireo(f"vireo {domain} ({method})", domain)
            self.cleanups.append(srv.cleanup)
            if ca is not None:
                write_external_config(srv, *ca.issue(domain), ca.cert)
            servers.append(srv)
        one, two = servers
        one.routes[V2] = two.s2s_port
        two.routes[V1] = one.s2s_port
        one.start()
        two.start()
        return VireoPair(method, one, two)

    def close(self) -> None:
        # Each server stops on its own (stopping waits for its peers), so
        # all at once; each cleanup catches nothing and misses nothing.
        with ThreadPoolExecutor(max_workers=max(1, len(self.cleanups))) as pool:
            for future in [pool.submit(c) for c in self.cleanups]:
                try:
                    future.result()
                except Exception:  # noqa: BLE001 - clean up the rest anyway
                    pass
        if os.environ.get("VIREO_TEST_KEEP") != "1":
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def feds():
    f = Federations()
    yield f
    f.close()


async def online(xmpp, server, account: Account, name: str, resource: str | None = None):
    c = xmpp.client(server, account, resource=resource, name=name)
    c.xmpp.register_plugin("xep_0199")
    # slixmpp reports message errors apart from messages: record them too.
    c.xmpp.add_event_handler("message_error", lambda m: c._record("message", m))
    await c.connect(expect_mech=None)
    return c


# --------------------------------------------------------------------------
# 1, 2: which authentication each side uses
# --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["prosody", "ejabberd"])
@pytest.mark.parametrize("method", ["dialback", "external"])
async def test_authentication_method(feds, request, xmpp, kind, method):
    fed = feds.get(request, kind, method)
    tag = f"auth-{kind}-{method}"
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user")
    # Both ways at once: each side's first stanza opens its stream while
    # the other's is being verified.
    v.send_chat(fed.puser.jid, f"{tag}: to the peer")
    p.send_chat(fed.vuser.jid, f"{tag}: to vireo")
    await p.wait_message(sender=fed.vuser.jid, body=f"{tag}: to the peer", timeout=S2S_WAIT)
    await v.wait_message(sender=fed.puser.jid, body=f"{tag}: to vireo", timeout=S2S_WAIT)

    other = "external" if method == "dialback" else "dialback"
    logs = LOGS[kind]
    for direction in ("out", "in"):
        fed.peer.wait_log(logs[(method, direction)], timeout=5.0)
    fed.vireo.wait_log(VIREO_IN[method], timeout=5.0)
    peer_text, vireo_text = fed.peer.log_text(), fed.vireo.log_text()
    wrong = [n for n in (logs[(other, "out")], logs[(other, "in")]) if n in peer_text]
    assert not wrong, f"{fed.peer.name} used {other}: {wrong}"
    assert VIREO_IN[other] not in vireo_text, f"Vireo accepted the peer with {other}"


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["prosody-secure", "vireo-secure"])
async def test_secure_auth_refuses_dialback_and_bounces(feds, request, xmpp, method):
    """One side requires a trusted certificate (s2s_secure_auth) and the
    other has none it trusts: no dialback fallback either way, and each
    side's stanza comes back to its sender as an error."""
    fed = feds.get(request, "prosody", method)
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, "prosody user")
    for client, to in ((v, fed.puser.jid), (p, fed.vuser.jid)):
        msg = client.xmpp.make_message(mto=to, mbody=f"{method}: refused", mtype="chat")
        msg["id"] = unique_user("sec")
        msg.send()
        err = await wait_error(client, to, msg["id"])
        assert err["error"]["condition"] in ("remote-server-not-found",
                                             "remote-server-timeout"), str(err)
    for client in (v, p):
        assert not [m for m in client.received["message"]
                    if m["type"] != "error" and m["body"] == f"{method}: refused"]
    text = fed.vireo.log_text()
    assert VIREO_IN["dialback"] not in text and VIREO_IN["external"] not in text
    if method == "vireo-secure":
        # Vireo judged Prosody's certificate and refused its dialback.
        assert "secure auth is required" in text, fed.vireo.log_tail()
        assert "dialback refused by policy" in text, fed.vireo.log_tail()
    else:
        # Prosody ended Vireo's stream; Vireo says why.
        assert "the s2s peer ended the stream with an error" in text, fed.vireo.log_tail()


# --------------------------------------------------------------------------
# 3: traffic with each peer, on its dialback federation
# --------------------------------------------------------------------------

PEERS = ["prosody", "ejabberd"]


def fresh_peer_account(peer: FederationPeer, prefix: str) -> Account:
    user = unique_user(prefix)
    return Account(peer.add_user(user, user + "-pw"), user + "-pw")


async def wait_error(client, sender: str, stanza_id: str | None = None, *,
                     timeout: float = S2S_WAIT, kind: str = "message"):
    """An error stanza of `kind` from `sender` (bare match), with `stanza_id`
    if given."""
    want = slixmpp.JID(sender).bare

    def pred(st):
        return (st["type"] == "error" and st["from"].bare == want
                and (stanza_id is None or st["id"] == stanza_id))
    return await client.wait_for(kind, pred, timeout=timeout,
                                 desc=f"error from {sender} id={stanza_id}")


NOT_ONLINE = ("unavailable", "error", "probe", "subscribe", "subscribed", "unsubscribe",
              "unsubscribed")


async def wait_online(client, full_jid: str, timeout: float = S2S_WAIT):
    """Availability presence from `full_jid`, whatever its show (slixmpp
    gives the show as the type)."""
    return await client.wait_for(
        "presence", lambda s: s["from"].full == full_jid and s["type"] not in NOT_ONLINE,
        timeout=timeout, desc=f"{full_jid} online")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_mutual_subscription_and_presence(feds, request, xmpp, kind):
    fed = feds.get(request, kind, "dialback")
    va = fed.vireo.new_account("vs")
    pa = fresh_peer_account(fed.peer, "ps")
    v = await online(xmpp, fed.vireo, va, "vireo user")
    p = await online(xmpp, fed.peer, pa, f"{kind} user")

    # Vireo user -> peer user, approved; then the other way.
    v.xmpp.send_presence(pto=pa.jid, ptype="subscribe")
    await p.wait_presence(va.jid, "subscribe", timeout=S2S_WAIT)
    p.xmpp.send_presence(pto=va.jid, ptype="subscribed")
    await v.wait_presence(pa.jid, "subscribed", timeout=S2S_WAIT)
    # Once subscribed, the peer user's current presence comes.
    await v.wait_presence(p.jid.full, "available", full=True, timeout=S2S_WAIT)

    p.xmpp.send_presence(pto=va.jid, ptype="subscribe")
    await v.wait_presence(pa.jid, "subscribe", timeout=S2S_WAIT)
    v.xmpp.send_presence(pto=pa.jid, ptype="subscribed")
    await p.wait_presence(va.jid, "subscribed", timeout=S2S_WAIT)
    await p.wait_presence(v.jid.full, "available", full=True, timeout=S2S_WAIT)

    # Both rosters say both.
    for client, contact in ((v, pa.jid), (p, va.jid)):
        items = await client.fetch_roster()
        item = items.get(slixmpp.JID(contact))
        assert item is not None and item["subscription"] == "both", (client.name, items)

    # Availability with a status, each way.
    p.xmpp.send_presence(pstatus="from the peer", pshow="away")
    got = await v.wait_for(
        "presence", lambda s: s["from"].full == p.jid.full and s["status"] == "from the peer",
        timeout=S2S_WAIT, desc="the peer user's status")
    assert got["show"] == "away"
    v.xmpp.send_presence(pstatus="from vireo", pshow="dnd")
    got = await p.wait_for(
        "presence", lambda s: s["from"].full == v.jid.full and s["status"] == "from vireo",
        timeout=S2S_WAIT, desc="the Vireo user's status")
    assert got["show"] == "dnd"

    # Going offline shows on the other side.
    p_full = p.jid.full
    await p.close()
    await v.wait_presence(p_full, "unavailable", full=True, timeout=S2S_WAIT)

    # Coming back, each side probes the other's presence: the peer user
    # learns that the Vireo user is online (Vireo answers the probe), and
    # a Vireo user coming back learns the peer user is (the peer answers).
    p2 = await online(xmpp, fed.peer, pa, f"{kind} user again")
    await wait_online(p2, v.jid.full)  # still dnd
    await wait_online(v, p2.jid.full)
    v_full = v.jid.full
    await v.close()
    await p2.wait_presence(v_full, "unavailable", full=True, timeout=S2S_WAIT)
    v2 = await online(xmpp, fed.vireo, va, "vireo user again")
    await wait_online(v2, p2.jid.full)
    await wait_online(p2, v2.jid.full)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_messages_to_bare_and_full_jids(feds, request, xmpp, kind):
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user", resource="vr")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user", resource="pr")
    cases = [
        (v, p, fed.puser.jid, "to the peer's bare JID"),
        (v, p, p.jid.full, "to the peer's full JID"),
        (p, v, fed.vuser.jid, "to Vireo's bare JID"),
        (p, v, v.jid.full, "to Vireo's full JID"),
    ]
    for sender, receiver, to, what in cases:
        body = f"{kind}: {what} {unique_user('m')}"
        sender.send_chat(to, body)
        got = await receiver.wait_message(sender=sender.jid.bare, body=body, timeout=S2S_WAIT)
        assert got["from"].full == sender.jid.full, (what, str(got))
        assert got["to"].bare == slixmpp.JID(to).bare, (what, str(got))
    # A burst each way on the open streams: whole and in order.
    for sender, receiver in ((v, p), (p, v)):
        tag = unique_user("burst")
        burst = [f"{tag} {i}" for i in range(200)]
        for body in burst:
            sender.send_chat(receiver.jid.bare, body)
        await receiver.wait_message(sender=sender.jid.bare, body=burst[-1], timeout=S2S_WAIT)
        got = [m["body"] for m in receiver.received["message"]
               if m["body"].startswith(tag + " ")]
        assert got == burst, f"{len(got)} of {len(burst)}, first differences: " + str(
            [(a, b) for a, b in zip(got, burst) if a != b][:3])


EXT_NS = "urn:example:vireo-s2s-interop"
TRICKY = "a < b && c > d, \"quoted\" 'apos' é€😀 ]]> <!-- -->"


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_payloads_cross_intact(feds, request, xmpp, kind):
    """Escaped text, xml:lang, extension payloads (in their namespace, with
    a child in none of the stanza's) and a 90 KB body, each way."""
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user")
    big = ("é€😀 " * 9000)[:30000]
    for sender, receiver in ((v, p), (p, v)):
        tag = unique_user("t")
        msg = sender.xmpp.make_message(mto=receiver.jid.bare, mbody=f"{tag} {TRICKY}",
                                       mtype="chat")
        msg["lang"] = "de"
        msg.append(ET.fromstring("<active xmlns='http://jabber.org/protocol/chatstates'/>"))
        msg.append(ET.fromstring(
            f"<x xmlns='{EXT_NS}' a='1 &amp; 2'><y z='&lt;'>t&amp;</y><w xmlns=''>plain</w></x>"))
        msg.send()
        got = await receiver.wait_message(sender=sender.jid.bare, body=f"{tag} {TRICKY}",
                                          timeout=S2S_WAIT)
        assert got["lang"] == "de", str(got)
        assert got.xml.find("{http://jabber.org/protocol/chatstates}active") is not None, str(got)
        x = got.xml.find(f"{{{EXT_NS}}}x")
        assert x is not None and x.get("a") == "1 & 2", str(got)
        y = x.find(f"{{{EXT_NS}}}y")
        assert y is not None and y.get("z") == "<" and y.text == "t&", str(got)
        w = x.find("w")
        assert w is not None and w.text == "plain", str(got)

        sender.send_chat(receiver.jid.bare, f"{tag} {big}")
        got = await receiver.wait_message(sender=sender.jid.bare, body=f"{tag} {big}",
                                          timeout=S2S_WAIT)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_iq_round_trips(feds, request, xmpp, kind):
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user")
    # XEP-0199 to the other user's full JID (slixmpp answers it) and to the
    # other server, each way.
    for client, target in ((v, p.jid.full), (v, fed.peer.domain),
                           (p, v.jid.full), (p, fed.vireo.domain)):
        res = await client.xmpp.plugin["xep_0199"].send_ping(
            slixmpp.JID(target), timeout=S2S_WAIT)
        assert res["type"] == "result", (client.name, target, str(res))
        assert res["from"] == slixmpp.JID(target), (client.name, target, str(res))


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_unknown_remote_user_gets_an_error(feds, request, xmpp, kind):
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user")
    # From Vireo to nobody on the peer, and from the peer to nobody on Vireo.
    for client, domain in ((v, fed.peer.domain), (p, fed.vireo.domain)):
        nobody = f"{unique_user('nobody')}@{domain}"
        msg = client.xmpp.make_message(mto=nobody, mbody="anyone there?", mtype="chat")
        msg["id"] = unique_user("id")
        msg.send()
        err = await wait_error(client, nobody, msg["id"])
        condition = err["error"]["condition"]
        assert condition in ("service-unavailable", "item-not-found",
                             "recipient-unavailable"), (client.name, str(err))


MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = MUC_NS + "#user"


def muc_codes(st) -> set:
    return {s.get("code") for s in st.xml.findall(f"{{{MUC_USER_NS}}}x/{{{MUC_USER_NS}}}status")}


async def enter_room(client, room: str, nick: str):
    client.xmpp.send_raw(f"<presence to='{room}/{nick}'><x xmlns='{MUC_NS}'/></presence>")
    return await client.wait_for(
        "presence", lambda p: p["from"].full == f"{room}/{nick}" and "110" in muc_codes(p),
        timeout=S2S_WAIT, desc=f"self-presence in {room} as {nick}")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_group_chat_with_a_remote_occupant(feds, request, xmpp, kind):
    """The peer user in a room of Vireo's conference service: a domain of
    Vireo's other than v.localhost, authenticated on its own streams."""
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user")
    room = f"{unique_user('room')}@{MUC_SERVICE}"
    pres = await enter_room(v, room, "vic")
    if "201" in muc_codes(pres):
        iq = v.xmpp.make_iq_set(ito=room)
        iq.append(ET.fromstring(f"<query xmlns='{MUC_NS}#owner'>"
                                "<x xmlns='jabber:x:data' type='submit'/></query>"))
        await iq.send(timeout=WAIT)
    await enter_room(p, room, "remote")
    await v.wait_for("presence", lambda s: s["from"].full == f"{room}/remote",
                     timeout=S2S_WAIT, desc="the remote occupant's presence")
    for sender, nick, receiver in ((p, "remote", v), (v, "vic", p)):
        body = f"{kind}: groupchat from {nick} {unique_user('g')}"
        sender.xmpp.send_message(mto=room, mbody=body, mtype="groupchat")
        got = await receiver.wait_for(
            "message", lambda m: m["type"] == "groupchat" and m["body"] == body,
            timeout=S2S_WAIT, desc=f"the groupchat message of {nick}")
        assert got["from"].full == f"{room}/{nick}", str(got)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_a_domain_the_peer_does_not_serve_bounces(feds, request, xmpp, kind):
    """Vireo reaches the peer's port for q.localhost, which the peer does
    not serve: it ends the stream (host-unknown), and the stanza comes back
    as an error."""
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    to = f"someone@{UNSERVED}"
    msg = v.xmpp.make_message(mto=to, mbody="anyone there?", mtype="chat")
    msg["id"] = unique_user("id")
    msg.send()
    err = await wait_error(v, to, msg["id"])
    assert err["error"]["condition"] in ("remote-server-not-found",
                                         "remote-server-timeout"), str(err)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_peer_restart_loses_nothing_silently(feds, request, xmpp, kind):
    """Stanzas sent while the peer is down are bounced (remote-server-*)
    or delivered once it is back; afterwards federation works again."""
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user")
    v.send_chat(fed.puser.jid, "before the restart")
    await p.wait_message(sender=fed.vuser.jid, body="before the restart", timeout=S2S_WAIT)
    await p.close()

    fed.vireo._log_marker(f"stopping {fed.peer.name}")
    fed.peer.stop()
    sent = {}
    try:
        for i in range(3):
            msg = v.xmpp.make_message(mto=fed.puser.jid, mbody=f"while down {i}", mtype="chat")
            msg["id"] = unique_user("down")
            sent[msg["id"]] = msg["body"]
            msg.send()
            await asyncio.sleep(0.2)
        # A bounce comes from the link failing to connect: quickly, with
        # the peer's port closed.
        bounced = {}
        for sid in list(sent):
            try:
                err = await wait_error(v, fed.puser.jid, sid, timeout=S2S_WAIT)
            except AssertionError:
                continue
            bounced[sid] = err["error"]["condition"]
    finally:
        if not fed.peer.is_running():
            fed.vireo._log_marker(f"starting {fed.peer.name}")
            fed.peer.start()
    for sid, condition in bounced.items():
        assert condition in ("remote-server-not-found", "remote-server-timeout"), (sid, condition)
    # Whatever was not bounced must be delivered now (offline storage on
    # the peer, or late delivery from Vireo's queue).
    p2 = await online(xmpp, fed.peer, fed.puser, f"{kind} user again")
    for sid, body in sent.items():
        if sid not in bounced:
            await p2.wait_message(sender=fed.vuser.jid, body=body, timeout=S2S_WAIT)
    # And federation works again, both ways: a burst queued while the new
    # link is set up arrives whole and in order.
    burst = [f"after the restart {i}" for i in range(10)]
    for body in burst:
        v.send_chat(fed.puser.jid, body)
    for body in burst:
        await p2.wait_message(sender=fed.vuser.jid, body=body, timeout=S2S_WAIT)
    order = [m["body"] for m in p2.received["message"] if m["body"] in burst]
    assert order == burst, order
    p2.send_chat(fed.vuser.jid, "back again")
    await v.wait_message(sender=fed.puser.jid, body="back again", timeout=S2S_WAIT)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", PEERS)
async def test_vireo_restart_loses_nothing_silently(feds, request, xmpp, kind):
    """Vireo stops with links both ways up, and starts again: what the peer
    user sent meanwhile is bounced by the peer or delivered (offline) once
    Vireo is back, and federation works again both ways."""
    fed = feds.get(request, kind, "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    p = await online(xmpp, fed.peer, fed.puser, f"{kind} user")
    v.send_chat(fed.puser.jid, "before vireo restarts")
    await p.wait_message(sender=fed.vuser.jid, body="before vireo restarts", timeout=S2S_WAIT)
    p.send_chat(fed.vuser.jid, "before vireo restarts")
    await v.wait_message(sender=fed.puser.jid, body="before vireo restarts", timeout=S2S_WAIT)
    await v.close()
    fed.vireo._log_marker("stopping (test_vireo_restart)")
    fed.vireo.stop()
    try:
        down_id = send_chat_id(p, fed.vuser.jid, "while vireo is down")
        bounced = await bounced_or_not(p, fed.vuser.jid, down_id, timeout=S2S_WAIT)
    finally:
        if not fed.vireo.is_running():
            fed.vireo.start()
    v2 = await online(xmpp, fed.vireo, fed.vuser, "vireo user again")
    if not bounced:
        await v2.wait_message(sender=fed.puser.jid, body="while vireo is down",
                              timeout=S2S_WAIT)
    v2.send_chat(fed.puser.jid, "vireo is back")
    await p.wait_message(sender=fed.vuser.jid, body="vireo is back", timeout=S2S_WAIT)
    # The peer may still be backing off from its failed connection (ejabberd
    # bounces for up to s2s_max_retry_delay): on a bounce, try again.
    deadline = time.monotonic() + S2S_WAIT
    while True:
        body = f"welcome back {unique_user('b')}"
        sid = send_chat_id(p, fed.vuser.jid, body)
        outcome = await delivered_or_bounced(v2, p, fed.puser.jid, fed.vuser.jid, body, sid,
                                             deadline)
        if outcome == "delivered":
            break
        assert outcome == "bounced" and time.monotonic() < deadline, (
            f"'welcome back' neither delivered nor bounced within {S2S_WAIT}s")
        await asyncio.sleep(0.3)


def send_chat_id(client, to: str, body: str) -> str:
    msg = client.xmpp.make_message(mto=to, mbody=body, mtype="chat")
    msg["id"] = unique_user("id")
    msg.send()
    return msg["id"]


def _bounce_of(client, to: str, sid: str) -> bool:
    want = slixmpp.JID(to).bare
    return any(m["type"] == "error" and m["id"] == sid and m["from"].bare == want
               for m in client.received["message"])


async def bounced_or_not(client, to: str, sid: str, timeout: float) -> bool:
    """Whether the message `sid` comes back as an error within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _bounce_of(client, to, sid):
            return True
        await asyncio.sleep(0.1)
    return False


async def delivered_or_bounced(receiver, sender, sender_jid: str, to: str, body: str,
                               sid: str, deadline: float) -> str:
    """'delivered', 'bounced' or 'neither' (by `deadline`)."""
    want = slixmpp.JID(sender_jid).bare
    while time.monotonic() < deadline:
        if any(m["body"] == body and m["type"] != "error" and m["from"].bare == want
               for m in receiver.received["message"]):
            return "delivered"
        if _bounce_of(sender, to, sid):
            return "bounced"
        await asyncio.sleep(0.1)
    return "neither"


# --------------------------------------------------------------------------
# 4: Vireo with Vireo
# --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["dialback", "external"])
async def test_vireo_federates_with_vireo(feds, request, xmpp, method):
    pair = feds.vireo_pair(request, method)
    a = pair.one.new_account("a")
    b = pair.two.new_account("b")
    ca = await online(xmpp, pair.one, a, f"a@{V1}")
    cb = await online(xmpp, pair.two, b, f"b@{V2}")

    # Messages both ways at once: each server opens its link while the
    # other verifies its key over it (no deadlock, no race lost).
    ca.send_chat(b.jid, f"{method}: hello v2")
    cb.send_chat(ca.jid.full, f"{method}: hello v1")
    await cb.wait_message(sender=a.jid, body=f"{method}: hello v2", timeout=S2S_WAIT)
    await ca.wait_message(sender=b.jid, body=f"{method}: hello v1", timeout=S2S_WAIT)

    # Subscriptions both ways, then presence.
    for x, y, xa, ya in ((ca, cb, a, b), (cb, ca, b, a)):
        x.xmpp.send_presence(pto=ya.jid, ptype="subscribe")
        await y.wait_presence(xa.jid, "subscribe", timeout=S2S_WAIT)
        y.xmpp.send_presence(pto=xa.jid, ptype="subscribed")
        await x.wait_presence(ya.jid, "subscribed", timeout=S2S_WAIT)
        await x.wait_presence(y.jid.full, "available", full=True, timeout=S2S_WAIT)
    for client, contact in ((ca, b.jid), (cb, a.jid)):
        items = await client.fetch_roster()
        item = items.get(slixmpp.JID(contact))
        assert item is not None and item["subscription"] == "both", (client.name, items)
    cb.xmpp.send_presence(pstatus="v2 here")
    await ca.wait_for("presence", lambda s: s["from"].full == cb.jid.full
                      and s["status"] == "v2 here", timeout=S2S_WAIT, desc="b's status")

    # Each side authenticated the other with the method expected.
    other = "external" if method == "dialback" else "dialback"
    for srv in (pair.one, pair.two):
        srv.wait_log(VIREO_IN[method], timeout=5.0)
        assert VIREO_IN[other] not in srv.log_text(), f"{srv.name} used {other}"


# --------------------------------------------------------------------------
# 5: a spoofing peer on a raw socket
# --------------------------------------------------------------------------

DB_NS = "jabber:server:dialback"
STREAM_NS = "http://etherx.jabber.org/streams"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"


def s2s_header(sender: str, target: str, extra: str = "") -> str:
    return ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
            "xmlns:stream='http://etherx.jabber.org/streams' "
            f"xmlns:db='jabber:server:dialback' from='{sender}' to='{target}' "
            f"version='1.0'{extra}>")


def _tag(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _features_in(buf: bytes) -> bool:
    return b"features>" in buf or b"</stream:stream>" in buf


class SpoofingPeer:
    """A raw s2s connection to Vireo claiming `sender`: the stream header,
    STARTTLS (no certificate, nothing verified), the header again."""

    def __init__(self, port: int, sender: str, target: str = V, *, direct_tls: bool = False,
                 client_cert: tuple[Path, Path] | None = None):
        """`direct_tls`: `port` is the XEP-0368 port (TLS from the first
        byte, ALPN xmpp-server), else STARTTLS. `client_cert`: (certificate,
        key) presented in the TLS handshake."""
        self.sender, self.target = sender, target
        self.conn = RawConn(port, timeout=S2S_WAIT)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if client_cert is not None:
            ctx.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
        if not direct_tls:
            self.conn.send(s2s_header(sender, target))
            assert self.conn.read_until(_features_in), self.conn.result().describe()
            assert b"starttls" in self.conn.buf, f"no STARTTLS offered: {self.conn.buf!r}"
            self.conn.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            assert self.conn.read_until(lambda b: b"proceed" in b), self.conn.result().describe()
        else:
            ctx.set_alpn_protocols(["xmpp-server"])
        self.conn.sock = ctx.wrap_socket(self.conn.sock, server_hostname=target)
        self.conn.buf = b""
        self.conn.send(s2s_header(sender, target))
        assert self.conn.read_until(_features_in), self.conn.result().describe()
        assert b"starttls" not in self.conn.buf, f"STARTTLS over TLS: {self.conn.buf!r}"

    def send(self, data: str) -> None:
        self.conn.send(data)

    def restart(self) -> None:
        """A new stream on the same connection (after SASL)."""
        self.conn.buf = b""
        self.conn.send(s2s_header(self.sender, self.target))
        assert self.conn.read_until(_features_in), self.conn.result().describe()

    def elements(self) -> list:
        return self.conn.result().elements

    def wait_element(self, pred, timeout: float = S2S_WAIT):
        """The first top-level element matching `pred` (or None at the end
        of the stream or after `timeout`)."""
        found = []

        def have(_buf):
            found[:] = [el for el in self.elements() if pred(el)]
            return bool(found) or self.conn.result().stream_closed
        self.conn.read_until(have, timeout)
        return found[0] if found else None

    def read_until_closed(self, timeout: float = S2S_WAIT):
        return self.conn.read_until_closed(timeout)

    def close(self) -> None:
        self.conn.close()


def dialback_result(el, sender: str, target: str) -> bool:
    return (el.tag == _tag(DB_NS, "result") and el.get("from") == target
            and el.get("to") == sender)


BOGUS_KEY = "0f" * 32


def spoofed_message(to: str, body: str, sender: str = f"alice@{P}") -> str:
    return (f"<message from='{sender}' to='{to}' type='chat' id='{unique_user('spoof')}'>"
            f"<body>{body}</body></message>")


async def assert_nothing_arrives(client, body: str) -> None:
    got = await client.collect("message", lambda m: m["body"] == body, duration=1.0)
    assert not got, f"{client.name} received a spoofed message: {[str(m) for m in got]}"


@pytest.mark.asyncio
async def test_spoofed_dialback_key_is_refused(feds, request, xmpp):
    """(a) A db:result with a key that is not p.localhost's: Vireo asks the
    real p.localhost (Prosody), which says invalid; nothing is routed."""
    fed = feds.get(request, "prosody", "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    spoof = SpoofingPeer(fed.vireo.s2s_port, P)
    try:
        spoof.send(f"<db:result from='{P}' to='{V}'>{BOGUS_KEY}</db:result>")
        verdict = spoof.wait_element(lambda el: dialback_result(el, P, V))
        assert verdict is not None, spoof.conn.result().describe()
        assert verdict.get("type") in ("invalid", "error"), spoof.conn.result().describe()
        body = "spoofed after a bogus key"
        spoof.send(spoofed_message(fed.vuser.jid, body))
        res = spoof.read_until_closed()
        assert res.stream_closed or res.closed, res.describe()
    finally:
        spoof.close()
    await assert_nothing_arrives(v, body)
    # Prosody, the real p.localhost, was asked, and said no.
    fed.peer.wait_log("Asked to verify a dialback key that was incorrect", timeout=5.0)


@pytest.mark.asyncio
async def test_dialback_for_an_unreachable_domain_fails(feds, request, xmpp):
    """(a) A db:result claiming a domain whose server cannot be reached:
    the verification fails (type='error'), nothing is routed, and a stanza
    from that domain ends the stream with not-authorized."""
    fed = feds.get(request, "prosody", "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    spoof = SpoofingPeer(fed.vireo.s2s_port, CLOSED)
    try:
        spoof.send(f"<db:result from='{CLOSED}' to='{V}'>{BOGUS_KEY}</db:result>")
        verdict = spoof.wait_element(lambda el: dialback_result(el, CLOSED, V))
        assert verdict is not None, spoof.conn.result().describe()
        assert verdict.get("type") in ("invalid", "error"), spoof.conn.result().describe()
        body = "spoofed from an unreachable domain"
        spoof.send(spoofed_message(fed.vuser.jid, body, sender=f"mallory@{CLOSED}"))
        res = spoof.read_until_closed()
        assert res.stream_error() == "not-authorized" or (
            verdict.get("type") == "invalid" and (res.stream_closed or res.closed)), res.describe()
    finally:
        spoof.close()
    await assert_nothing_arrives(v, body)


@pytest.mark.asyncio
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_stanza_before_verification_is_not_authorized(feds, request, xmpp, direct_tls):
    """(b) A stanza with no dialback at all: <not-authorized/>, on the
    STARTTLS port and on the direct TLS one."""
    fed = feds.get(request, "prosody", "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    port = fed.vireo.s2s_tls_port if direct_tls else fed.vireo.s2s_port
    spoof = SpoofingPeer(port, P, direct_tls=direct_tls)
    body = "spoofed without dialback"
    try:
        spoof.send(spoofed_message(fed.vuser.jid, body))
        res = spoof.read_until_closed()
    finally:
        spoof.close()
    assert res.stream_error() == "not-authorized", res.describe()
    assert res.stream_closed or res.closed, res.describe()
    await assert_nothing_arrives(v, body)


class EvilAuthority:
    """The attacker's own server for EVIL, on the port Vireo routes EVIL
    to: it takes Vireo's dialback link (STARTTLS with a certificate Vireo
    does not trust; dialback does not need one), and says every key is
    valid. With it, the attacker legitimately verifies EVIL on its
    incoming stream, and can then try to send from other domains."""

    def __init__(self, port: int, cert: Path, key: Path):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.2)
        self.stop = threading.Event()
        self.socks: list = []
        self.answered: list[str] = []  # what it answered, for reports
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for s in [self.listener, *self.socks]:
            try:
                s.close()
            except OSError:
                pass

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            self.socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _read(self, sock, buf: bytes, pred) -> bytes:
        deadline = time.monotonic() + S2S_WAIT
        while not pred(buf) and not self.stop.is_set() and time.monotonic() < deadline:
            sock.settimeout(0.2)
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except (OSError, ssl.SSLError):
                raise EOFError
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, sock) -> None:
        header = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                  f"xmlns:stream='{STREAM_NS}' xmlns:db='{DB_NS}' from='{EVIL}' to='{V}' "
                  "id='{id}' version='1.0'>")
        try:
            buf = self._read(sock, b"", lambda b: parse_stream(b)[0] is not None)
            sock.sendall(header.format(id="e1e1e1e1e1e1e1e1").encode()
                         + b"<stream:features><starttls xmlns='" + TLS_NS.encode()
                         + b"'><required/></starttls></stream:features>")
            self._read(sock, buf, lambda b: b"starttls" in b[b.find(b"<stream:stream"):]
                       and b"/>" in b.split(b"starttls", 1)[1])
            sock.sendall(f"<proceed xmlns='{TLS_NS}'/>".encode())
            sock = self.ctx.wrap_socket(sock, server_side=True)
            self.socks.append(sock)
            buf = self._read(sock, b"", lambda b: parse_stream(b)[0] is not None)
            sock.sendall(header.format(id="e2e2e2e2e2e2e2e2").encode()
                         + b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'>"
                         + b"<errors/></dialback></stream:features>")
            done = 0
            while not self.stop.is_set():
                elements = parse_stream(buf)[1]
                for el in elements[done:]:
                    if el.tag == _tag(DB_NS, "verify"):
                        reply = (f"<db:verify from='{EVIL}' to='{V}' id='{el.get('id')}' "
                                 "type='valid'/>")
                    elif el.tag == _tag(DB_NS, "result"):
                        reply = f"<db:result from='{EVIL}' to='{V}' type='valid'/>"
                    else:
                        continue
                    self.answered.append(reply)
                    sock.sendall(reply.encode())
                done = len(elements)
                n = len(buf)
                buf = self._read(sock, buf, lambda b: len(b) > n)
        except (EOFError, OSError, ssl.SSLError):
            pass


@pytest.mark.asyncio
async def test_verified_peer_cannot_send_from_another_domain(feds, request, xmpp):
    """(c) The attacker owns evil.localhost (its server answers Vireo's
    dialback for it), verifies it, and then sends a stanza from
    p.localhost on the same stream: <invalid-from/>, nothing routed. A
    stanza from its own domain, before, goes through (the control)."""
    fed = feds.get(request, "prosody", "dialback")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    d = feds.root / "evil"
    d.mkdir(exist_ok=True)
    cert, key = ThrowawayCA(d, "evil-ca").issue(EVIL)
    authority = EvilAuthority(feds.evil_port, cert, key)
    spoof = None
    try:
        spoof = SpoofingPeer(fed.vireo.s2s_port, EVIL)
        spoof.send(f"<db:result from='{EVIL}' to='{V}'>{BOGUS_KEY}</db:result>")
        verdict = spoof.wait_element(lambda el: dialback_result(el, EVIL, V))
        assert verdict is not None and verdict.get("type") == "valid", (
            spoof.conn.result().describe(), authority.answered)
        # Its own domain: delivered (after whitespace keepalives, which
        # Prosody and ejabberd send on idle s2s streams).
        spoof.send(" \n\t ")
        spoof.send(spoofed_message(fed.vuser.jid, "from evil itself", sender=f"mallory@{EVIL}"))
        await v.wait_message(sender=f"mallory@{EVIL}", body="from evil itself", timeout=S2S_WAIT)
        # Another domain on the same stream: refused.
        body = "spoofed from a verified stream"
        spoof.send(spoofed_message(fed.vuser.jid, body, sender=f"alice@{P}"))
        res = spoof.read_until_closed()
        assert res.stream_error() == "invalid-from", res.describe()
        assert res.stream_closed or res.closed, res.describe()
    finally:
        if spoof is not None:
            spoof.close()
        authority.close()
    await assert_nothing_arrives(v, body)


@pytest.mark.asyncio
async def test_vireo_stopping_closes_its_s2s_streams(feds, request, xmpp):
    pair = feds.vireo_pair(request, "shutdown")
    a = pair.one.new_account("a")
    b = pair.two.new_account("b")
    ca = await online(xmpp, pair.one, a, f"a@{V1}")
    cb = await online(xmpp, pair.two, b, f"b@{V2}")
    ca.send_chat(b.jid, "streams up")
    await cb.wait_message(sender=a.jid, body="streams up", timeout=S2S_WAIT)
    cb.send_chat(a.jid, "both ways")
    await ca.wait_message(sender=b.jid, body="both ways", timeout=S2S_WAIT)
    await ca.close()
    started = time.monotonic()
    pair.one.stop()
    took = time.monotonic() - started
    # Stopping does not wait for streams nobody closes, and the other side
    # hears why (like Prosody's <system-shutdown/>).
    assert took < 2.0, f"stopping took {took:.1f}s"
    pair.two.wait_log("condition=system-shutdown", timeout=2.0)


SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"


def sasl_external(authzid: str | None) -> str:
    text = base64.b64encode(authzid.encode()).decode() if authzid else "="
    return f"<auth xmlns='{SASL_NS}' mechanism='EXTERNAL'>{text}</auth>"


def sasl_outcome(el) -> bool:
    return el.tag in (_tag(SASL_NS, "success"), _tag(SASL_NS, "failure"))


@pytest.mark.asyncio
async def test_sasl_external_proves_only_the_certificate_domain(feds, request, xmpp):
    """A certificate from a CA Vireo trusts, for evil.localhost: claiming
    p.localhost with it, EXTERNAL is not offered, fails when tried anyway,
    and stanzas are not-authorized; as evil.localhost it succeeds, and a
    stanza from p.localhost on that stream is invalid-from."""
    fed = feds.get(request, "prosody", "external")
    v = await online(xmpp, fed.vireo, fed.vuser, "vireo user")
    cert = fed.ca.issue(EVIL)
    body = "spoofed with a certificate"

    spoof = SpoofingPeer(fed.vireo.s2s_port, P, client_cert=cert)
    try:
        assert b"EXTERNAL" not in spoof.conn.buf, spoof.conn.buf
        spoof.send(sasl_external(P))
        outcome = spoof.wait_element(sasl_outcome)
        assert outcome is not None and outcome.tag == _tag(SASL_NS, "failure"), (
            spoof.conn.result().describe())
        spoof.send(spoofed_message(fed.vuser.jid, body))
        res = spoof.read_until_closed()
        assert res.stream_error() == "not-authorized", res.describe()
    finally:
        spoof.close()

    spoof = SpoofingPeer(fed.vireo.s2s_port, EVIL, client_cert=cert)
    try:
        assert b"EXTERNAL" in spoof.conn.buf, spoof.conn.buf
        spoof.send(sasl_external(None))
        outcome = spoof.wait_element(sasl_outcome)
        assert outcome is not None and outcome.tag == _tag(SASL_NS, "success"), (
            spoof.conn.result().describe())
        spoof.restart()
        spoof.send(spoofed_message(fed.vuser.jid, "evil, with its certificate",
                                   sender=f"mallory@{EVIL}"))
        await v.wait_message(sender=f"mallory@{EVIL}", body="evil, with its certificate",
                             timeout=S2S_WAIT)
        spoof.send(spoofed_message(fed.vuser.jid, body))
        res = spoof.read_until_closed()
        assert res.stream_error() == "invalid-from", res.describe()
    finally:
        spoof.close()
    await assert_nothing_arrives(v, body)
