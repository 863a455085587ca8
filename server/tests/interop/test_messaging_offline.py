"""Chat messages between online users and offline storage (incl. restarts)."""

import asyncio

import pytest

from conftest import unique_user

TRICKY = "héllo wörld 🐦 <&> \"quoted\" 'apos' ]]> &amp; tab\tend 中文"


@pytest.mark.asyncio
async def test_chat_both_ways_full_and_bare_jid(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    alice = await xmpp.online(server, a, resource="a1", name="alice")
    bob = await xmpp.online(server, b, resource="b1", name="bob")

    cases = [
        (alice, bob, bob.jid.full, "to full JID"),
        (alice, bob, b.jid, "to bare JID"),
        (bob, alice, alice.jid.full, "to full JID"),
        (bob, alice, a.jid, "to bare JID"),
    ]
    for sender, receiver, to, label in cases:
        body = f"{TRICKY} [{sender.name}->{receiver.name} {label} {unique_user('m')}]"
        sender.send_chat(to, body)
        msg = await receiver.wait_message(sender=sender.jid.bare, body=body)
        assert msg["body"] == body
        assert msg["from"].full == sender.jid.full, f"{label}: from={msg['from']}"
        assert msg["to"].bare == receiver.jid.bare, f"{label}: to={msg['to']}"
        assert msg["type"] == "chat"


@pytest.mark.asyncio
async def test_large_message_body_intact(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    alice = await xmpp.online(server, a, name="alice")
    bob = await xmpp.online(server, b, name="bob")
    body = ("0123456789abcdef<>&ü🐦" * 1500)[:30000]
    alice.send_chat(bob.jid.full, body)
    msg = await bob.wait_message(sender=a.jid, body=body)
    assert msg["body"] == body


async def _send_while_offline(server, xmpp, a, b, body: str) -> None:
    """alice sends `body` to registered-but-offline bob; returns once the
    server has processed the message (round trip after it) and alice left."""
    alice = await xmpp.online(server, a, name="alice")
    alice.send_chat(b.jid, body)
    await alice.sync()
    await alice.close()


async def _login_and_expect(server, xmpp, account, sender: str, body: str, name: str):
    c = await xmpp.online(server, account, name=name)
    msg = await c.wait_message(sender=sender, body=body)
    assert msg["body"] == body
    assert msg["from"].bare == sender
    return c


@pytest.mark.asyncio
async def test_offline_message_delivered_at_next_login(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    body = f"while you were away: {TRICKY} {unique_user('m')}"
    await _send_while_offline(server, xmpp, a, b, body)
    bob = await _login_and_expect(server, xmpp, b, a.jid, body, "bob")
    await bob.close()
    # Delivered once: not again at the following login.
    bob2 = await xmpp.online(server, b, name="bob-again")
    again = await bob2.collect("message", lambda m: m["body"] == body)
    assert not again, "offline message delivered twice"


@pytest.mark.asyncio
async def test_offline_messages_keep_order(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    alice = await xmpp.online(server, a, name="alice")
    bodies = [f"#{i} {unique_user('m')}" for i in range(5)]
    for body in bodies:
        alice.send_chat(b.jid, body)
    await alice.sync()
    bob = await xmpp.online(server, b, name="bob")
    for body in bodies:
        await bob.wait_message(sender=a.jid, body=body)
    got = [m["body"] for m in bob.received["message"] if m["body"] in bodies]
    assert got == bodies, got


@pytest.mark.asyncio
async def test_offline_message_survives_graceful_restart(own_server, xmpp):
    srv = own_server
    a = srv.new_account("alice")
    b = srv.new_account("bob")
    body = f"stored across SIGTERM: {TRICKY}"
    await _send_while_offline(srv, xmpp, a, b, body)
    code = await asyncio.to_thread(srv.restart)
    assert code == 0, f"exit code after SIGTERM: {code}"
    await _login_and_expect(srv, xmpp, b, a.jid, body, "bob")


@pytest.mark.asyncio
async def test_offline_message_survives_kill9(own_server, xmpp):
    """Once the server has stored the message for offline delivery it must
    survive a SIGKILL right after. (Without XEP-0198 acks a client cannot see
    that moment; the server's debug log marks it.)"""
    srv = own_server
    a = srv.new_account("alice")
    b = srv.new_account("bob")
    body = f"stored across SIGKILL: {TRICKY}"
    alice = await xmpp.online(srv, a, name="alice")
    alice.send_chat(b.jid, body)
    await alice.sync()
    await asyncio.to_thread(srv.wait_log, f"offline message stored account={b.jid}")
    await asyncio.to_thread(srv.kill9)
    alice.abort()
    await asyncio.to_thread(srv.start)
    await _login_and_expect(srv, xmpp, b, a.jid, body, "bob")


@pytest.mark.asyncio
async def test_accounts_survive_restart(own_server, xmpp):
    srv = own_server
    a = srv.new_account("alice")
    await asyncio.to_thread(srv.kill9)
    await asyncio.to_thread(srv.start)
    await xmpp.online(srv, a, name="alice")


@pytest.mark.asyncio
async def test_message_to_unknown_user(server, xmpp):
    """RFC 6121 8.5.1: ignored, or bounced with service-unavailable; the
    sender's session goes on either way."""
    a = server.new_account("alice")
    alice = await xmpp.online(server, a, name="alice")
    ghost = server.jid(unique_user("ghost"))
    alice.send_chat(ghost, "anyone there?")
    await alice.sync()
    bounces = await alice.collect("message", lambda m: m["from"].bare == ghost)
    for m in bounces:
        assert m["type"] == "error", f"got a non-error message from a ghost: {m}"
        assert m["error"]["condition"] == "service-unavailable", str(m)
    await alice.sync()
