"""XEP-0357 push notifications, with slixmpp's ComponentXMPP as the app
server (connected as an XEP-0114 component): a user enables push, goes
offline, another user writes; the app server receives exactly one PubSub
publish with the summary form and the user's publish options, from the
server's JID. The registration survives a restart; after <disable/>, or
after the app server refuses a publish, nothing is published."""

import asyncio
import secrets
import xml.etree.ElementTree as ET

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from components import Component, start_with_components, wait_component_port
from conftest import QUIET, WAIT

PUSH = "urn:xmpp:push:0"
PUBSUB = "http://jabber.org/protocol/pubsub"
DATA = "jabber:x:data"
APP = "push.localhost"
SECRET = secrets.token_hex(16)
NODE = "yxs32uqsflafdk3iuqo"
OPTIONS = (
    f"<x xmlns='{DATA}' type='submit'>"
    "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
    "<field var='secret'><value>eruio234vzxc2kla-91</value></field></x>"
)


class AppServer(Component):
    """An app server: records every publish and answers it, with a result
    or with the error set in `refuse`."""

    def __init__(self, srv):
        super().__init__(srv, APP, SECRET)
        self.publishes: list = []
        self.refuse: tuple[str, str] | None = None
        ns = self.xmpp.default_ns
        self.xmpp.register_handler(Callback(
            "push publish", MatchXPath(f"{{{ns}}}iq/{{{PUBSUB}}}pubsub"), self._on_publish))

    def _on_publish(self, iq):
        self.publishes.append(iq)
        self._changed.set()
        if self.refuse is None:
            iq.reply().send()
        else:
            etype, condition = self.refuse
            reply = iq.reply()
            reply["type"] = "error"
            reply["error"]["type"] = etype
            reply["error"]["condition"] = condition
            reply.send()

    async def expect_publishes(self, n: int, timeout: float = WAIT) -> list:
        """Wait until `n` publishes arrived, then watch a while for more."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.publishes) < n:
            remaining = deadline - asyncio.get_running_loop().time()
            assert remaining > 0, f"{len(self.publishes)} publishes, expected {n}; events={self.events}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        await asyncio.sleep(QUIET)
        assert len(self.publishes) == n, [str(p) for p in self.publishes]
        return self.publishes


def form_fields(form) -> dict[str, list[str]]:
    return {
        f.get("var"): [v.text or "" for v in f.findall(f"{{{DATA}}}value")]
        for f in form.findall(f"{{{DATA}}}field")
    }


async def command(client, xml: str):
    iq = client.xmpp.make_iq_set()
    iq.append(ET.fromstring(xml))
    return await iq.send(timeout=WAIT)


async def enable(client, options: bool = True):
    form = OPTIONS if options else ""
    await command(client, f"<enable xmlns='{PUSH}' jid='{APP}' node='{NODE}'>{form}</enable>")


async def offline_message(xmpp, srv, sender_account, to: str, body: str):
    bob = await xmpp.online(srv, sender_account, name=f"sender-{body[:8]}")
    bob.send_chat(to, body)
    await bob.sync()
    await bob.close()
    return bob


@pytest.mark.asyncio
async def test_offline_message_is_pushed_once_with_summary_and_options(configured_server, xmpp):
    srv = configured_server
    start_with_components(srv, {APP: SECRET})
    app = await AppServer(srv).online()
    try:
        a = srv.new_account("pushed")
        b = srv.new_account("writer")
        alice = xmpp.client(srv, a, name="alice")
        alice.xmpp.register_plugin("xep_0030")
        await alice.connect()
        info = await alice.xmpp.plugin["xep_0030"].get_info(jid=a.jid, timeout=WAIT)
        assert PUSH in info["disco_info"]["features"], info
        await enable(alice)
        await alice.close()

        bob = xmpp.client(srv, b, name="bob")
        await bob.connect()
        bob.send_chat(a.jid, "Wherefore art thou, Romeo?")
        [iq] = await app.expect_publishes(1)

        assert iq["from"].full == "localhost", str(iq)
        assert iq["type"] == "set"
        pubsub = iq.xml.find(f"{{{PUBSUB}}}pubsub")
        publish = pubsub.find(f"{{{PUBSUB}}}publish")
        assert publish.get("node") == NODE
        form = publish.find(f"{{{PUBSUB}}}item/{{{PUSH}}}notification/{{{DATA}}}x")
        assert form is not None, str(iq)
        fields = form_fields(form)
        assert fields["FORM_TYPE"] == ["urn:xmpp:push:summary"]
        assert fields["message-count"] == ["1"]
        assert "last-message-sender" not in fields, "senders stay private by default"
        assert "last-message-body" not in fields, "bodies stay private by default"
        options = pubsub.find(f"{{{PUBSUB}}}publish-options/{{{DATA}}}x")
        assert form_fields(options)["secret"] == ["eruio234vzxc2kla-91"]

        # The user is told her message on login, and can switch push off.
        alice2 = await xmpp.online(srv, a, name="alice2")
        await alice2.wait_message(sender=b.jid, body="Wherefore art thou, Romeo?")
        await command(alice2, f"<disable xmlns='{PUSH}' jid='{APP}'/>")
        await alice2.close()
        bob.send_chat(a.jid, "are you there?")
        await bob.sync()
        await asyncio.sleep(QUIET)
        assert len(app.publishes) == 1, [str(p) for p in app.publishes]
    finally:
        await app.close()


@pytest.mark.asyncio
async def test_registration_survives_restart_and_refusal_disables_it(configured_server, xmpp):
    srv = configured_server
    start_with_components(srv, {APP: SECRET})
    a = srv.new_account("durable")
    b = srv.new_account("writer")
    alice = await xmpp.online(srv, a, name="alice")
    await enable(alice, options=False)
    await alice.close()

    await asyncio.to_thread(srv.restart)
    wait_component_port(srv)
    app = await AppServer(srv).online()
    try:
        await offline_message(xmpp, srv, b, a.jid, "after the restart")
        [iq] = await app.expect_publishes(1)
        publish = iq.xml.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish")
        assert publish.get("node") == NODE

        # The app server no longer knows the node: the registration goes.
        app.refuse = ("cancel", "item-not-found")
        await offline_message(xmpp, srv, b, a.jid, "second")
        await app.expect_publishes(2)
        await offline_message(xmpp, srv, b, a.jid, "third")
        await asyncio.sleep(QUIET)
        assert len(app.publishes) == 2, [str(p) for p in app.publishes]
    finally:
        await app.close()


@pytest.mark.asyncio
async def test_hibernated_session_is_woken_by_push_and_resumes(configured_server, xmpp):
    """XEP-0198 + XEP-0357, as a phone lives: the connection dies without a
    goodbye, the session hibernates (still available, so the message is
    queued for it, not stored offline), the app server is asked to wake the
    phone, and the phone resumes and gets the message once."""
    srv = configured_server
    start_with_components(srv, {APP: SECRET},
                          extra="[protocol]\npush_notification_with_sender = true\n")
    app = await AppServer(srv).online()
    try:
        a = srv.new_account("sleepy")
        b = srv.new_account("writer")
        alice = xmpp.client(srv, a, resource="phone", name="alice")
        alice.xmpp.register_plugin("xep_0198")
        resumed = asyncio.Event()
        alice.xmpp.add_event_handler("session_resumed", lambda _: resumed.set())
        await alice.connect()
        await enable(alice)
        assert alice.xmpp.plugin["xep_0198"].sm_id, "no resumable session"
        bob = await xmpp.online(srv, b, name="bob")

        alice.abort()
        await alice.wait_disconnected()
        # The server must have noticed the broken connection: a message the
        # hub hands a session it still believes live, reaching the
        # connection after it reported its hibernation, wakes nobody
        # (spec/security.md, left open).
        await asyncio.to_thread(srv.wait_log, f"session hibernated account={a.jid}")
        bob.send_chat(a.jid, "wake up")
        [iq] = await app.expect_publishes(1)
        form = iq.xml.find(
            f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish/{{{PUBSUB}}}item/{{{PUSH}}}notification/{{{DATA}}}x")
        assert form_fields(form)["message-count"] == ["1"], str(iq)
        assert form_fields(form)["last-message-sender"] == [bob.jid.full], "configured on"

        alice.disconnected.clear()
        alice.xmpp.connect(srv.host, srv.c2s_port)
        await asyncio.wait_for(resumed.wait(), WAIT)
        await alice.wait_message(sender=b.jid, body="wake up")

        # Live again: messages arrive directly and nothing is published.
        bob.send_chat(a.jid, "good morning")
        await alice.wait_message(sender=b.jid, body="good morning")
        await asyncio.sleep(QUIET)
        counts = [form_fields(p.xml.find(
            f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish/{{{PUBSUB}}}item/{{{PUSH}}}notification/{{{DATA}}}x"))
            for p in app.publishes]
        assert len(app.publishes) == 1, counts
        assert len([m for m in alice.received["message"] if m["body"] == "wake up"]) == 1
    finally:
        await app.close()
