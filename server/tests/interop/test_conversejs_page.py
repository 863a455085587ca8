"""/conversejs (like ejabberd's mod_conversejs): with `conversejs_path`
pointing at Converse's dist files (here the npm package the browser tests
install), Vireo serves a page already pointed at its own WebSocket, and a
person logs in through Converse's login form in headless Chromium; no
Content-Security-Policy violation is reported for Converse's own scripts,
styles or connections (the policy blocks only third-party images). Dot
files and paths out of the directory are refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from browser import JS, browser_missing
from conftest import ConfiguredVireoServer


@pytest.mark.asyncio
async def test_a_person_logs_in_through_the_served_converse(request, tmp_path):
    missing = browser_missing()
    if missing:
        pytest.fail(f"the browser tests cannot run: {missing}")
    dist = JS / "node_modules" / "converse.js" / "dist"
    config = tmp_path / "vireo.toml"
    config.write_text(
        "[interfaces]\n"
        f"conversejs_path = \"{dist}\"\n"
        "websocket_consider_secure = true\n")
    srv = ConfiguredVireoServer(request.node.name, config)
    try:
        srv.start()
        acc = srv.new_account("web")
        base = f"http://127.0.0.1:{srv.http_port}"
        run = await asyncio.to_thread(
            subprocess.run,
            [shutil.which("node"), "conversejs_page.mjs", f"{base}/conversejs", acc.jid, acc.password],
            cwd=JS, capture_output=True, text=True, timeout=90)
        out = run.stdout
        assert run.returncode == 0 and "logged in" in out, out + run.stderr
        # Converse's own scripts, styles and connections pass the CSP; what
        # it blocks is third-party content (the sponsor logos of Converse's
        # login page come from conversejs.org): no request leaves.
        violations = [l for l in out.splitlines() if "Content Security Policy" in l]
        assert all("img-src" in v and "https://conversejs.org/" in v for v in violations), out
        with urllib.request.urlopen(f"{base}/conversejs/init.js", timeout=10) as r:
            js = r.read().decode()
        assert f'"websocket_url":"ws://127.0.0.1:{srv.http_port}/xmpp-websocket"' in js, js
        for path in ["/conversejs/dist/.hidden", "/conversejs/dist/nothing.js", "/conversejs/dist/%2e%2e/x"]:
            try:
                urllib.request.urlopen(f"{base}{path}", timeout=10)
                raise AssertionError(f"{path} was served")
            except urllib.error.HTTPError as e:
                assert e.code in (400, 404), (path, e.code)
    finally:
        srv.cleanup()
