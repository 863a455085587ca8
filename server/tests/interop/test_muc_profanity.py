"""profanity (the Debian package, a terminal XMPP client built on
libstrophe) joins a room at conference.<domain> and exchanges messages
with a slixmpp occupant (issue 12).

profanity is driven headless: its account in a private XDG data dir
(STARTTLS, the self-signed certificate trusted by tls.policy=trust), its
terminal a pseudo-terminal whose output is drained and ignored, commands
typed into it; what it receives is read from its own debug log
(libstrophe logs every stanza it receives as `RECV:`).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from test_muc import create, groupchat, muc_client, muc_server, new_room, presence_from

__all__ = ["muc_server"]  # the fixture, shared with test_muc.py

PROFANITY_WAIT = 20.0  # profanity's start-up, login and join on a busy CI machine


class Profanity:
    """One profanity process logged into `account` on `srv`."""

    def __init__(self, srv, account, home: Path):
        self.home = home
        self.log = home / "profanity.log"
        data = home / "data" / "profanity"
        data.mkdir(parents=True)
        (home / "config" / "profanity").mkdir(parents=True)
        accounts = data / "accounts"
        accounts.write_text(
            f"[{account.jid}]\n"
            "enabled=true\n"
            f"jid={account.jid}\n"
            f"server={srv.host}\n"
            f"port={srv.c2s_port}\n"
            "resource=profanity\n"
            f"password={account.password}\n"
            "tls.policy=trust\n")
        accounts.chmod(0o600)
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
                   XDG_DATA_HOME=str(home / "data"), TERM="xterm", LANG="C.UTF-8")
        self.proc = subprocess.Popen(
            ["profanity", "-a", account.jid, "-l", "DEBUG", "-f", str(self.log)],
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=home,
            start_new_session=True)
        os.close(slave)
        self.master = master
        self._drain = threading.Thread(target=self._read_terminal, daemon=True)
        self._drain.start()

    def _read_terminal(self) -> None:
        while True:
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:
                return

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    async def wait_log(self, needle: str, timeout: float = PROFANITY_WAIT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        tail = "\n".join(self.log_text().splitlines()[-30:])
        raise AssertionError(f"profanity: {needle!r} not in its log within {timeout}s "
                             f"(exit code {self.proc.poll()}); log tail:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


@pytest.fixture
def profanity_home(tmp_path):
    if shutil.which("profanity") is None:
        pytest.skip("needs the Debian package profanity (.ci/run installs it)")
    yield tmp_path


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_profanity_joins_a_room_and_talks_with_slixmpp(muc_server, xmpp, profanity_home):
    srv = muc_server
    room = new_room(srv)
    alice = muc_client(xmpp, srv, srv.new_account("alice"), "alice")
    await alice.connect()
    await create(alice, room, "Alice")

    prof = Profanity(srv, srv.new_account("prof"), profanity_home)
    try:
        await prof.wait_log("RECV: <iq id=\"_xmpp_bind1\"")
        prof.type(f"/join {room} nick Prof")
        # alice sees profanity enter; profanity gets its own presence (110).
        await presence_from(alice, room, "Prof", timeout=PROFANITY_WAIT)
        await prof.wait_log("Room self presence received")

        prof.type("hello from profanity")
        m = await groupchat(alice, room, "hello from profanity", timeout=PROFANITY_WAIT)
        assert str(m["from"]) == f"{room}/Prof", str(m)

        alice.xmpp.send_message(mto=room, mbody="hello profanity", mtype="groupchat")
        await groupchat(alice, room, "hello profanity")
        await prof.wait_log("<body>hello profanity</body>")
        received = [line for line in prof.log_text().splitlines()
                    if "RECV:" in line and "<body>hello profanity</body>" in line]
        assert len(received) == 1, received
        assert f'from="{room}/Alice"' in received[0], received[0]

        prof.type("/quit")
        await presence_from(alice, room, "Prof", "unavailable", timeout=PROFANITY_WAIT)
    finally:
        prof.stop()
