// Two xmpp.js clients against a running Vireo (driven by test_pep_xmppjs.py):
// A and B subscribe to each other's presence, B comes online with XEP-0115
// caps advertising `http://jabber.org/protocol/tune+notify` and answers the
// server's disco#info query for them, A publishes a tune (XEP-0118, default
// `presence` access) and B receives the PEP notification (XEP-0163 §4.3),
// then reads the item back (XEP-0060 §6.5).
//
// Input (environment): VIREO_PORT (STARTTLS c2s port), VIREO_DOMAIN,
// A_JID / A_PASSWORD, B_JID / B_PASSWORD. The server's self-signed
// certificate is trusted through NODE_EXTRA_CA_CERTS.
// Output: one line per step on stdout; exit code 0 when B was notified.

import { createHash } from "node:crypto";
import { client, xml } from "@xmpp/client";

const TUNE = "http://jabber.org/protocol/tune";
const PUBSUB = "http://jabber.org/protocol/pubsub";
const EVENT = "http://jabber.org/protocol/pubsub#event";
const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const CAPS = "http://jabber.org/protocol/caps";
const ROSTER = "jabber:iq:roster";
const CAPS_NODE = "https://github.com/xmppjs/xmpp.js";
const STEP_MS = 10_000;

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const log = (...args) => console.log(...args);

// XEP-0115 §5.1 over one identity and the features, sorted.
const IDENTITY = { category: "client", type: "pc", name: "xmpp.js" };
const FEATURES = [DISCO_INFO, CAPS, `${TUNE}+notify`].sort();
const VER = createHash("sha1")
  .update(
    `${IDENTITY.category}/${IDENTITY.type}//${IDENTITY.name}<` +
      FEATURES.map((f) => `${f}<`).join(""),
  )
  .digest("base64");

/** Resolve when `pred` holds, checked on every stanza; reject after STEP_MS. */
function waiter(entity, what, pred) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      entity.removeListener("stanza", on);
      reject(new Error(`timed out waiting for ${what}`));
    }, STEP_MS);
    const on = (stanza) => {
      if (pred(stanza)) {
        clearTimeout(timer);
        entity.removeListener("stanza", on);
        resolve(stanza);
      }
    };
    entity.on("stanza", on);
  });
}

/** A client whose roster pushes say, per contact, the subscription. */
function make(jid, password, resource) {
  const [username, domain] = jid.split("@");
  const xmpp = client({
    service: `xmpp://127.0.0.1:${env("VIREO_PORT")}`,
    domain,
    username,
    password,
    resource,
  });
  xmpp.subscriptions = new Map();
  xmpp.on("error", (err) => log(`${resource}: error ${err.message}`));
  xmpp.iqCallee.set(ROSTER, "query", (ctx) => {
    for (const item of ctx.element.getChildren("item")) {
      xmpp.subscriptions.set(item.attrs.jid, item.attrs.subscription);
      xmpp.emit("roster-push", item.attrs);
    }
    return true;
  });
  // Caps queries (from the server's PEP service, for the `+notify`s).
  xmpp.capsQueries = 0;
  xmpp.iqCallee.get(DISCO_INFO, "query", (ctx) => {
    xmpp.capsQueries += 1;
    return xml(
      "query",
      { xmlns: DISCO_INFO, node: ctx.element.attrs.node },
      xml("identity", IDENTITY),
      ...FEATURES.map((f) => xml("feature", { var: f })),
    );
  });
  // Approve every subscription request (the clients know each other).
  xmpp.on("stanza", (s) => {
    if (s.is("presence") && s.attrs.type === "subscribe") {
      xmpp.send(xml("presence", { to: s.attrs.from, type: "subscribed" }));
    }
  });
  return xmpp;
}

/** Until `xmpp`'s roster says `both` for `contact`. */
function mutual(xmpp, contact) {
  return new Promise((resolve, reject) => {
    if (xmpp.subscriptions.get(contact) === "both") return resolve();
    const timer = setTimeout(
      () => reject(new Error(`no subscription 'both' with ${contact}`)),
      STEP_MS,
    );
    const on = (item) => {
      if (item.jid === contact && item.subscription === "both") {
        clearTimeout(timer);
        xmpp.removeListener("roster-push", on);
        resolve();
      }
    };
    xmpp.on("roster-push", on);
  });
}

async function main() {
  const aJid = env("A_JID");
  const bJid = env("B_JID");
  const a = make(aJid, env("A_PASSWORD"), "publisher");
  const b = make(bJid, env("B_PASSWORD"), "listener");
  await a.start();
  await b.start();
  // Roster pushes go to the resources that asked for the roster (RFC 6121
  // §2.1.6), subscription requests to available ones (§3.1.3).
  for (const c of [a, b]) {
    await c.iqCaller.request(xml("iq", { type: "get" }, xml("query", { xmlns: ROSTER })), STEP_MS);
    await c.send(xml("presence"));
  }
  log("online: both");

  // Mutual presence subscription (RFC 6121 §3): each asks, the other approves.
  const bothA = mutual(a, bJid);
  const bothB = mutual(b, aJid);
  await a.send(xml("presence", { to: bJid, type: "subscribe" }));
  await b.send(xml("presence", { to: aJid, type: "subscribe" }));
  await Promise.all([bothA, bothB]);
  log("subscription: both");

  // B's presence now carries caps. The server asks B what they mean; B's
  // answer says it wants tune notifications.
  await b.send(
    xml("presence", {}, xml("c", { xmlns: CAPS, hash: "sha-1", node: CAPS_NODE, ver: VER })),
  );
  for (let i = 0; i < 100 && b.capsQueries === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  log(`caps queries answered by B: ${b.capsQueries}`);

  // A publishes; B is notified.
  const notified = waiter(b, "the tune notification", (s) => {
    const items = s.is("message") && s.attrs.from === aJid && s.getChild("event", EVENT)?.getChild("items");
    return Boolean(items && items.attrs.node === TUNE && items.getChild("item")?.attrs.id === "np1");
  });
  const tune = xml(
    "tune",
    { xmlns: TUNE },
    xml("artist", {}, "Yes"),
    xml("title", {}, "Heart of the Sunrise"),
    xml("length", {}, "686"),
  );
  const result = await a.iqCaller.request(
    xml(
      "iq",
      { type: "set", id: "pub1" },
      xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node: TUNE }, xml("item", { id: "np1" }, tune))),
    ),
    STEP_MS,
  );
  log(`published: ${result.attrs.type}`);
  const message = await notified;
  const title = message.getChild("event", EVENT).getChild("items").getChild("item").getChild("tune", TUNE).getChildText("title");
  log(`notified: ${title}`);

  // B reads the node (presence access: B is subscribed).
  const items = await b.iqCaller.request(
    xml("iq", { type: "get", to: aJid, id: "get1" }, xml("pubsub", { xmlns: PUBSUB }, xml("items", { node: TUNE }))),
    STEP_MS,
  );
  const got = items.getChild("pubsub", PUBSUB).getChild("items").getChild("item").getChild("tune", TUNE).getChildText("artist");
  log(`retrieved: ${got}`);

  await a.stop();
  await b.stop();
}

const deadline = setTimeout(() => {
  log("FAILED: overall timeout");
  process.exit(2);
}, 6 * STEP_MS);

main().then(
  () => {
    clearTimeout(deadline);
    log("OK");
    process.exit(0);
  },
  (err) => {
    log(`FAILED: ${err.stack ?? err}`);
    process.exit(1);
  },
);
