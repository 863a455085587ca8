"""The status page at / (issue 14) in a real browser (headless Debian
Chromium through playwright-core, js/status_page.mjs): it renders the
server's version, domains and sessions by transport, its inline style
applies under the page's CSP (no violation reported), and an address
that may not read /metrics gets 403."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest

from browser import JS, browser_missing


@pytest.mark.asyncio
async def test_the_status_page_renders_in_chromium(server, xmpp):
    missing = browser_missing()
    if missing:
        pytest.fail(f"the browser tests cannot run: {missing}")
    acc = server.new_account("status")
    c = await xmpp.online(server, acc, name="status-page")
    run = await asyncio.to_thread(
        subprocess.run, [shutil.which("node"), "status_page.mjs", f"http://127.0.0.1:{server.http_port}/"],
        cwd=JS, capture_output=True, text=True, timeout=60)
    out = run.stdout
    assert run.returncode == 0 and "OK" in out, out + run.stderr
    assert "status: 200" in out and "title: Vireo status" in out, out
    rows = json.loads(out.split("rows: ", 1)[1].splitlines()[0])
    assert rows["Domains"] == server.domain
    assert int(rows["Sessions (tcp)"]) >= 1
    assert rows["Version"], rows
    assert "th text-align left" in out, "the inline style applies under the CSP"
    assert "Content Security Policy" not in out, out
    await c.close()


def test_the_status_page_is_for_admins_only(server):
    import socket
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=10,
                                 source_address=("127.0.0.5", 0))
    s.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 403 "), data[:200]
