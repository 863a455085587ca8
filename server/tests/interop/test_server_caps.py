"""XEP-0115 for the server: the caps announced in the stream features hash
exactly the disco#info the server answers for that node (verified here
with the XEP's algorithm written independently in Python)."""

import base64
import hashlib
import re
import xml.etree.ElementTree as ET

from conftest import RawConn

DISCO = "http://jabber.org/protocol/disco#info"
DATA = "jabber:x:data"


def _ver(query: ET.Element) -> str:
    s = ""
    ids = sorted(f"{i.get('category', '')}/{i.get('type', '')}/"
                 f"{i.get('{http://www.w3.org/XML/1998/namespace}lang', '')}/{i.get('name', '')}"
                 for i in query.findall(f"{{{DISCO}}}identity"))
    s += "".join(i + "<" for i in ids)
    s += "".join(f + "<" for f in sorted(f.get("var") for f in query.findall(f"{{{DISCO}}}feature")))
    forms = []
    for x in query.findall(f"{{{DATA}}}x"):
        fields = x.findall(f"{{{DATA}}}field")
        ftype = "".join(sorted(v.text or "" for f in fields if f.get("var") == "FORM_TYPE"
                               for v in f.findall(f"{{{DATA}}}value")))
        rest = sorted((f.get("var"), sorted(v.text or "" for v in f.findall(f"{{{DATA}}}value")))
                      for f in fields if f.get("var") != "FORM_TYPE")
        forms.append((ftype, rest))
    for ftype, rest in sorted(forms):
        s += ftype + "<"
        for var, values in rest:
            s += var + "<" + "".join(v + "<" for v in values)
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def test_stream_caps_match_disco(server):
    acc = server.new_account("caps")
    user = acc.jid.split("@", 1)[0]
    plain = base64.b64encode(f"\0{user}\0{acc.password}".encode()).decode()
    raw = RawConn(server.c2s_tls_port, tls=True)
    try:
        raw.open_stream()
        raw.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")
        assert raw.read_until(lambda b: b"<success" in b), raw.result().describe()
        raw.buf = b""
        raw.open_stream()
        caps = re.search(rb"<c [^>]*xmlns=.http://jabber.org/protocol/caps.[^>]*/>", raw.buf)
        assert caps, raw.buf
        ver = re.search(rb"ver=.([^'\"]+)", caps.group(0)).group(1).decode()
        node = re.search(rb"node=.([^'\"]+)", caps.group(0)).group(1).decode()
        raw.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        assert raw.read_until(lambda b: b"</bind>" in b or b"</iq>" in b)
        raw.buf = b""
        raw.send(f"<iq type='get' id='d' to='{server.domain}'>"
                 f"<query xmlns='{DISCO}' node='{node}#{ver}'/></iq>")
        assert raw.read_until(lambda b: b"</iq>" in b), raw.buf
        m = re.search(rb"<query.*</query>", raw.buf, re.S)
        assert m, raw.buf
        query = ET.fromstring(m.group(0).decode())
        assert query.get("node") == f"{node}#{ver}"
        assert _ver(query) == ver
    finally:
        raw.close()
