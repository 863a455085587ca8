"""XEP-0198 cuts and resumes for server/bench/soak.sh.

A receiver (the interop suite's raw-socket SmClient) enables resumable
stream management; each round a sender's message arrives, the receiver's
TCP connection is cut without a goodbye, another message is sent while it
is away, and the receiver resumes and must get it. Exits non-zero when a
message goes missing.
"""

import argparse
import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))

from conftest import Account  # noqa: E402
from smclient import SmClient  # noqa: E402


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True, help="direct TLS port")
    ap.add_argument("--jid", required=True)
    ap.add_argument("--sender", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    srv = SimpleNamespace(host="127.0.0.1", c2s_tls_port=args.port)
    rx = await SmClient(srv, Account(args.jid, args.password), "phone").connect(presence=True)
    tx = await SmClient(srv, Account(args.sender, args.password), "desk").connect(sm=False)
    missing = 0
    for i in range(args.rounds):
        for body in (f"live-{i}", f"away-{i}"):
            if body.startswith("away"):
                rx.abort()
                await asyncio.sleep(0.2)
            tx.send(f"<message to='{args.jid}' type='chat'><body>{body}</body></message>")
            if body.startswith("away"):
                _, answer = await rx.resume()
                if not answer.tag.endswith("resumed"):
                    print(f"round {i}: resume refused", file=sys.stderr)
                    return 1
            for _ in range(50):
                if any(el.findtext("{jabber:client}body") == body for el in rx.stanzas):
                    break
                await asyncio.sleep(0.1)
            else:
                missing += 1
        rx.ack()
    await rx.close()
    await tx.close()
    if missing:
        print(f"{missing} messages missing", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
