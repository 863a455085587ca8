// Converse.js (npm `converse.js`) in a real browser, headless Debian Chromium
// driven by playwright-core, as a client of the server under test over
// XMPP-over-WebSocket (RFC 7395) or BOSH (XEP-0124/0206). Run by browser.py.
//
// A static HTTP server on 127.0.0.1 (ephemeral port) serves a tiny page and
// Converse's own dist files from node_modules (nothing vendored); the page
// logs in with converse.initialize(), and a small plugin hands Converse's
// internal API to this script, which then checks, step by step:
//
//   connected: <full JID>          the stream is up and the session bound
//   roster: <jid>,<jid>            the roster as Converse fetched it (sorted)
//   sent: <body>                   --send went to --peer through the chat UI
//   received: <body>               a message from --peer with body --expect
//   displayed: <body>              ... and it is rendered in the chat view
//   OK                             all done, exit 0
//
// (plus `browser: Chromium <version>` and `timing: launch=..ms connected=..ms
// total=..ms`, informational),
// or `FAILED: <reason>` and exit 1 (2 on the overall timeout), followed on
// stderr by the Chromium console, page errors, failed requests and the XMPP
// traffic as Converse saw it (Strophe's rawInput/rawOutput).
//
// Nothing may leave the machine: host names other than loopback do not
// resolve (failed requests are reported), XEP-0156 discovery is off, sounds,
// notifications and media embedding are off.
//
//   node converse.mjs --jid a@localhost --password pw \
//        (--websocket ws://127.0.0.1:5280/xmpp-websocket | --bosh http://127.0.0.1:5280/http-bind) \
//        [--peer b@localhost --send hi --expect hello] [--timeout 60] [--step-timeout 20] [--trace]
//
// The password may come from $XMPP_PASSWORD instead; the browser from
// $CHROMIUM (default /usr/bin/chromium). --trace streams the XMPP traffic and
// console to stderr as it happens.
//
// What Converse 14 (Strophe.js inside) needs from a server, seen here:
// - WebSocket: the subprotocol `xmpp` echoed in Sec-WebSocket-Protocol (or
//   Chromium drops the connection); one element per message; the first
//   message of each (re)started stream begins with `<open ` (or `<?xml`) and
//   has xmlns="urn:ietf:params:xml:ns:xmpp-framing" and version="1.0";
//   `stream:`-prefixed elements (features, error) declare xmlns:stream
//   themselves (Strophe parses each message on its own); the Origin is the
//   page's (another loopback port) and must be accepted.
// - BOSH: a cross-origin XHR with Content-Type text/xml, so a CORS preflight
//   (OPTIONS, Access-Control-Request-Headers: content-type) then POSTs;
//   every answer, errors included, needs Access-Control-Allow-Origin or the
//   browser reports status 0 and Strophe retries until the step times out.
// - XEP-0191 blocking announced on the domain: without it Converse waits
//   forever before opening a chat with anyone not in the roster.
// - No request interception here (page.route): Playwright would answer CORS
//   preflights itself and hide a server's missing CORS.

import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, "node_modules", "converse.js", "dist");

