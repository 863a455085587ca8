"""Modules switched off in the configuration tree disappear from the
server's disco#info and stop answering (issue 5: advertised only when
enabled)."""

import subprocess
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError

from conftest import VIREO_BIN


@pytest.mark.asyncio
async def test_disabled_module_is_not_advertised(configured_server, xmpp):
    srv = configured_server
    tree = srv.root / "conf"
    subprocess.run([str(VIREO_BIN), "config", "init", str(tree), "--domain", "localhost"],
                   check=True, capture_output=True)
    ext = tree / "stack" / "04-protocol" / "extensions.toml"
    text = ext.read_text()
    assert '"carbons", ' in text, text
    ext.write_text(text.replace('"carbons", ', "").replace('"time", ', ""))
    srv.config_path = tree
    srv.start()
    a = srv.new_account("switch")
    c = xmpp.client(srv, a, name="switch")
    c.xmpp.register_plugin("xep_0030")
    await c.connect()
    info = await c.xmpp.plugin["xep_0030"].get_info(jid="localhost", timeout=5)
    features = set(info["disco_info"]["features"])
    assert "urn:xmpp:ping" in features, features
    assert "urn:xmpp:carbons:2" not in features, features
    assert "urn:xmpp:time" not in features, features
    ask = c.xmpp.make_iq_get(ito="localhost")
    ask.append(ET.fromstring("<time xmlns='urn:xmpp:time'/>"))
    with pytest.raises(IqError) as err:
        await ask.send(timeout=5)
    assert err.value.iq["error"]["condition"] == "service-unavailable"
