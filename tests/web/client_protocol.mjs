// Browser test of rootcast-client.js, the protocol client every page uses, against the real
// server (run by tests/web_page.rs):
//
//   node tests/web/client_protocol.mjs <http_url>
//
// Besides the variables browser.mjs reads, ROOTCAST_TEST_TOKEN holds a connection token for
// user "carol". The server runs with pings every second, a 500 ms pong timeout, and a
// namespace "feed" with history, forced recovery and presence.
//
// Checked: pongs keep the connection open; publications, client publish, history,
// presence_stats and RPC errors; a refused subscription; reconnect after a 3xxx close with
// recovery of what was published meanwhile (none lost, none twice); server-side and
// client-side unsubscribe; disconnect().

import { check, runInBrowser, serverFromArgs, waitFor, fail } from "./browser.mjs";

const { httpUrl, api } = serverFromArgs();
const token = process.env.ROOTCAST_TEST_TOKEN ?? "";
if (!token) fail("ROOTCAST_TEST_TOKEN is not set");

await runInBrowser("client-protocol", async ({ page }) => {
  // A same-origin document without a page script of its own. Shown as text, it has no icon
  // link, so Chromium asks for /favicon.ico, which the server does not have.
  await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204 }));
  await page.goto(`${httpUrl}/static/rootcast-client.js`);
  const clientId = await page.evaluate(async (token) => {
    const m = await import("/static/rootcast-client.js");
    const t = (globalThis.t = { pongs: 0, blocked: false, events: [], received: [], all: [], subscribed: [] });
    // A WebSocket that counts the client's pongs and can refuse to connect.
    class TestSocket extends WebSocket {
      constructor(url) {
        if (t.blocked) throw new Error("connecting is blocked by the test");
        super(url);
      }
      send(data) {
        if (data === "{}") t.pongs++;
        super.send(data);
      }
    }
    const client = new m.RootcastClient(m.websocketUrl(), {
      token,
      WebSocket: TestSocket,
      minReconnectDelay: 100,
      maxReconnectDelay: 400,
    });
    t.client = client;
    for (const type of ["connecting", "connected", "disconnected"]) {
      client.addEventListener(type, (e) => t.events.push({ type, code: e.detail.code }));
    }
    client.addEventListener("publication", (e) => t.all.push({ channel: e.detail.channel, n: e.detail.data.n }));
    const feed = client.subscribe("feed:news");
    feed.addEventListener("publication", (e) => t.received.push({ n: e.detail.data.n, offset: e.detail.offset }));
    feed.addEventListener("subscribed", (e) => t.subscribed.push(e.detail));
    client.connect();
    await feed.ready(10_000);
    return client.clientId;
  }, token);
  check(clientId, "connected with a client ID");

  // ---- the client answers the server's pings ({} → {}), so the server keeps it ----
  await waitFor(
    page,
    "three pongs on one connection",
    () => t.pongs >= 3 && t.client.state === "connected" && !t.events.some((e) => e.type === "connecting"),
  );

  // ---- publications, client publish, history, presence, RPC error ----
  for (const n of [1, 2, 3]) await api("publish", { channel: "feed:news", data: { n } });
  await page.evaluate(() => t.client.publish("feed:news", { n: 4 }));
  await waitFor(page, "publications 1–4 in order", () => t.received.map((p) => p.n).join() === "1,2,3,4");
  const offsets = await page.evaluate(() => t.received.map((p) => p.offset));
  check(offsets.every((o, i) => i === 0 || o > offsets[i - 1]) && offsets[0] > 0, `offsets grow: ${offsets}`);

  const results = await page.evaluate(async () => {
    const feed = t.client.getSubscription("feed:news");
    const history = await feed.history({ limit: 10 });
    const presence = await feed.presenceStats();
    let rpcError = null;
    try {
      await t.client.rpc("web-test.no-such-method", {});
    } catch (error) {
      rpcError = { name: error.name, code: error.code };
    }
    const refused = await new Promise((resolve) => {
      const sub = t.client.subscribe("no-such-namespace:x");
      sub.addEventListener("unsubscribed", (e) => resolve(e.detail));
    });
    return {
      history: history.publications.map((p) => p.data.n),
      top: history.offset,
      epoch: history.epoch,
      position: feed.position,
      presence,
      rpcError,
      refused,
    };
  });
  console.log("commands:", JSON.stringify(results));
  check(results.history.join() === "1,2,3,4", `history holds 1–4: ${results.history}`);
  check(results.position?.offset === results.top && results.position?.epoch === results.epoch, "position is the top of the stream");
  check(results.presence.num_clients >= 1 && results.presence.num_users >= 1, "presence_stats counts this client");
  check(results.rpcError?.name === "RootcastError" && results.rpcError.code === 104, "unknown RPC method → 104");
  check(results.refused.code === 102, `subscribing in an unknown namespace → 102 (got ${results.refused.code})`);

  // ---- reconnect after a 3xxx close, recovering what was published while away ----
  await page.evaluate(() => {
    t.blocked = true;
  });
  await api("disconnect", { user: "carol", client: clientId, disconnect: { code: 3010, reason: "test: come back" } });
  await waitFor(page, "the client to notice the 3010 close", () =>
    t.events.some((e) => e.type === "connecting" && e.code === 3010),
  );
  for (const n of [5, 6, 7]) await api("publish", { channel: "feed:news", data: { n } });
  await page.evaluate(() => {
    t.blocked = false;
  });
  await waitFor(
    page,
    "reconnected and resubscribed with recovery of 5–7",
    (oldId) =>
      t.client.state === "connected" &&
      t.client.clientId !== oldId &&
      t.subscribed.length === 2 &&
      t.received.map((p) => p.n).join() === "1,2,3,4,5,6,7",
    clientId,
  );
  const resubscribed = await page.evaluate(() => t.subscribed[1]);
  check(resubscribed.recovered && resubscribed.wasRecovering, `recovered: ${JSON.stringify(resubscribed)}`);

  // ---- server-side unsubscribe (code 2000 push), then client-side unsubscribe ----
  const newId = await page.evaluate(async () => {
    await t.client.subscribe("feed:marker").ready();
    await t.client.subscribe("feed:other").ready();
    t.unsubscribed = null;
    t.client.getSubscription("feed:news").addEventListener("unsubscribed", (e) => (t.unsubscribed = e.detail));
    return t.client.clientId;
  });
  await api("unsubscribe", { user: "carol", channel: "feed:news", client: newId });
  await waitFor(page, "the server's unsubscribe to arrive", () =>
    t.unsubscribed !== null && t.client.getSubscription("feed:news") === undefined,
  );
  const unsubscribeCode = await page.evaluate(() => t.unsubscribed.code);
  check(unsubscribeCode < 2500, `a server unsubscribe below 2500 ends the subscription (${unsubscribeCode})`);
  await page.evaluate(() => t.client.getSubscription("feed:other").unsubscribe()); // resolves on the reply
  await api("publish", { channel: "feed:news", data: { n: 8 } });
  await api("publish", { channel: "feed:other", data: { n: 9 } });
  // Publications reach a connection in order, so once the marker's arrives the others would have too.
  await api("publish", { channel: "feed:marker", data: { n: 10 } });
  await waitFor(page, "the marker publication", () => t.all.some((p) => p.channel === "feed:marker" && p.n === 10));
  const leaked = await page.evaluate(() => t.all.filter((p) => p.n === 8 || p.n === 9));
  check(leaked.length === 0, `no publications after unsubscribing: ${JSON.stringify(leaked)}`);

  // ---- disconnect() is final ----
  await page.evaluate(() => t.client.disconnect());
  const final = await page.evaluate(() => ({ state: t.client.state, last: t.events.at(-1) }));
  check(final.state === "disconnected" && final.last.type === "disconnected", `after disconnect(): ${JSON.stringify(final)}`);
});
