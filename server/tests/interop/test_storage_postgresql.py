"""PostgreSQL as the store, end to end with the real binary and Debian's
PostgreSQL (issue 15):

- `vireo check config` connects and names what is wrong: no such database
  (with the createdb command), a refused login, nothing listening, a schema
  newer than the build; and says what it found when all is well;
- `vireo storage migrate --from redb --to postgresql` moves a store made by
  slixmpp (roster, archive, offline message) and the user finds it all on
  the server started on PostgreSQL;
- PostgreSQL stopped under a running server: /health reports storage
  failing; messages sent meanwhile wait (none is acknowledged before it is
  stored) and every acknowledged one is delivered once the database is back;
- TLS to PostgreSQL (VIREO_DB_TLS, VIREO_DB_TLS_CA): `check config` refuses
  a certificate from an authority it was not told to trust and says so, and
  a server on verify-full with the private authority serves clients over
  encrypted connections only.

The cluster is the session's under VIREO_TEST_STORAGE=postgresql, else one
of this module's own (CI installs PostgreSQL: missing binaries fail there).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request

import pytest

import postgres
from conftest import ON_POSTGRES, VireoServer, free_ports, pg_cluster, unique_user
from smclient import SM, SmClient, chat

pytestmark = pytest.mark.timeout(180)


def own_cluster() -> postgres.PgCluster:
    """A cluster of the caller's own; a skip without PostgreSQL, except in
    CI (which installs it: missing binaries fail there)."""
    try:
        return postgres.start_cluster()
    except postgres.PgUnavailable as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def cluster():
    if ON_POSTGRES:
        yield pg_cluster()
        return
    own = own_cluster()
    yield own
    own.stop()


class StoreServer(VireoServer):
    """A server whose store the test chooses: the VIREO_DB_* of
    `store_env`, or the embedded redb store when it is empty."""

    uses_vireo_store = False

    def __init__(self, name: str, store_env: dict[str, str] | None = None):
        super().__init__(name)
        self.store_env = dict(store_env or {})

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(self.store_env)
        return env


def health(srv: VireoServer) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.http_port}/health", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def check_config(srv: VireoServer) -> tuple[int, str]:
    res = srv.cli("check", "config")
    return res.returncode, res.stdout + res.stderr


def test_check_config_names_what_is_wrong_with_the_database(cluster):
    db = cluster.create_database(f"chk_{unique_user('d')}")
    srv = StoreServer("pg-check", cluster.server_env(db))
    try:
        srv.store_env = {**cluster.server_env(db), "VIREO_DB_NAME": "no_such_db"}
        rc, out = check_config(srv)
        assert rc == 1, out
        assert 'database "no_such_db" does not exist' in out and "createdb" in out, out

        srv.store_env = {**cluster.server_env(db), "VIREO_DB_USER": "nobody_here"}
        rc, out = check_config(srv)
        assert rc == 1 and 'refused the login of user "nobody_here"' in out, out

        srv.store_env = {**cluster.server_env(db), "VIREO_DB_PORT": str(free_ports(1)[0])}
        rc, out = check_config(srv)
        assert rc == 1 and "cannot reach PostgreSQL at 127.0.0.1:" in out, out

        srv.store_env = cluster.server_env(db)
        rc, out = check_config(srv)
        assert rc == 0 and "reachable; no Vireo schema yet" in out, out

        srv.start()
        srv.stop()
        rc, out = check_config(srv)
        assert rc == 0 and "reachable; schema version 1" in out, out

        # A database a newer Vireo upgraded: refused, by the check and at start.
        cluster.psql("INSERT INTO vireo_schema (version, name) VALUES (99, 'from the future')",
                     database=db)
        rc, out = check_config(srv)
        assert rc == 1 and "schema is version 99, newer than this Vireo supports" in out, out
        with pytest.raises(pytest.fail.Exception):
            srv.start(timeout=10)
        assert "newer than this Vireo supports" in srv.log_tail(), srv.log_tail()
    finally:
        srv.cleanup()
        cluster.drop_database(db)


@pytest.mark.embedded_store("migrates the embedded store of its own server to PostgreSQL")
@pytest.mark.asyncio
async def test_a_redb_store_moves_to_postgresql(cluster, xmpp):
    srv = StoreServer("pg-migrate")
    db = None
    try:
        srv.start()
        alice, bob = srv.new_account("alice"), srv.new_account("bob")
        a = await xmpp.online(srv, alice, name="alice")
        b = await xmpp.online(srv, bob, name="bob")
        await a.xmpp.update_roster(bob.jid, name="Bob", groups=["Friends"], timeout=10)
        for i in range(3):
            b.send_chat(alice.jid, f"before the move {i}")
            await a.wait_message(sender=bob.jid, body=f"before the move {i}", timeout=10)
        await a.close()
        b.send_chat(alice.jid, "while you were away")
        await b.sync()
        await asyncio.sleep(0.5)
        await b.close()
        db = cluster.create_database(f"mig_{unique_user('d')}")
        # Not while the server runs: its store is being written.
        running = srv.cli("storage", "migrate", "--from", "redb", "--to", "postgresql",
                          timeout=60)
        assert running.returncode != 0 and "stop it first" in running.stdout + running.stderr
        await asyncio.to_thread(srv.stop)

        srv.store_env = cluster.server_env(db)
        res = srv.cli("storage", "migrate", "--from", "redb", "--to", "postgresql", timeout=60)
        out = res.stdout + res.stderr
        assert res.returncode == 0, out
        assert "copied redb -> postgresql" in out and "verified" in out, out
        assert "accounts 2" in out and "offline messages 1" in out, out
        # Once more into the same database: refused, it is not empty.
        again = srv.cli("storage", "migrate", "--from", "redb", "--to", "postgresql", timeout=60)
        assert again.returncode != 0 and "not empty" in again.stdout + again.stderr

        await asyncio.to_thread(srv.start)
        after = xmpp.client(srv, alice, name="alice-after")
        after.xmpp.register_plugin("xep_0313")
        await after.connect()
        roster = await after.fetch_roster()
        assert roster.get(bob.jid, {}).get("name") == "Bob", roster
        await after.wait_message(sender=bob.jid, body="while you were away", timeout=10)
        bodies = [m["mam_result"]["forwarded"]["stanza"]["body"]
                  async for m in after.xmpp.plugin["xep_0313"].iterate(rsm={"max": 50})]
        assert [x for x in bodies if x.startswith("before the move")] == [
            f"before the move {i}" for i in range(3)], bodies
        await after.close()
    finally:
        srv.cleanup()
        if db is not None:
            cluster.drop_database(db)


@pytest.mark.asyncio
async def test_postgresql_down_under_a_running_server_loses_nothing(cluster):
    if ON_POSTGRES:
        # Stopping the session's cluster would fail the module-scoped
        # servers of other tests running beside it: one of our own.
        own = postgres.start_cluster()
    else:
        own = cluster
    db = own.create_database(f"down_{unique_user('d')}")
    srv = StoreServer("pg-down", own.server_env(db))
    try:
        srv.start()
        alice, bob = srv.new_account("alice"), srv.new_account("bob")
        assert health(srv)[0] == 200
        sender = await SmClient(srv, alice, "phone").connect(sm=True)

        await asyncio.to_thread(own.stop, False)
        status, body = health(srv)
        assert status == 503 and body["checks"]["storage"] == "failing", body
        # To an offline contact: each must be stored before it is counted.
        sender.send("".join(chat(bob.jid, f"down {i}") for i in range(20)) + f"<r xmlns='{SM}'/>")
        await asyncio.sleep(1.0)
        assert sender.server_h < 20, "acknowledged while the database was down"

        await asyncio.to_thread(own.start)
        await sender.wait_until(lambda: sender.server_h >= 20, 60, "<a h='20'/> once it is back")
        assert health(srv)[0] == 200
        sender.shutdown()

        reader = await SmClient(srv, bob, "r").connect(sm=False, presence=True)
        await reader.wait_until(
            lambda: sum(x.startswith("down ") for x in reader.bodies()) >= 20, 20,
            "the 20 messages")
        got = [x for x in reader.bodies() if x.startswith("down ")]
        assert sorted(got) == sorted(f"down {i}" for i in range(20)), got
        reader.shutdown()
    finally:
        srv.cleanup()
        if own is not cluster:
            own.stop()
        else:
            own.drop_database(db)


@pytest.mark.asyncio
async def test_a_server_on_postgresql_over_verified_tls(xmpp):
    # Its own cluster: turning TLS on restarts it.
    cluster = own_cluster()
    srv = None
    try:
        authority = cluster.enable_tls()
        db = cluster.create_database(f"tls_{unique_user('d')}")
        tls = {**cluster.server_env(db), "VIREO_DB_HOST": "localhost",
               "VIREO_DB_TLS": "verify-full"}
        srv = StoreServer("pg-tls", tls)
        rc, out = check_config(srv)
        assert rc == 1, out
        assert "certificate was refused" in out and "sql_tls_ca" in out, out

        srv.store_env = {**tls, "VIREO_DB_TLS_CA": str(authority)}
        rc, out = check_config(srv)
        assert rc == 0 and "reachable" in out, out
        await asyncio.to_thread(srv.start)
        alice, bob = srv.new_account("alice"), srv.new_account("bob")
        a = await xmpp.online(srv, alice, name="alice")
        b = await xmpp.online(srv, bob, name="bob")
        b.send_chat(alice.jid, "over TLS to the database")
        await a.wait_message(sender=bob.jid, body="over TLS to the database", timeout=10)
        await a.close()
        await b.close()
        rows = cluster.psql(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            f"WHERE a.application_name = 'vireo' AND a.datname = '{db}'").split()
        assert rows and all(r == "t" for r in rows), rows
    finally:
        if srv is not None:
            srv.cleanup()
        cluster.stop()
