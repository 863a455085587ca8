"""Hostile or broken input: malformed XML, restricted XML, stanzas before
authentication, spoofed 'from' addresses."""

import asyncio
import time

import pytest

from conftest import STREAM_HEADER, WAIT, RawConn, raw_exchange, unique_user

MESSAGE = "<message to='x@localhost' type='chat'><body>hi</body></message>"


def _assert_stream_error(res, *conditions: str) -> None:
    got = res.stream_error()
    assert got in conditions, (
        f"expected stream error {' or '.join(conditions)} "
        f"(urn:ietf:params:xml:ns:xmpp-streams), got {got}: {res.describe()}"
    )
    assert res.closed, f"server did not close the connection after <{got}/>: {res.describe()}"


async def _still_serves(server, xmpp) -> None:
    acc = server.new_account("after")
    c = await xmpp.online(server, acc, name="after-attack")
    c.send_chat(c.jid.full, "still alive")
    await c.wait_message(body="still alive")


def test_garbage_is_not_well_formed(server):
    res = raw_exchange(server.c2s_port, ["<<<>>>&&&"])
    _assert_stream_error(res, "not-well-formed")
    assert res.stream_closed, f"no </stream:stream>: {res.describe()}"


def test_garbage_instead_of_stream_header(server):
    res = raw_exchange(server.c2s_port, ["\x00\x01\x02 GET / HTTP/1.1\r\n\r\n"],
                       wait_features=False)
    assert res.closed, f"server kept a garbage connection open: {res.describe()}"
    cond = res.stream_error()
    assert cond in (None, "not-well-formed", "invalid-namespace", "bad-format"), res.describe()


def test_mismatched_end_tag_is_not_well_formed(server):
    res = raw_exchange(server.c2s_port, ["<message><body>x</bogus></message>"])
    _assert_stream_error(res, "not-well-formed")


@pytest.mark.parametrize("tls", [False, True], ids=["starttls-port-cleartext", "direct-tls"])
def test_stanza_before_auth_is_not_authorized(server, tls):
    port = server.c2s_tls_port if tls else server.c2s_port
    res = raw_exchange(port, [MESSAGE], tls=tls)
    _assert_stream_error(res, "not-authorized")


def test_iq_before_auth_is_not_authorized(server):
    res = raw_exchange(
        server.c2s_port,
        ["<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>"],
    )
    _assert_stream_error(res, "not-authorized")


BILLION_LAUGHS = (
    "<?xml version='1.0'?>"
    "<!DOCTYPE lolz ["
    "<!ENTITY lol 'lol'>"
    + "".join(
        f"<!ENTITY lol{i} '{('&lol' + (str(i - 1) if i > 1 else '') + ';') * 10}'>"
        for i in range(1, 10)
    )
    + "]>"
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='localhost' version='1.0'>"
    "<message to='x@localhost'><body>&lol9;</body></message>"
)


@pytest.mark.asyncio
async def test_billion_laughs_is_restricted_xml(server, xmpp):
    start = time.monotonic()
    res = await asyncio.to_thread(
        raw_exchange, server.c2s_port, [BILLION_LAUGHS], wait_features=False
    )
    _assert_stream_error(res, "restricted-xml")
    assert time.monotonic() - start < WAIT, "slow to refuse the DTD"
    assert server.is_running(), "server died"
    await _still_serves(server, xmpp)


@pytest.mark.asyncio
async def test_many_doctype_attacks_in_parallel(server, xmpp):
    async def one():
        return await asyncio.to_thread(
            raw_exchange, server.c2s_port, [BILLION_LAUGHS], wait_features=False
        )

    results = await asyncio.gather(*(one() for _ in range(8)))
    for res in results:
        _assert_stream_error(res, "restricted-xml")
    await _still_serves(server, xmpp)


