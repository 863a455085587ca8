"""`vireo adduser / passwd / deluser`, with the server running (admin socket)
and stopped (direct store access)."""

import asyncio
import secrets

import pytest

from conftest import QUIET, WAIT, unique_user


def _fails(res, *words: str) -> None:
    assert res.returncode != 0, f"expected failure, got 0; stdout={res.stdout!r} stderr={res.stderr!r}"
    assert res.stderr.strip(), f"failed without a message on stderr (exit {res.returncode})"
    low = res.stderr.lower()
    if words:
        assert any(w in low for w in words), f"stderr does not explain ({words}): {res.stderr!r}"


async def _login_outcome(xmpp, server, jid, password) -> str:
    c = xmpp.client(server, jid, password)
    outcome = await c.try_connect()
    await c.close()
    return outcome


def test_adduser_existing_account_fails(server):
    acc = server.new_account("dup")
    res = server.cli("adduser", acc.jid, stdin="another-password\n")
    _fails(res, "exist", "already", "taken")


@pytest.mark.parametrize(
    "jid",
    ["@localhost", "us\"er@localhost", "a b@localhost", "al<ice@localhost", "user@", "x" * 1100 + "@localhost"],
    ids=["empty-local", "quote", "space", "lt", "empty-domain", "too-long"],
)
def test_adduser_bad_jid_fails(server, jid):
    res = server.cli("adduser", jid, stdin="pw-123456\n")
    _fails(res)


def test_adduser_unknown_domain_fails(server):
    res = server.cli("adduser", f"{unique_user('x')}@elsewhere.example", stdin="pw-123456\n")
    _fails(res, "domain", "host", "elsewhere.example")


def test_adduser_with_resource_fails(server):
    res = server.cli("adduser", f"{unique_user('x')}@localhost/res", stdin="pw-123456\n")
    _fails(res)


def test_passwd_and_deluser_missing_account_fail(server):
    ghost = server.jid(unique_user("ghost"))
    _fails(server.cli("passwd", ghost, stdin="pw-123456\n"), "not", "no such", "exist", "unknown")
    _fails(server.cli("deluser", ghost), "not", "no such", "exist", "unknown")


@pytest.mark.asyncio
async def test_passwd_changes_password(server, xmpp):
    acc = server.new_account("pw")
    new_password = secrets.token_urlsafe(12)
    res = await asyncio.to_thread(server.cli, "passwd", acc.jid, stdin=new_password + "\n")
    assert res.returncode == 0, res.stderr
    c = xmpp.client(server, acc.jid, new_password)
    await c.connect()
    await c.close()
    assert await _login_outcome(xmpp, server, acc.jid, acc.password) == "failed_auth"


@pytest.mark.asyncio
async def test_deluser_ends_live_session_and_login(server, xmpp):
    acc = server.new_account("del")
    c = await xmpp.online(server, acc, name="doomed")
    res = await asyncio.to_thread(server.cli, "deluser", acc.jid)
    assert res.returncode == 0, res.stderr
    assert await c.wait_disconnected(WAIT), f"live session survived deluser; events={c.events}"
    assert await _login_outcome(xmpp, server, acc.jid, acc.password) == "failed_auth"
    # The name can be registered again, and the new account starts empty.
    new_password = secrets.token_urlsafe(12)
    server.adduser(acc.jid.split("@")[0], new_password)
    c2 = await xmpp.online(server, acc.jid, new_password, name="reborn")
    assert await _login_outcome(xmpp, server, acc.jid, acc.password) == "failed_auth"
    await c2.close()


@pytest.mark.asyncio
async def test_deleted_user_gets_no_offline_messages(server, xmpp):
    a = server.new_account("alice")
    b = server.new_account("bob")
    alice = await xmpp.online(server, a, name="alice")
    alice.send_chat(b.jid, "for the old bob")
    await alice.sync()
    assert (await asyncio.to_thread(server.cli, "deluser", b.jid)).returncode == 0
    new_password = secrets.token_urlsafe(12)
    server.adduser(b.jid.split("@")[0], new_password)
    bob = await xmpp.online(server, b.jid, new_password, name="new-bob")
    stale = await bob.collect("message", lambda m: m["body"] == "for the old bob", QUIET)
    assert not stale, "a recreated account received the deleted account's offline messages"


@pytest.mark.asyncio
async def test_cli_works_while_server_is_stopped(own_server, xmpp):
    srv = own_server
    await asyncio.to_thread(srv.stop)
    user = unique_user("offline")
    password = secrets.token_urlsafe(12)
    jid = srv.adduser(user, password)
    _fails(srv.cli("adduser", jid, stdin="x-password\n"), "exist", "already", "taken")
    other = srv.new_account("gone")
    assert srv.cli("deluser", other.jid).returncode == 0
    await asyncio.to_thread(srv.start)
    c = await xmpp.online(srv, jid, password, name="offline-created")
    await c.close()
    assert await _login_outcome(xmpp, srv, other.jid, other.password) == "failed_auth"


@pytest.mark.asyncio
async def test_password_from_stdin_is_one_line(server, xmpp):
    """Only the first line is the password; the newline is not part of it."""
    jid = server.jid(unique_user("line"))
    res = await asyncio.to_thread(
        server.cli, "adduser", jid, stdin="first-line-pw\nsecond line\n"
    )
    assert res.returncode == 0, res.stderr
    c = await xmpp.online(server, jid, "first-line-pw", name="one-line")
    await c.close()


@pytest.mark.embedded_store(reason="the archive must hold DATA/store/ (the redb file) "
                             "and the server's store-snapshot-* of it")
@pytest.mark.asyncio
async def test_backup_with_data_while_running(own_server, xmpp):
    """`vireo config backup --data` against a running server: the server
    snapshots its own store; the archive holds the accounts and the server
    keeps serving."""
    import tarfile

    srv = own_server
    a = srv.new_account("backup")
    out = srv.cli("config", "backup", "--data", str(srv.root / "backups"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "taken by the running server" in out.stdout, out.stdout
    archive = out.stdout.strip().splitlines()[-1].split("archive: ", 1)[1]
    path = srv.root / archive if not archive.startswith("/") else archive
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert any("/data/store/" in n for n in names), names
    assert not list((srv.data_dir).glob("store-snapshot-*")), "temporary snapshot removed"
    # Still serving, and the snapshot's accounts are the live ones.
    await xmpp.online(srv, a, name="after-backup")


@pytest.mark.embedded_store("the repair walk is redb's")
def test_a_clean_stop_leaves_a_store_that_opens_without_repair(own_server):
    """redb marks its file clean only when the database is closed; a server
    that left it open at exit made every next start walk the whole file
    (about 1.3 s/GB) as after a crash."""
    srv = own_server
    srv.new_account("before")
    for _ in range(2):
        srv.restart()
    log = srv.log_path.read_text(errors="replace")
    assert "repairing the store" not in log, srv.log_tail()
    srv.kill9()
    srv.start()
    # After a real crash the repair is expected (and logged).
    assert "repairing the store" in srv.log_path.read_text(errors="replace")
