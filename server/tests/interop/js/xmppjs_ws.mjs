// xmpp.js (npm `@xmpp/client`) over XMPP-over-WebSocket (RFC 7395): a
// second, non-browser WebSocket client for the server under test, run by
// browser.py. It logs in, fetches the roster, optionally sends --send to
// --peer and waits for a message from --peer with body --expect, printing
// the same milestone lines as converse.mjs:
//
//   connected: <full JID>   roster: <jid>,<jid>   sent: <body>   received: <body>
//   OK (exit 0)  or  FAILED: <reason> (exit 1; 2 on the overall timeout)
//
//   node [--experimental-websocket] xmppjs_ws.mjs --jid a@localhost --password pw \
//        --service ws://127.0.0.1:5280/xmpp-websocket [--peer b@localhost --send hi --expect hello]
//        [--timeout 60] [--step-timeout 20] [--trace]
//
// The password may come from $XMPP_PASSWORD. Node 20 has a WebSocket global
// only with --experimental-websocket (browser.py adds it when needed).
// xmpp.js treats ws:// to 127.0.0.1 as secure, so it offers PLAIN too.

import { parseArgs } from "node:util";
import { client, xml } from "@xmpp/client";

const { values: opt } = parseArgs({
  options: {
    jid: { type: "string" },
    password: { type: "string" },
    service: { type: "string" },
    peer: { type: "string" },
    send: { type: "string" },
    expect: { type: "string" },
    timeout: { type: "string", default: "60" },
    "step-timeout": { type: "string", default: "20" },
    trace: { type: "boolean", default: false },
  },
});
const password = opt.password ?? process.env.XMPP_PASSWORD;
const STEP_MS = Number(opt["step-timeout"]) * 1000;
const TOTAL_MS = Number(opt.timeout) * 1000;
const ROSTER = "jabber:iq:roster";
const t0 = Date.now();

const say = (line) => console.log(line);
const diag = [];
const note = (line) => {
  diag.push(line);
  if (opt.trace) process.stderr.write(`${line}\n`);
};

if (!opt.jid || !password || !opt.service) {
  console.error("xmppjs_ws.mjs: --jid, --password (or $XMPP_PASSWORD) and --service are required");
  process.exit(64);
}
if (typeof WebSocket !== "function") {
  console.error("xmppjs_ws.mjs: no WebSocket global: run node with --experimental-websocket (Node 20) or Node >= 22");
  process.exit(64);
}

const bare = (jid) => String(jid ?? "").split("/")[0];

/** `promise`, or a rejection naming `what` after `ms`. */
function within(ms, what, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const [username, domain] = opt.jid.split("@");
const xmpp = client({ service: opt.service, domain, username, password, resource: "xmppjs-ws" });
xmpp.on("error", (err) => note(`error: ${err.message}`));
xmpp.on("status", (status) => note(`status: ${status}`));
xmpp.on("input", (data) => note(`xmpp <- ${data}`));
xmpp.on("output", (data) => note(`xmpp -> ${data}`));
// xmpp.js reconnects by default: a test wants to see the failure instead.
xmpp.reconnect.stop();

const received = [];
let onMessage = () => {};
xmpp.on("stanza", (s) => {
  if (s.is("message") && s.getChildText("body") !== null && s.attrs.type !== "error") {
    received.push({ from: s.attrs.from, body: s.getChildText("body") });
    onMessage();
  }
});

async function run() {
  const address = await within(STEP_MS, "the session (stream, SASL, bind)", new Promise((resolve, reject) => {
    xmpp.once("online", resolve);
    xmpp.start().catch(reject);
  }));
  say(`connected: ${address}`);

  const result = await xmpp.iqCaller.request(
    xml("iq", { type: "get" }, xml("query", { xmlns: ROSTER })), STEP_MS);
  const jids = result.getChild("query", ROSTER).getChildren("item").map((i) => i.attrs.jid).sort();
  say(`roster: ${jids.join(",")}`);
  await xmpp.send(xml("presence"));

  if (opt.peer && opt.send) {
    await xmpp.send(xml("message", { to: opt.peer, type: "chat" }, xml("body", {}, opt.send)));
    say(`sent: ${opt.send}`);
  }
  if (opt.peer && opt.expect) {
    const match = () => received.some((m) => bare(m.from) === opt.peer && m.body === opt.expect);
    await within(STEP_MS, `a message from ${opt.peer} with body ${JSON.stringify(opt.expect)}`,
      new Promise((resolve) => {
        onMessage = () => match() && resolve();
        onMessage();
      }));
    say(`received: ${opt.expect}`);
  }
  say(`timing: total=${Date.now() - t0}ms`);
}

let finished = false;
async function finish(code, reason) {
  if (finished) return;
  finished = true;
  if (code !== 0) {
    say(`FAILED: ${reason}`);
    process.stderr.write(`--- xmpp.js log (${diag.length} lines) ---\n${diag.join("\n")}\n`);
  } else {
    say("OK");
  }
  await within(5000, "the stream to close", xmpp.stop()).catch((e) => note(`stop: ${e.message}`));
  process.exit(code);
}

for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.on(sig, () => finish(128 + (sig === "SIGINT" ? 2 : sig === "SIGHUP" ? 1 : 15), `killed by ${sig}`));
}
const overall = setTimeout(() => finish(2, `overall timeout (${TOTAL_MS / 1000}s)`), TOTAL_MS);
run().then(
  () => { clearTimeout(overall); return finish(0); },
  (err) => { clearTimeout(overall); return finish(1, err.message ?? String(err)); },
);