@pytest.mark.parametrize(
    "payload",
    [
        "<!-- a comment -->",
        "<?evil processing instruction?>",
        "<!DOCTYPE foo [<!ENTITY x 'y'>]>",
    ],
    ids=["comment", "processing-instruction", "doctype-inside-stream"],
)
def test_restricted_xml_inside_stream(server, payload):
    """RFC 6120 11.1: comments, PIs and DTDs are refused with restricted-xml
    (a DOCTYPE after the root is also plain not-well-formed XML)."""
    res = raw_exchange(server.c2s_port, [payload])
    allowed = ("restricted-xml", "not-well-formed") if "DOCTYPE" in payload else ("restricted-xml",)
    _assert_stream_error(res, *allowed)


def test_unknown_entity_reference(server):
    res = raw_exchange(server.c2s_port, ["<message><body>&xxe;</body></message>"])
    _assert_stream_error(res, "restricted-xml", "not-well-formed")


def test_wrong_stream_namespace(server):
    header = (
        "<stream:stream xmlns='jabber:client' xmlns:stream='urn:example:wrong' "
        "to='localhost' version='1.0'>"
    )
    res = raw_exchange(server.c2s_port, [header], wait_features=False)
    _assert_stream_error(res, "invalid-namespace", "bad-format", "not-well-formed")


def test_unknown_host(server):
    header = STREAM_HEADER.replace("to='localhost'", "to='elsewhere.example'")
    res = raw_exchange(server.c2s_port, [header], wait_features=False)
    _assert_stream_error(res, "host-unknown")


def test_slowloris_partial_header_is_bounded(server):
    """A half-sent header must not block other clients."""
    slow = RawConn(server.c2s_port)
    try:
        slow.send("<stream:stream xmlns='jabber:client' xmlns:str")
        other = RawConn(server.c2s_port)
        try:
            res = other.open_stream()
        finally:
            other.close()
        assert res.find("{http://etherx.jabber.org/streams}features"), res.describe()
    finally:
        slow.close()


@pytest.mark.asyncio
async def test_spoofed_from_is_never_delivered_as_spoofed(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    c = server.new_account("carol")
    alice = await xmpp.online(server, a, name="alice")
    carol = await xmpp.online(server, c, name="carol")
    spoof = f"spoofed {unique_user('m')}"
    alice.xmpp.send_raw(
        f"<message from='{b.jid}/x' to='{c.jid}' type='chat' id='spoof1'>"
        f"<body>{spoof}</body></message>"
    )
    # Either the server stamps alice's JID, or it kills alice's stream
    # (invalid-from), or it drops the stanza. Never bob.
    killed = await alice.wait_disconnected(1.0)
    if killed:
        conditions = [e["condition"] for e in alice.stream_errors]
        assert "invalid-from" in conditions, f"alice disconnected with {conditions}"
        await asyncio.sleep(1.0)
    else:
        control = f"control {unique_user('m')}"
        alice.send_chat(c.jid, control)
        await carol.wait_message(sender=a.jid, body=control)
    from_bob = [m for m in carol.received["message"] if m["from"].bare == b.jid]
    assert not from_bob, f"carol got a message claiming to be from bob: {[str(m) for m in from_bob]}"
    for m in carol.received["message"]:
        if m["body"] == spoof:
            assert m["from"].full == alice.jid.full, f"spoofed message stamped {m['from']}"


@pytest.mark.asyncio
async def test_spoofed_from_presence(server, xmpp):
    """A subscription request with a forged sender must not reach the
    recipient as coming from the forged JID."""
    a = server.new_account("alice")
    b = server.new_account("bob")
    c = server.new_account("carol")
    alice = await xmpp.online(server, a, name="alice")
    carol = await xmpp.online(server, c, name="carol")
    alice.xmpp.send_raw(f"<presence from='{b.jid}' to='{c.jid}' type='subscribe'/>")
    if not await alice.wait_disconnected(1.0):
        await alice.sync()
    await asyncio.sleep(1.0)
    from_bob = [p for p in carol.received["presence"] if p["from"].bare == b.jid]
    assert not from_bob, [str(p) for p in from_bob]
