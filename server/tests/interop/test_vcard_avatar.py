"""XEP-0153 vCard-based avatars, hashed by the server (XEP-0398 §4): the
photo hash of the stored vCard is put into the users' available presence,
checked here against hashlib on the vCard the contact downloads, with a
client that knows nothing of XEP-0153 and with slixmpp's xep_0153 plugin."""

import asyncio
import base64
import hashlib
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import VIREO_BIN, WAIT

NS = "vcard-temp:x:update"
# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
PNG_SHA1 = hashlib.sha1(PNG).hexdigest()


def photo(presence):
    """The advertised hash: None without an update element, '' for an
    empty <photo/>."""
    el = presence.xml.find(f"{{{NS}}}x/{{{NS}}}photo")
    if el is None:
        return None
    return (el.text or "").strip()


async def subscribe(watcher, target, watcher_jid, target_jid):
    watcher.xmpp.send_presence(pto=target_jid, ptype="subscribe")
    await target.wait_presence(watcher_jid, "subscribe")
    target.xmpp.send_presence(pto=watcher_jid, ptype="subscribed")
    await watcher.wait_presence(target_jid, "subscribed")


@pytest.mark.asyncio
async def test_server_puts_the_photo_hash_into_presence(server, xmpp):
    a, b = server.new_account("face"), server.new_account("watch")
    alice = xmpp.client(server, a, name="alice")
    alice.xmpp.register_plugin("xep_0054")
    await alice.connect()
    bob = xmpp.client(server, b, name="bob")
    bob.xmpp.register_plugin("xep_0054")
    await bob.connect()
    await subscribe(bob, alice, b.jid, a.jid)
    first = await bob.wait_presence(a.jid)
    assert photo(first) == "", ET.tostring(first.xml)  # no avatar yet

    vcard = alice.xmpp.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Alice"
    vcard["PHOTO"]["TYPE"] = "image/png"
    vcard["PHOTO"]["BINVAL"] = PNG
    await alice.xmpp.plugin["xep_0054"].publish_vcard(vcard, timeout=WAIT)
    # Re-announced by the server; this client never mentions avatars.
    updated = await bob.wait_for(
        "presence", lambda p: p["from"].bare == a.jid and photo(p) == PNG_SHA1,
        desc="alice's presence with the photo hash")
    assert updated["type"] == "available"

    # The contact's side of XEP-0153 §3.2: the hash names the vCard's photo.
    got = await bob.xmpp.plugin["xep_0054"].get_vcard(a.jid, cached=False, timeout=WAIT)
    assert hashlib.sha1(got["vcard_temp"]["PHOTO"]["BINVAL"]).hexdigest() == PNG_SHA1

    # A stale hash from the client is corrected on the way out.
    stale = alice.xmpp.make_presence(pshow="away")
    stale.append(ET.fromstring(f"<x xmlns='{NS}'><photo>{'0' * 40}</photo></x>"))
    stale.send()
    away = await bob.wait_for(
        "presence", lambda p: p["from"].bare == a.jid and p["type"] == "away",
        desc="alice away")
    assert photo(away) == PNG_SHA1, ET.tostring(away.xml)


@pytest.mark.asyncio
async def test_slixmpp_avatar_plugin_round_trip(server, xmpp):
    a, b = server.new_account("plug"), server.new_account("seer")
    alice = xmpp.client(server, a, name="alice")
    alice.xmpp.register_plugin("xep_0153")
    await alice.connect()
    bob = xmpp.client(server, b, name="bob")
    bob.xmpp.register_plugin("xep_0153")
    updates = []
    seen = asyncio.Event()

    def on_update(pres):
        if pres["from"].bare == a.jid:
            updates.append(pres["vcard_temp_update"]["photo"])
            seen.set()

    bob.xmpp.add_event_handler("vcard_avatar_update", on_update)
    await bob.connect()
    await subscribe(bob, alice, b.jid, a.jid)
    await alice.xmpp.plugin["xep_0153"].set_avatar(avatar=PNG, mtype="image/png", timeout=WAIT)
    deadline = asyncio.get_running_loop().time() + WAIT
    while PNG_SHA1 not in updates:
        seen.clear()
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no presence with the photo hash; got {updates}"
        try:
            await asyncio.wait_for(seen.wait(), remaining)
        except asyncio.TimeoutError:
            pass


@pytest.mark.asyncio
async def test_switched_off_with_the_module(configured_server, xmpp):
    srv = configured_server
    tree = srv.root / "conf"
    subprocess.run([str(VIREO_BIN), "config", "init", str(tree), "--domain", "localhost"],
                   check=True, capture_output=True)
    ext = tree / "stack" / "04-protocol" / "extensions.toml"
    text = ext.read_text()
    assert '"vcard_xupdate", ' in text, text
    ext.write_text(text.replace('"vcard_xupdate", ', ""))
    srv.config_path = tree
    srv.start()
    a, b = srv.new_account("plainface"), srv.new_account("plainwatch")
    alice = await xmpp.online(srv, a, name="alice")
    bob = await xmpp.online(srv, b, name="bob")
    await subscribe(bob, alice, b.jid, a.jid)
    pres = await bob.wait_presence(a.jid)
    assert photo(pres) is None, ET.tostring(pres.xml)
