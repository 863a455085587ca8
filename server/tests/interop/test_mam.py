"""XEP-0313 message archive management against slixmpp (plugins xep_0313,
xep_0059, xep_0441): 250 messages are archived, carry a XEP-0359
stanza-id equal to their archive id, and page back in order, forwards with
slixmpp's own RSM iteration and backwards from the last page, with
first/last/count/complete checked on every page; the archive survives a
restart (sled); preferences switch archiving off; the module switched off
in the configuration leaves no trace."""

import asyncio
import subprocess
import xml.etree.ElementTree as ET

import pytest
import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import VIREO_BIN, WAIT

MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
SID = "urn:xmpp:sid:0"
FWD = "urn:xmpp:forward:0"
CLIENT = "jabber:client"
N = 250
PAGE = 50


def stanza_id(msg, by: str) -> str | None:
    """The stanza-id the archive `by` put on a delivered message."""
    for el in msg.xml.findall(f"{{{SID}}}stanza-id"):
        if el.get("by") == by:
            return el.get("id")
    return None


def result_of(msg) -> tuple[str, str, str] | None:
    """(queryid, archive id, body) of a MAM result message."""
    res = msg.xml.find(f"{{{MAM}}}result")
    if res is None:
        return None
    body = res.find(f"{{{FWD}}}forwarded/{{{CLIENT}}}message/{{{CLIENT}}}body")
    return res.get("queryid"), res.get("id"), body.text if body is not None else None


def record_results(client) -> None:
    """Keep every MAM result message (slixmpp's `message` event only fires
    for messages with a body of their own)."""
    client.mam_results = []
    client.xmpp.register_handler(Callback(
        "mam results", MatchXPath(f"{{{CLIENT}}}message/{{{MAM}}}result"),
        client.mam_results.append))


async def mam_page(client, queryid: str, rsm: str, form: str = ""):
    """One raw query: the (id, body) results in arrival order, and <fin/>."""
    if not hasattr(client, "mam_results"):
        record_results(client)
    iq = client.xmpp.make_iq_set()
    iq.append(ET.fromstring(
        f"<query xmlns='{MAM}' queryid='{queryid}'>{form}<set xmlns='{RSM}'>{rsm}</set></query>"))
    reply = await iq.send(timeout=WAIT)
    fin = reply.xml.find(f"{{{MAM}}}fin")
    assert fin is not None, str(reply)
    want = fin.find(f"{{{RSM}}}set")
    # Results precede the iq on the stream; let the handlers record them.
    expected_first = want.findtext(f"{{{RSM}}}first")
    for _ in range(50):
        got = [r for m in client.mam_results if (r := result_of(m)) and r[0] == queryid]
        if expected_first is None or got:
            break
        await asyncio.sleep(0.02)
    return [(r[1], r[2]) for r in got], fin


def summary(fin):
    s = fin.find(f"{{{RSM}}}set")
    first = s.find(f"{{{RSM}}}first")
    return {
        "first": first.text if first is not None else None,
        "index": first.get("index") if first is not None else None,
        "last": s.findtext(f"{{{RSM}}}last"),
        "count": s.findtext(f"{{{RSM}}}count"),
        "complete": fin.get("complete") == "true",
    }


