"""XEP-0363 HTTP File Upload with a client nobody here wrote: slixmpp's
xep_0363 plugin finds upload.localhost by disco, asks for a slot and PUTs
the file with aiohttp; the file comes back by GET, whole and by range.
Refusals: too large (not-acceptable + file-too-large with the limit), over
the daily quota (resource-constraint), a forged or reused slot, a wrong
size; files past their retention answer 404 and are gone from disk after
the purge; deleting the account deletes its files."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
import pytest
import yarl
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0363.http_upload import FileTooBig

from conftest import ConfiguredVireoServer

MAX = 100_000
QUOTA = 250_000


@pytest.fixture(scope="module")
def upload_server(request, tmp_path_factory):
    config = tmp_path_factory.mktemp("upload") / "vireo.toml"
    srv = ConfiguredVireoServer(request.module.__name__, config)
    # Plain HTTP on loopback: aiohttp would not trust the self-signed
    # certificate of the HTTPS port.
    config.write_text(
        "[interfaces]\n"
        f"http_external_url = \"http://127.0.0.1:{srv.http_port}\"\n"
        "[services]\n"
        f"upload_max_file_size = {MAX}\n"
        f"upload_daily_quota = {QUOTA}\n")
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


async def uploader(xmpp, srv, prefix="up"):
    acc = srv.new_account(prefix)
    c = xmpp.client(srv, acc)
    c.xmpp.register_plugin("xep_0030")
    c.xmpp.register_plugin("xep_0363")
    await c.connect()
    return acc, c


async def fetch(url: str, headers: dict | None = None, method: str = "GET"):
    # encoded=True: the path goes out as written (no dot-segment removal).
    async with aiohttp.ClientSession() as s:
        async with s.request(method, yarl.URL(url, encoded=True), headers=headers or {}) as r:
            return r.status, dict(r.headers), await r.read()


async def put(url: str, body: bytes, headers: dict):
    async with aiohttp.ClientSession() as s:
        async with s.put(url, data=body, headers=headers) as r:
            return r.status, await r.text()


def slot_of(iq):
    slot = iq["http_upload_slot"]
    headers = {h["name"]: h["value"] for h in slot["put"]["headers"]}
    return slot["put"]["url"], slot["get"]["url"], headers


@pytest.mark.asyncio
async def test_slixmpp_uploads_and_the_file_comes_back(upload_server, xmpp):
    _, c = await uploader(xmpp, upload_server)
    data = os.urandom(50_000)
    path = Path(upload_server.root) / "holiday photo.jpg"
    path.write_bytes(data)
    url = await c.xmpp.plugin["xep_0363"].upload_file(path, content_type="image/jpeg", timeout=20)
    assert url.startswith(f"http://127.0.0.1:{upload_server.http_port}/upload/"), url
    assert url.endswith("/holiday%20photo.jpg"), url
    assert c.xmpp.plugin["xep_0363"].max_file_size == MAX, "disco advertises the limit"
    status, headers, body = await fetch(url)
    assert status == 200 and body == data
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Disposition"].startswith("inline;")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    status, headers, body = await fetch(url, {"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    status, _, _ = await fetch(url, {"Range": "bytes=60000-"})
    assert status == 416
    status, headers, body = await fetch(url, method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Length"] == str(len(data))


@pytest.mark.asyncio
async def test_html_is_served_as_an_attachment(upload_server, xmpp):
    _, c = await uploader(xmpp, upload_server)
    upload = c.xmpp.plugin["xep_0363"]
    page = b"<html><script>alert(1)</script></html>"
    path = Path(upload_server.root) / "page.html"
    path.write_bytes(page)
    url = await upload.upload_file(path, content_type="text/html", timeout=20)
    status, headers, body = await fetch(url)
    assert status == 200 and body == page
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.asyncio
async def test_too_large_and_over_quota_are_refused(upload_server, xmpp):
    _, c = await uploader(xmpp, upload_server)
    upload = c.xmpp.plugin["xep_0363"]
    service = f"upload.{upload_server.domain}"
    with pytest.raises(IqError) as e:
        await upload.request_slot(service, "big.bin", MAX + 1, timeout=10)
    err = e.value.iq
    assert err["error"]["condition"] == "not-acceptable"
    assert f"<max-file-size>{MAX}</max-file-size>" in str(err), str(err)
    path = Path(upload_server.root) / "big.bin"
    path.write_bytes(b"x" * (MAX + 1))
    with pytest.raises(FileTooBig):
        await upload.upload_file(path, timeout=10)
    # Two slots of 100,000 fit in 250,000; a third does not.
    for _ in range(2):
        await upload.request_slot(service, "q.bin", MAX, timeout=10)
    with pytest.raises(IqError) as e:
        await upload.request_slot(service, "q.bin", MAX, timeout=10)
    assert e.value.iq["error"]["condition"] == "resource-constraint"
    assert "quota" in e.value.iq["error"]["text"]
    # What still fits is granted.
    await upload.request_slot(service, "small.bin", 10_000, timeout=10)


@pytest.mark.asyncio
async def test_forged_reused_and_wrong_sized_puts_are_refused(upload_server, xmpp):
    _, c = await uploader(xmpp, upload_server)
    upload = c.xmpp.plugin["xep_0363"]
    service = f"upload.{upload_server.domain}"
    iq = await upload.request_slot(service, "a.txt", 5, "text/plain", timeout=10)
    put_url, get_url, headers = slot_of(iq)
    base = {"Content-Type": "text/plain"}
    status, _ = await put(put_url, b"hello", {**base, "Authorization": "Bearer forged.token"})
    assert status == 403
    status, _ = await put(put_url, b"hell", {**base, **headers})
    assert status == 400, "a size other than the slot's"
    status, _ = await put(put_url.replace("a.txt", "b.txt"), b"hello", {**base, **headers})
    assert status == 403, "the token is for another file name"
    status, _ = await put(put_url, b"hello", {**base, **headers})
    assert status == 201
    status, _ = await put(put_url, b"hello", {**base, **headers})
    assert status == 409, "a slot holds one file"
    status, _, body = await fetch(get_url)
    assert (status, body) == (200, b"hello")
    status, _, _ = await fetch(get_url.replace("a.txt", "other.txt"))
    assert status == 404
    status, _, _ = await fetch(get_url.replace("/upload/", "/upload/%2e%2e/"))
    assert status == 400, "ambiguous paths never reach the store"


@pytest.mark.asyncio
async def test_deleting_the_account_deletes_its_files(upload_server, xmpp):
    acc, c = await uploader(xmpp, upload_server, "gone")
    path = Path(upload_server.root) / "mine.txt"
    path.write_bytes(b"mine")
    url = await c.xmpp.plugin["xep_0363"].upload_file(path, content_type="text/plain", timeout=20)
    assert (await fetch(url))[0] == 200
    files_before = len(list((upload_server.data_dir / "upload").iterdir()))
    res = await asyncio.to_thread(upload_server.cli, "deluser", acc.jid)
    assert res.returncode == 0, res.stderr
    assert (await fetch(url))[0] == 404
    files_after = len(list((upload_server.data_dir / "upload").iterdir()))
    assert files_after == files_before - 2, "the file and its metadata"


@pytest.mark.asyncio
async def test_expired_files_are_gone(tmp_path, xmpp, request):
    config = tmp_path / "vireo.toml"
    srv = ConfiguredVireoServer(request.node.name, config)
    config.write_text(
        "[interfaces]\n"
        f"http_external_url = \"http://127.0.0.1:{srv.http_port}\"\n"
        "[services]\n"
        "upload_expire_after = 1\n")
    try:
        srv.start()
        _, c = await uploader(xmpp, srv, "old")
        path = tmp_path / "old.txt"
        path.write_bytes(b"old news")
        url = await c.xmpp.plugin["xep_0363"].upload_file(path, content_type="text/plain", timeout=20)
        assert (await fetch(url))[0] == 200
        await asyncio.sleep(1.5)
        assert (await fetch(url))[0] == 404, "past its retention"
        await c.close()
        # The purge at start removes it from disk.
        await asyncio.to_thread(srv.restart)
        deadline = time.monotonic() + 5
        while any((srv.data_dir / "upload").iterdir()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not any((srv.data_dir / "upload").iterdir())
    finally:
        srv.cleanup()


@pytest.mark.asyncio
async def test_deluser_with_the_server_stopped_deletes_the_files_too(tmp_path, xmpp, request):
    config = tmp_path / "vireo.toml"
    srv = ConfiguredVireoServer(request.node.name, config)
    config.write_text(f"[interfaces]\nhttp_external_url = \"http://127.0.0.1:{srv.http_port}\"\n")
    try:
        srv.start()
        acc, c = await uploader(xmpp, srv, "offline")
        path = tmp_path / "kept.txt"
        path.write_bytes(b"kept")
        url = await c.xmpp.plugin["xep_0363"].upload_file(path, content_type="text/plain", timeout=20)
        assert (await fetch(url))[0] == 200
        await c.close()
        await asyncio.to_thread(srv.stop)
        res = await asyncio.to_thread(srv.cli, "-c", str(config), "deluser", acc.jid)
        assert res.returncode == 0, res.stderr
        assert "uploaded file" in res.stdout, res.stdout
        assert not any((srv.data_dir / "upload").iterdir())
    finally:
        srv.cleanup()