const { values: opt } = parseArgs({
  options: {
    jid: { type: "string" },
    password: { type: "string" },
    websocket: { type: "string" },
    bosh: { type: "string" },
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
const t0 = Date.now();

const say = (line) => console.log(line);
const diag = []; // console, errors, traffic: printed on failure
const note = (line) => {
  diag.push(line);
  if (opt.trace) process.stderr.write(`${line}\n`);
};

function usage(msg) {
  console.error(`converse.mjs: ${msg}`);
  process.exit(64);
}
if (!opt.jid || !password) usage("--jid and --password (or $XMPP_PASSWORD) are required");
if (Boolean(opt.websocket) === Boolean(opt.bosh)) usage("give exactly one of --websocket URL and --bosh URL");
if ((opt.send || opt.expect) && !opt.peer) usage("--send and --expect need --peer");

/** `promise`, or a rejection naming `what` after `ms`. */
function within(ms, what, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// -- the static server ------------------------------------------------------

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vireo browser test</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script type="module" src="/dist/converse.min.js"></script>
</head><body class="converse-fullscreen"></body></html>
`;

const TYPES = {
  ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
  ".json": "application/json", ".map": "application/json", ".wasm": "application/wasm",
  ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif",
  ".ico": "image/x-icon", ".woff": "font/woff", ".woff2": "font/woff2", ".ttf": "font/ttf",
  ".eot": "application/vnd.ms-fontobject", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
};

async function serve(req, res) {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  if (path === "/" || path === "/index.html") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    return res.end(PAGE);
  }
  if (path.startsWith("/dist/")) {
    const file = normalize(join(DIST, path.slice("/dist/".length)));
    if (file.startsWith(DIST + sep)) {
      try {
        if ((await stat(file)).isFile()) {
          res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
          return res.end(await readFile(file));
        }
      } catch {
        // 404 below
      }
    }
  }
  note(`static: 404 ${path}`);
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found\n");
}

function startStatic() {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      serve(req, res).catch((err) => {
        res.writeHead(500);
        res.end(String(err));
      });
    });
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

// -- in the page ----------------------------------------------------------------

/** Runs in the page: a plugin that exposes Converse's API and records what
 * happens on `window.__vireo`, then converse.initialize(). */
function bootConverse(settings) {
  const state = (window.__vireo = { messages: [], sent: [], statuses: [], connected: null, failed: null });
  const { Strophe } = window.converse.env;
  const names = Object.fromEntries(Object.entries(Strophe.Status).map(([k, v]) => [v, k]));
  window.converse.plugins.add("vireo-harness", {
    initialize() {
      const { _converse } = this;
      const { api } = _converse;
      state.api = api;
      state.converse = _converse;
      api.listen.on("connectionInitialized", () => {
        const conn = api.connection.get();
        conn.rawInput = (data) => window.vireoTrace("<-", data);
        conn.rawOutput = (data) => window.vireoTrace("->", data);
      });
      api.listen.on("connected", () => {
        state.connected = api.connection.get().jid;
      });
      api.listen.on("disconnected", () => {
        state.failed ??= `disconnected (${state.statuses.at(-1) ?? "no status"})`;
      });
      _converse.state.connfeedback?.on("change", (m) => {
        const s = `${names[m.get("connection_status")] ?? m.get("connection_status")}${m.get("message") ? `: ${m.get("message")}` : ""}`;
        state.statuses.push(s);
        window.vireoTrace("status", s);
        if (/^(CONNFAIL|AUTHFAIL|ERROR)/.test(s) && !state.connected) state.failed ??= s;
      });
      api.listen.on("sendMessage", ({ chatbox, message }) => {
        state.sent.push({ to: chatbox.get("jid"), body: message.get("body") });
      });
      api.listen.on("message", (data) => {
        const a = data.attrs ?? {};
        state.messages.push({ from: a.from, body: a.body, type: a.type });
      });
    },
  });
  window.converse.initialize({ ...settings, whitelisted_plugins: ["vireo-harness"] }).catch((err) => {
    state.failed ??= `converse.initialize: ${err}`;
  });
}

// -- the run ----------------------------------------------------------------------

let server;
let browser;

/** Until `pred(arg)` holds in the page; fails early when the connection
 * failed or dropped (every predicate also returns window.__vireo.failed). */
async function until(page, what, pred, arg) {
  await within(STEP_MS, what, page.waitForFunction(pred, arg, { timeout: 0, polling: 50 }));
  const failed = await page.evaluate(() => window.__vireo.failed);
  if (failed) throw new Error(`${failed}, while waiting for ${what}`);
}

async function run() {
  server = await startStatic();
  const origin = `http://127.0.0.1:${server.address().port}`;
  note(`static: serving ${origin}/ from ${DIST}`);

  const launched = Date.now();
  browser = await within(STEP_MS, "Chromium to start", chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    // Only loopback is reachable: every other host name fails to resolve
    // (reported as requestfailed ... ERR_NAME_NOT_RESOLVED).
    args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
      "--no-first-run", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
      "--metrics-recording-only", "--no-pings"],
  }));
  const launchMs = Date.now() - launched;
  say(`browser: Chromium ${browser.version()}`);

  // No request interception (context.route): with it, Playwright answers
  // CORS preflights itself, and the server's own CORS would go untested.
  const context = await browser.newContext({ serviceWorkers: "block", locale: "en-US" });
  const page = await context.newPage();
  page.on("console", (m) => note(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => note(`pageerror: ${e.stack ?? e}`));
  page.on("requestfailed", (r) => note(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ""}`));
  page.on("websocket", (ws) => {
    note(`websocket: open ${ws.url()}`);
    ws.on("close", () => note(`websocket: closed ${ws.url()}`));
    ws.on("socketerror", (e) => note(`websocket: error ${e}`));
  });
  await page.exposeFunction("vireoTrace", (dir, data) => note(`xmpp ${dir} ${data}`));

  const pageStart = Date.now();
  await page.goto(`${origin}/`, { waitUntil: "load", timeout: STEP_MS });
  const transport = opt.websocket ? "websocket" : "bosh";
  await page.evaluate(bootConverse, {
    ...(opt.websocket ? { websocket_url: opt.websocket } : { bosh_service_url: opt.bosh }),
    discover_connection_methods: false,
    authentication: "login",
    auto_login: true,
    jid: opt.jid,
    password,
    auto_reconnect: false,
    keepalive: false, // no BOSH session restore from a previous page
    view_mode: "fullscreen",
    i18n: "en",
    assets_path: "/dist/",
    loglevel: "info",
    allow_registration: false,
    allow_non_roster_messaging: true,
    show_self_in_roster: false,
    play_sounds: false,
    show_desktop_notifications: false,
    render_media: false,
    embed_3rd_party_media_players: false,
    fetch_url_headers: false,
    allow_url_history_change: false,
    idle_presence_timeout: 0,
    auto_away: 0,
  });

  await within(STEP_MS, "the connection (connected or a failure)",
    page.waitForFunction(() => window.__vireo.connected || window.__vireo.failed, null, { timeout: 0, polling: 50 }));
  const { connected, failed } = await page.evaluate(() => ({ connected: window.__vireo.connected, failed: window.__vireo.failed }));
  if (!connected) throw new Error(`login over ${transport} failed: ${failed}`);
  const connectedMs = Date.now() - pageStart;
  say(`connected: ${connected} via ${transport}`);

  const roster = await within(STEP_MS, "the roster", page.evaluate(async () => {
    const { api } = window.__vireo;
    await api.waitUntil("rosterContactsFetched");
    return (await api.contacts.get()).map((c) => c.get("jid")).sort();
  }));
  say(`roster: ${roster.join(",")}`);

  if (opt.peer) {
    // Open the chat and send through its message form, as a user would.
    await within(STEP_MS, `the chat with ${opt.peer}`, page.evaluate(async (peer) => {
      await window.__vireo.api.chats.open(peer, {}, true); // (the model is not serialisable)
    }, opt.peer));
    const chat = page.locator(`converse-chat[jid="${opt.peer}"]`);
    if (opt.send) {
      const box = chat.locator("textarea.chat-textarea");
      await box.waitFor({ state: "visible", timeout: STEP_MS });
      await box.fill(opt.send);
      await box.press("Enter");
      await until(page, "Converse to send the message", ({ peer, body }) => window.__vireo.failed ||
        window.__vireo.sent.some((m) => m.to === peer && m.body === body), { peer: opt.peer, body: opt.send });
      say(`sent: ${opt.send}`);
    }
    if (opt.expect) {
      await until(page, `a message from ${opt.peer} with body ${JSON.stringify(opt.expect)}`,
        ({ peer, body }) => window.__vireo.failed || window.__vireo.messages.some(
          (m) => m.body === body && (m.from ?? "").split("/")[0] === peer), { peer: opt.peer, body: opt.expect });
      say(`received: ${opt.expect}`);
      await chat.locator(".chat-msg__text", { hasText: opt.expect }).first()
        .waitFor({ state: "visible", timeout: STEP_MS });
      say(`displayed: ${opt.expect}`);
    }
  }
  say(`timing: launch=${launchMs}ms connected=${connectedMs}ms total=${Date.now() - t0}ms`);
}

let finished = false;
async function cleanup() {
  const b = browser;
  browser = undefined;
  if (b) await within(10_000, "Chromium to close", b.close()).catch((e) => note(`close: ${e.message}`));
  server?.close();
  server?.closeAllConnections?.();
}

async function finish(code, reason) {
  if (finished) return;
  finished = true;
  if (code !== 0) {
    say(`FAILED: ${reason}`);
    process.stderr.write(`--- browser log (${diag.length} lines) ---\n${diag.join("\n")}\n`);
  } else {
    say("OK");
  }
  await cleanup();
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