@pytest.mark.asyncio
@pytest.mark.timeout(240)
async def test_archive_pages_in_order_and_survives_restart(own_server, xmpp):
    srv = own_server
    a = srv.new_account("archivist")
    b = srv.new_account("talker")
    alice = xmpp.client(srv, a, name="alice")
    alice.xmpp.register_plugin("xep_0030")
    alice.xmpp.register_plugin("xep_0313")
    await alice.connect()
    bob = await xmpp.online(srv, b, name="bob")

    info = await alice.xmpp.plugin["xep_0030"].get_info(jid=a.jid, timeout=5)
    features = set(info["disco_info"]["features"])
    assert {MAM, MAM + "#extended", SID} <= features, features

    bodies = [f"msg {i:03d}" for i in range(N)]
    for body in bodies:
        bob.send_chat(a.jid, body)
    delivered = []
    for body in bodies:
        m = await alice.wait_message(sender=b.jid, body=body, timeout=20)
        delivered.append(stanza_id(m, a.jid))
    assert all(delivered), "every delivered message carries a stanza-id by alice"
    assert len(set(delivered)) == N

    # Forwards with slixmpp's RSM iteration (after = last of each page).
    mam = alice.xmpp.plugin["xep_0313"]
    forward = []
    async for msg in mam.iterate(rsm={"max": PAGE}):
        forward.append((msg["mam_result"]["id"],
                        msg["mam_result"]["forwarded"]["stanza"]["body"]))
    assert [body for _, body in forward] == bodies, "in order, once each"
    assert [i for i, _ in forward] == delivered, "result ids are the stanza-ids"

    # Forwards by hand, checking each page's summary.
    after = ""
    for page in range(N // PAGE):
        got, fin = await mam_page(alice, f"f{page}", f"<max>{PAGE}</max>{after}")
        ids = [i for i, _ in got]
        assert ids == delivered[page * PAGE:(page + 1) * PAGE]
        s = summary(fin)
        assert (s["first"], s["last"], s["count"]) == (ids[0], ids[-1], str(N))
        assert s["complete"] == (page == N // PAGE - 1), s
        if page == 0:
            assert s["index"] == "0"
        after = f"<after>{ids[-1]}</after>"

    # Backwards from the last page (empty <before/>).
    before = "<before/>"
    pages = []
    for page in range(N // PAGE):
        got, fin = await mam_page(alice, f"b{page}", f"<max>{PAGE}</max>{before}")
        ids = [i for i, _ in got]
        s = summary(fin)
        assert (s["first"], s["last"], s["count"]) == (ids[0], ids[-1], str(N))
        assert s["complete"] == (page == N // PAGE - 1), s
        if page == 0:
            assert s["index"] == str(N - PAGE)
        pages.append(ids)
        before = f"<before>{ids[0]}</before>"
    assert [i for p in reversed(pages) for i in p] == delivered

    # An id that is not in the archive.
    with pytest.raises(IqError) as err:
        await mam_page(alice, "x", "<max>5</max><after>00000000000000000000000000</after>")
    assert err.value.iq["error"]["condition"] == "item-not-found"

    await asyncio.to_thread(srv.restart)
    alice2 = xmpp.client(srv, a, name="alice2")
    alice2.xmpp.register_plugin("xep_0313")
    await alice2.connect()
    got, fin = await mam_page(alice2, "r1", f"<max>10</max><after>{delivered[99]}</after>")
    assert [i for i, _ in got] == delivered[100:110]
    assert [body for _, body in got] == bodies[100:110]
    assert summary(fin)["count"] == str(N)
    meta = await alice2.xmpp.plugin["xep_0313"].get_archive_metadata(timeout=5)
    md = meta.xml.find(f"{{{MAM}}}metadata")
    assert md.find(f"{{{MAM}}}start").get("id") == delivered[0]
    assert md.find(f"{{{MAM}}}end").get("id") == delivered[-1]

    # Deleting the account deletes the archive: a new account of the same
    # name starts empty.
    res = await asyncio.to_thread(srv.cli, "deluser", a.jid)
    assert res.returncode == 0, res.stderr
    srv.adduser(a.jid.split("@")[0], a.password)
    alice3 = xmpp.client(srv, a, name="alice3")
    await alice3.connect()
    got, fin = await mam_page(alice3, "gone", "<max>10</max>")
    assert got == [] and summary(fin)["count"] == "0"


@pytest.mark.asyncio
async def test_preferences_stop_archiving(server, xmpp):
    srv = server
    a = srv.new_account("private")
    b = srv.new_account("chatty")
    alice = xmpp.client(srv, a, name="alice")
    alice.xmpp.register_plugin("xep_0441")
    await alice.connect()
    bob = await xmpp.online(srv, b, name="bob")
    prefs = alice.xmpp.plugin["xep_0441"]
    default, always, never = await prefs.get_preferences(timeout=5)
    assert (default, set(always), set(never)) == ("always", set(), set())
    await prefs.set_preferences(default="always", never=[slixmpp.JID(b.jid)], timeout=5)
    default, always, never = await prefs.get_preferences(timeout=5)
    assert (default, set(never)) == ("always", {slixmpp.JID(b.jid)})
    bob.send_chat(a.jid, "not for the record")
    m = await alice.wait_message(sender=b.jid, body="not for the record")
    assert stanza_id(m, a.jid) is None
    got, fin = await mam_page(alice, "p", "<max>10</max>")
    assert got == [] and summary(fin)["complete"]


@pytest.mark.asyncio
async def test_archiving_switched_off(configured_server, xmpp):
    srv = configured_server
    tree = srv.root / "conf"
    subprocess.run([str(VIREO_BIN), "config", "init", str(tree), "--domain", "localhost"],
                   check=True, capture_output=True)
    archiving = tree / "stack" / "06-storage" / "archiving.toml"
    text = archiving.read_text()
    assert 'modules = ["mam"]' in text, text
    archiving.write_text(text.replace('modules = ["mam"]', "modules = []"))
    srv.config_path = tree
    srv.start()
    a = srv.new_account("plain")
    b = srv.new_account("sender")
    alice = xmpp.client(srv, a, name="alice")
    alice.xmpp.register_plugin("xep_0030")
    await alice.connect()
    bob = await xmpp.online(srv, b, name="bob")
    server_info = await alice.xmpp.plugin["xep_0030"].get_info(jid="localhost", timeout=5)
    assert SID not in set(server_info["disco_info"]["features"])
    account_info = await alice.xmpp.plugin["xep_0030"].get_info(jid=a.jid, timeout=5)
    assert MAM not in set(account_info["disco_info"]["features"])
    bob.send_chat(a.jid, "unarchived")
    m = await alice.wait_message(sender=b.jid, body="unarchived")
    assert stanza_id(m, a.jid) is None
    with pytest.raises(IqError) as err:
        await mam_page(alice, "off", "<max>1</max>")
    assert err.value.iq["error"]["condition"] == "service-unavailable"


@pytest.mark.asyncio
async def test_forged_stanza_id_in_any_spelling_is_stripped(server, xmpp):
    """XEP-0359 §5: a sender cannot plant an id in the recipient's archive
    namespace, whatever case it spells the recipient's JID in."""
    a = server.new_account("forgee")
    b = server.new_account("forger")
    alice = await xmpp.online(server, a, name="alice")
    bob = await xmpp.online(server, b, name="bob")
    msg = bob.xmpp.make_message(mto=a.jid, mbody="planted", mtype="chat")
    for i, by in enumerate([a.jid, a.jid.upper(), a.jid.capitalize()]):
        forged = ET.SubElement(msg.xml, f"{{{SID}}}stanza-id")
        forged.set("id", f"forged-{i}")
        forged.set("by", by)
    msg.send()
    m = await alice.wait_message(sender=b.jid, body="planted")
    ids = [(el.get("by"), el.get("id")) for el in m.xml.findall(f"{{{SID}}}stanza-id")]
    assert not [i for _, i in ids if i.startswith("forged")], ids
    assert stanza_id(m, a.jid), f"the archive's own id is there: {ids}"
