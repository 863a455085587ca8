#!/usr/bin/env python3
"""Seed the fuzz corpora from what clients send in spec/transcripts/.

Writes fuzz/corpus/<target>/seed-<scenario>[-<n>] (the working corpora,
not committed) in each target's input format (see the harness modules in
proptests/src/harness/):

  hub         a script: `a>BYTES` per stanza sent, `a-` disconnect, `a+`
              reconnect, `e>BYTES` for the component, `~MS` time passing
  c2s_server  first byte 0x80 (log in first) + a client's stanzas, and 0x00 +
              its raw pre-login bytes
  xml_stream  first byte (chunk size) + a client stream header + its stanzas
  component   first byte 0x40 (claim granted) + header + handshake + stanzas
  jid         every address in the transcripts
  config      the configuration templates and TOML examples of the docs

Hostile shapes (deep, wide, long names and namespaces, many attributes) are
added for the stream targets, at a fraction of the limits, for the fuzzer to
grow.

sasl and sm take structured (arbitrary) input and start from nothing.

    python3 fuzz/seeds.py        # from the repository root or fuzz/
"""
import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
HEADER = ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
          "to='localhost' version='1.0'>")
COMPONENT_HEADER = ("<stream:stream xmlns='jabber:component:accept' "
                    "xmlns:stream='http://etherx.jabber.org/streams' to='echo.localhost'>")
SESSION_LETTERS = {"alice": "a", "bob": "b", "carol": "c"}
UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse(path):
    """Blocks ({name: kind}) and steps [(actor, verb, payload)] of a scenario."""
    kinds, steps = {}, []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.startswith("#") or line[0] in " \t":
            continue
        block = re.match(r"\[(Client|Component|Server)\]\s*(\S*)", line)
        if block:
            kinds[block.group(2)] = block.group(1)
            while i < len(lines) and lines[i].strip():
                i += 1
            continue
        payload = []
        if line.endswith(":"):
            while i < len(lines) and lines[i][:1] in (" ", "\t") and lines[i].strip():
                payload.append(lines[i].strip())
                i += 1
        words = line.rstrip(":").split()
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) >= 2:
            steps.append((words[0], ("raw " if raw else "") + " ".join(words[1:]), "".join(payload)))
    return kinds, steps


def negotiation(xml):
    return any(t in xml for t in ("<stream:stream", "<?xml", "<starttls", "<auth", "<response", "<abort"))


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)


def hostile():
    """Stanzas shaped like resource-exhaustion attacks, well under the limits."""
    ns = "urn:x:" + "n" * 4096
    return {
        "wide": "<message to='bob@localhost'>" + "<a/>" * 8000 + "</message>",
        "deep": "<message to='bob@localhost'>" + "<a>" * 30 + "</a>" * 30 + "</message>",
        "long-namespace-children": f"<message to='bob@localhost'><x xmlns='{ns}'>" + "<y/>" * 4000 + "</x></message>",
        "many-namespaces": "<message to='bob@localhost'>" + "".join(f"<a xmlns='urn:{i}'/>" for i in range(2000)) + "</message>",
        "many-attributes": "<message to='bob@localhost' " + " ".join(f"a{i}='v'" for i in range(2000)) + "/>",
        "long-text": "<message to='bob@localhost'><body>" + "x" * 60000 + "</body></message>",
        "many-prefixes": "<message to='bob@localhost'>" + "".join(f"<p{i}:a xmlns:p{i}='urn:p'/>" for i in range(2000)) + "</message>",
    }


def main():
    jids = set()
    for path in sorted((ROOT / "spec" / "transcripts").glob("*.scn")):
        name = path.stem
        kinds, steps = parse(path)
        letters = dict(SESSION_LETTERS)
        spare = [l for l in "abcd" if l not in letters.values()]
        script, sends, raws = [], {}, {}
        for actor, verb, payload in steps:
            jids.update(re.findall(r"(?:to|from|jid)='([^'{}]+)'", payload))
            if actor == "time" and verb.startswith("passes"):
                m = re.match(r"passes (\d+)(ms|s|m|h|d)", verb)
                if m:
                    script.append(f"~{int(m.group(1)) * UNITS[m.group(2)]}")
                continue
            component = kinds.get(actor) == "Component"
            if component:
                letter = "e"
            else:
                if actor not in letters:
                    letters[actor] = spare.pop(0) if spare else "d"
                letter = letters[actor]
            if verb in ("sends", "raw sends"):
                if component:
                    if not negotiation(payload) and "<handshake" not in payload:
                        script.append(f"e>{payload}")
                        sends.setdefault(actor, []).append(payload)
                elif negotiation(payload):
                    raws.setdefault(actor, []).append(payload)
                else:
                    script.append(f"{letter}>{payload}")
                    sends.setdefault(actor, []).append(payload)
            elif verb == "disconnects":
                script.append(f"{letter}-")
            elif verb.startswith("connects") and any(s.startswith(letter) for s in script):
                script.append(f"{letter}+")
        if script:
            write("hub", name, "\n".join(script))
        for n, (actor, xml) in enumerate(sorted(sends.items())):
            body = "".join(xml)
            if kinds.get(actor) == "Component":
                write("component", f"{name}-{n}",
                      b"\x40" + (COMPONENT_HEADER + "<handshake>HANDSHAKE</handshake>" + body).encode())
                write("xml_stream", f"{name}-{n}",
                      b"\x40" + (COMPONENT_HEADER + body).encode())
            else:
                write("c2s_server", f"{name}-{n}", b"\x80" + body.encode())
                write("xml_stream", f"{name}-{n}", b"\x40" + (HEADER + body).encode())
        for n, (actor, xml) in enumerate(sorted(raws.items())):
            write("c2s_server", f"{name}-raw-{n}", b"\x00" + "".join(xml).encode())
    for name, xml in hostile().items():
        write("hub", f"hostile-{name}", f"a>{xml}")
        write("c2s_server", f"hostile-{name}", b"\x80" + xml.encode())
        write("xml_stream", f"hostile-{name}", b"\x40" + (HEADER + xml).encode())
        write("component", f"hostile-{name}", b"\x40" + (COMPONENT_HEADER + "<handshake>HANDSHAKE</handshake>" + xml.replace("bob@localhost", "bot@echo.localhost")).encode())
    for jid in sorted(jids):
        write("jid", hashlib.sha1(jid.encode()).hexdigest()[:12], jid)
    templates = ROOT / "server" / "src" / "config" / "templates"
    for toml in sorted(templates.glob("*.toml")):
        write("config", toml.stem, toml.read_bytes())
    for doc in (ROOT / "README.md", ROOT / "spec" / "config.md"):
        for n, block in enumerate(re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)):
            write("config", f"{doc.stem}-{n}", block)
    for target in sorted(p.name for p in CORPUS.iterdir()):
        print(f"{target}: {len(list((CORPUS / target).iterdir()))} inputs")


if __name__ == "__main__":
    main()
