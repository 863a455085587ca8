"""XEP-0157 contact addresses from the configuration appear in the
server's disco#info as the serverinfo form."""

import pytest

DATA = "{jabber:x:data}"


@pytest.mark.asyncio
async def test_contact_addresses_in_disco(configured_server, xmpp):
    srv = configured_server
    conf = srv.root / "vireo.toml"
    conf.write_text(
        "[contact]\n"
        'admin_addresses = ["xmpp:admin@localhost", "mailto:admin@example.org"]\n'
        'abuse_addresses = ["mailto:abuse@example.org"]\n')
    srv.config_path = conf
    srv.start()
    a = srv.new_account("contact")
    c = xmpp.client(srv, a, name="contact")
    c.xmpp.register_plugin("xep_0030")
    await c.connect()
    info = await c.xmpp.plugin["xep_0030"].get_info(jid="localhost", timeout=5)
    forms = info.xml.findall(f".//{DATA}x")
    fields = {}
    for form in forms:
        for field in form.findall(f"{DATA}field"):
            fields[field.get("var")] = [v.text for v in field.findall(f"{DATA}value")]
    assert fields.get("FORM_TYPE") == ["http://jabber.org/network/serverinfo"], fields
    assert fields.get("admin-addresses") == ["xmpp:admin@localhost", "mailto:admin@example.org"]
    assert fields.get("abuse-addresses") == ["mailto:abuse@example.org"]
