"""Hostile uploads (XEP-0363 PUT bodies): what a large, slow, oversized or
abandoned upload costs the server. Bodies are streamed to disk, so a
50 MB upload must not show in the server's RSS (from /proc); a stalled
body ends with 408 and leaves no file; a body over the limit is refused
from its Content-Length before a byte of it is read."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import ConfiguredVireoServer, rss_kib
from test_upload import slot_of, uploader

BIG = 50 * 1024 * 1024


@pytest.fixture
def big_server(request, tmp_path):
    config = tmp_path / "vireo.toml"
    srv = ConfiguredVireoServer(request.node.name, config)
    config.write_text(
        "[interfaces]\n"
        f"http_external_url = \"http://127.0.0.1:{srv.http_port}\"\n"
        "http_request_timeout = 2\n"
        "[services]\n"
        f"upload_max_file_size = {BIG}\n"
        f"upload_daily_quota = {4 * BIG}\n")
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


def raw_put(srv, url: str, headers: dict, length: int) -> socket.socket:
    path = url.split(f":{srv.http_port}", 1)[1]
    s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=30)
    head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall((head + "\r\n").encode())
    return s


def answer(s: socket.socket, timeout: float = 30) -> bytes:
    s.settimeout(timeout)
    out = b""
    try:
        while b"\r\n\r\n" not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return out


@pytest.mark.asyncio
async def test_a_50_mb_upload_streams_to_disk(big_server, xmpp):
    _, c = await uploader(xmpp, big_server, "big")
    upload = c.xmpp.plugin["xep_0363"]
    iq = await upload.request_slot(f"upload.{big_server.domain}", "big.bin", BIG,
                                   "application/octet-stream", timeout=10)
    put_url, get_url, headers = slot_of(iq)
    headers["Content-Type"] = "application/octet-stream"
    before = rss_kib(big_server)
    peak = [before]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(big_server))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        s = raw_put(big_server, put_url, headers, BIG)
        chunk = b"\xab" * (1024 * 1024)
        for _ in range(BIG // len(chunk)):
            s.sendall(chunk)
        head = answer(s)
    finally:
        done.set()
        watcher.join()
    growth = peak[0] - before
    print(f"\n50 MB upload: RSS {before} -> peak {peak[0]} KiB (+{growth} KiB)")
    assert head.startswith(b"HTTP/1.1 201 "), head
    assert growth < 4 * 1024, f"the upload grew RSS by {growth} KiB"
    stored = list((big_server.data_dir / "upload").glob("*.meta"))
    assert len(stored) == 1
    assert stored[0].with_suffix("").stat().st_size == BIG


@pytest.mark.asyncio
async def test_a_stalled_body_times_out_and_leaves_nothing(big_server, xmpp):
    _, c = await uploader(xmpp, big_server, "slow")
    upload = c.xmpp.plugin["xep_0363"]
    iq = await upload.request_slot(f"upload.{big_server.domain}", "s.bin", 10_000,
                                   "application/octet-stream", timeout=10)
    put_url, _, headers = slot_of(iq)
    headers["Content-Type"] = "application/octet-stream"
    s = raw_put(big_server, put_url, headers, 10_000)
    s.sendall(b"x" * 5000)
    started = time.monotonic()
    head = answer(s, timeout=10)
    took = time.monotonic() - started
    assert head.startswith(b"HTTP/1.1 408 "), head
    assert 1.5 <= took <= 6, took
    time.sleep(0.3)
    leftovers = [p.name for p in (big_server.data_dir / "upload").iterdir()]
    assert leftovers == [], leftovers


def test_a_body_over_the_limit_is_refused_before_it_is_read(big_server):
    s = raw_put(big_server, f"http://127.0.0.1:{big_server.http_port}/upload/ab/x.bin",
                {"Authorization": "Bearer x"}, BIG + 1)
    head = answer(s, timeout=10)
    assert head.startswith(b"HTTP/1.1 413 "), head


def test_a_put_without_a_valid_slot_is_refused_before_it_is_read(big_server):
    s = raw_put(big_server, f"http://127.0.0.1:{big_server.http_port}/upload/ab/x.bin",
                {"Authorization": "Bearer forged.token"}, 1000)
    head = answer(s, timeout=10)
    assert head.startswith(b"HTTP/1.1 403 "), head
