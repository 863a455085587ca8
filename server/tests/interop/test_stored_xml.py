"""XEP-0054 vcard-temp and XEP-0049 private XML storage, with slixmpp's
own vcard plugin and raw private-storage iqs; stored data survives a
restart."""

import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

PRIVATE_NS = "jabber:iq:private"


def _client_with_vcard(xmpp, server, account, name):
    c = xmpp.client(server, account, name=name)
    c.xmpp.register_plugin("xep_0054")
    return c


@pytest.mark.asyncio
async def test_vcard_publish_and_read_by_contact(own_server, xmpp):
    srv = own_server
    a = srv.new_account("vcard")
    b = srv.new_account("reader")
    alice = _client_with_vcard(xmpp, srv, a, "alice")
    await alice.connect()
    vcard = alice.xmpp.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Alice Vireo 🦀"
    vcard["NICKNAME"] = "alice"
    await alice.xmpp.plugin["xep_0054"].publish_vcard(vcard, timeout=5)

    bob = _client_with_vcard(xmpp, srv, b, "bob")
    await bob.connect()
    got = await bob.xmpp.plugin["xep_0054"].get_vcard(a.jid, cached=False, timeout=5)
    assert got["vcard_temp"]["FN"] == "Alice Vireo 🦀"

    # Others cannot overwrite it.
    forged = bob.xmpp.make_iq_set(ito=a.jid)
    forged.append(ET.fromstring("<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>"))
    with pytest.raises(IqError) as err:
        await forged.send(timeout=5)
    assert err.value.iq["error"]["condition"] == "forbidden"

    # Stored, not cached in memory: still there after a restart.
    await asyncio.to_thread(srv.restart)
    bob2 = _client_with_vcard(xmpp, srv, b, "bob2")
    await bob2.connect()
    got = await bob2.xmpp.plugin["xep_0054"].get_vcard(a.jid, cached=False, timeout=5)
    assert got["vcard_temp"]["FN"] == "Alice Vireo 🦀"


@pytest.mark.asyncio
async def test_private_storage_roundtrip(server, xmpp):
    a = server.new_account("priv")
    alice = await xmpp.online(server, a, name="alice")
    store = alice.xmpp.make_iq_set()
    store.append(ET.fromstring(
        f"<query xmlns='{PRIVATE_NS}'><prefs xmlns='x:vireo:test'><theme>dark</theme></prefs></query>"))
    await store.send(timeout=5)

    fetch = alice.xmpp.make_iq_get()
    fetch.append(ET.fromstring(f"<query xmlns='{PRIVATE_NS}'><prefs xmlns='x:vireo:test'/></query>"))
    result = await fetch.send(timeout=5)
    theme = result.xml.find(f"{{{PRIVATE_NS}}}query/{{x:vireo:test}}prefs/{{x:vireo:test}}theme")
    assert theme is not None and theme.text == "dark", ET.tostring(result.xml)

    reserved = alice.xmpp.make_iq_set()
    reserved.append(ET.fromstring(f"<query xmlns='{PRIVATE_NS}'><q xmlns='jabber:iq:roster'/></query>"))
    with pytest.raises(IqError) as err:
        await reserved.send(timeout=5)
    assert err.value.iq["error"]["condition"] == "not-acceptable"
