"""The admin REST API (/api/, issue 14): a token from `vireo token create`,
users created, re-passworded and deleted over HTTP and seen by a slixmpp
client logging in, sessions listed and ended, a message and an
announcement reaching a client, statistics; refusals without a token, with
a revoked one, and for paths spelled to slip past routing. Then
schemathesis, a property-based HTTP tester, runs every operation against
the OpenAPI document the server serves (status codes, content types and
response bodies must match it; undeclared methods get 405 with Allow;
invalid bodies are refused)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ConnectError


def token(server, name: str) -> str:
    res = server.cli("token", "create", name)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[0].strip()


def call(server, method: str, path: str, tok: str | None = None, body=None,
         raw_path: bool = False) -> tuple[int, dict | None, dict]:
    url = f"http://127.0.0.1:{server.http_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if tok:
        req.add_header("Authorization", f"Bearer {tok}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None), dict(r.headers)
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = {"raw": text.decode(errors="replace")}
        return e.code, parsed, dict(e.headers)


@pytest.mark.asyncio
async def test_users_over_the_api_are_real_accounts(server, xmpp):
    tok = token(server, "users-test")
    status, body, headers = call(server, "GET", "/api/users")
    assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
    jid = f"apiuser{os.getpid()}@{server.domain}"
    status, body, _ = call(server, "POST", "/api/users", tok, {"jid": jid, "password": "first-pw-1"})
    assert (status, body) == (201, {"jid": jid})
    status, _, _ = call(server, "POST", "/api/users", tok, {"jid": jid, "password": "again-pw-1"})
    assert status == 409
    status, body, _ = call(server, "GET", f"/api/users?domain={server.domain}", tok)
    assert status == 200 and jid in body["users"]
    c = await xmpp.online(server, jid, "first-pw-1", name="api-made")
    await c.close()
    status, _, _ = call(server, "PUT", f"/api/users/{jid}/password", tok, {"password": "second-pw-2"})
    assert status == 204
    c = await xmpp.online(server, jid, "second-pw-2", name="api-repassworded")
    status, _, _ = call(server, "DELETE", f"/api/users/{jid}", tok)
    assert status == 204
    assert await c.wait_disconnected(10), "the deleted account's session ends"
    with pytest.raises(ConnectError):
        await xmpp.online(server, jid, "second-pw-2", name="api-deleted")
    status, _, _ = call(server, "DELETE", f"/api/users/{jid}", tok)
    assert status == 404
    status, _, _ = call(server, "POST", "/api/users", tok, {"jid": "x@elsewhere.example", "password": "pw-123456"})
    assert status == 422
    status, _, _ = call(server, "POST", "/api/users", tok, {"jid": jid, "password": "p", "admin": True})
    assert status == 400, "unknown fields are refused"
    log = server.log_path.read_text()
    assert "api call token=users-test" in log and "path=/api/users status=201" in log


@pytest.mark.asyncio
async def test_sessions_messages_and_announcements(server, xmpp):
    tok = token(server, "sessions-test")
    acc = server.new_account("apisess")
    c = await xmpp.online(server, acc, name="listed")
    status, body, _ = call(server, "GET", "/api/sessions", tok)
    assert status == 200
    mine = [s for s in body["sessions"] if s["jid"].startswith(acc.jid + "/")]
    assert len(mine) == 1 and mine[0]["transport"] == "tcp" and mine[0]["address"] == "127.0.0.1"
    status, body, _ = call(server, "POST", "/api/messages", tok,
                           {"to": acc.jid, "body": "from the admin", "type": "chat"})
    assert status == 202
    await c.wait_message(sender=server.domain, body="from the admin")
    status, body, _ = call(server, "POST", "/api/announcements", tok, {"body": "maintenance at noon"})
    assert status == 202 and body["sent"] >= 1
    await c.wait_message(body="maintenance at noon")
    status, body, _ = call(server, "GET", "/api/stats", tok)
    assert status == 200 and body["sessions"] >= 1 and body["users"] >= 1
    # The full JID as two segments: an encoded '/' never reaches an endpoint.
    status, _, _ = call(server, "DELETE", f"/api/sessions/{mine[0]['jid']}", tok)
    assert status == 204
    assert await c.wait_disconnected(10), "the session was ended"
    status, _, _ = call(server, "DELETE", f"/api/sessions/{mine[0]['jid']}", tok)
    assert status == 404
    bare, resource = mine[0]["jid"].split("/", 1)
    status, _, _ = call(server, "DELETE", f"/api/sessions/{bare}%2F{resource}", tok)
    assert status == 400


def test_revoked_tokens_and_slipping_paths_are_refused(server):
    tok = token(server, "revoked-test")
    assert call(server, "GET", "/api/stats", tok)[0] == 200
    res = server.cli("token", "revoke", "revoked-test")
    assert res.returncode == 0, res.stderr
    assert call(server, "GET", "/api/stats", tok)[0] == 401
    assert "revoked-test" not in server.cli("token", "list").stdout
    good = token(server, "paths-test")
    for path in ["/api/%2e%2e/metrics", "/api//users", "/api;x=y/users", "/api/users/..%2f..",
                 "/api/users%2f..%2fstats", "/%61pi/users/../stats", "/api/./stats"]:
        status, _, _ = call(server, "GET", path, good)
        assert status == 400, f"{path}: {status}"
    assert call(server, "GET", "/api/nothing", good)[0] == 404
    status, _, headers = call(server, "PATCH", "/api/users", good)
    assert status == 405 and headers["Allow"] == "GET, POST"


def test_schemathesis_finds_nothing_against_the_openapi_document(server, tmp_path):
    """Every operation, with examples, boundary values and random data
    from the document, and stateful sequences (create, then use). Checks:
    all but positive_data_acceptance (the document cannot say which
    domains are hosted or which accounts exist: valid-looking data for
    another domain is rightly refused)."""
    tok = token(server, "schemathesis")
    st = Path(sys.executable).parent / "schemathesis"
    base = f"http://127.0.0.1:{server.http_port}"
    run = subprocess.run(
        [str(st), "run", f"{base}/api/openapi.json", "--url", f"{base}/api",
         "-H", f"Authorization: Bearer {tok}",
         "--checks", "all", "--exclude-checks", "positive_data_acceptance",
         "--max-examples", "40", "--workers", "1", "--seed", "1",
         "--phases", "examples,coverage,fuzzing,stateful",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert "9 passed" in out or "passed" in out, out[-3000:]


def test_an_api_token_opens_metrics_to_a_scraper_elsewhere(request, tmp_path):
    from conftest import ConfiguredVireoServer
    config = tmp_path / "vireo.toml"
    config.write_text('[interfaces]\nmetrics_allow_ips = ["192.0.2.1"]\n')
    srv = ConfiguredVireoServer(request.node.name, config)
    try:
        srv.start()
        assert call(srv, "GET", "/metrics")[0] == 403
        tok = token(srv, "scraper")
        url = f"http://127.0.0.1:{srv.http_port}/metrics"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {tok}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
            assert b"vireo_connections" in r.read()
    finally:
        srv.cleanup()


@pytest.mark.asyncio
async def test_stored_rooms_are_listed(server, xmpp):
    from test_muc import create, new_room, online
    tok = token(server, "rooms-test")
    owner = server.new_account("roomowner")
    c = await online(xmpp, server, owner, "room owner")
    public = new_room(server, "pub")
    hidden = new_room(server, "hid")
    await create(c, public, "Owner", persistentroom="1", publicroom="1", roomname="Town square")
    await create(c, hidden, "Owner", persistentroom="1", publicroom="0")
    status, body, _ = call(server, "GET", "/api/rooms", tok)
    assert status == 200
    rooms = {r["jid"]: r for r in body["rooms"]}
    assert rooms[public] == {"jid": public, "name": "Town square", "public": True}
    assert rooms[hidden]["public"] is False
