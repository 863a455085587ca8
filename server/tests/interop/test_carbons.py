"""XEP-0280 message carbons with slixmpp's xep_0280 plugin: a second device
sees what the first one receives and sends."""

import asyncio

import pytest

from conftest import WAIT


async def _device(xmpp, server, account, resource):
    c = xmpp.client(server, account, resource=resource, name=resource)
    c.xmpp.register_plugin("xep_0280")
    got = {"received": asyncio.Queue(), "sent": asyncio.Queue()}
    c.xmpp.add_event_handler("carbon_received", lambda m: got["received"].put_nowait(m))
    c.xmpp.add_event_handler("carbon_sent", lambda m: got["sent"].put_nowait(m))
    await c.connect()
    await c.xmpp.plugin["xep_0280"].enable(timeout=5)
    return c, got


@pytest.mark.asyncio
async def test_carbons_reach_the_second_device(server, xmpp):
    a = server.new_account("carbon")
    b = server.new_account("peer")
    phone, _ = await _device(xmpp, server, a, "phone")
    laptop, laptop_got = await _device(xmpp, server, a, "laptop")
    bob = await xmpp.online(server, b, name="bob")

    bob.send_chat(f"{a.jid}/phone", "to the phone")
    await phone.wait_message(sender=b.jid, body="to the phone")
    copy = await asyncio.wait_for(laptop_got["received"].get(), WAIT)
    inner = copy["carbon_received"]
    assert inner["body"] == "to the phone" and inner["from"].bare == b.jid

    phone.send_chat(b.jid, "from the phone")
    await bob.wait_message(sender=a.jid, body="from the phone")
    copy = await asyncio.wait_for(laptop_got["sent"].get(), WAIT)
    inner = copy["carbon_sent"]
    assert inner["body"] == "from the phone" and inner["to"].bare == b.jid
