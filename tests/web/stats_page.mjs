// Browser test of the live-state page (`/`), run by tests/web_page.rs against the real
// server:
//
//   node tests/web/stats_page.mjs <http_url>
//
// Besides the variables browser.mjs reads, ROOTCAST_TEST_TOKENS holds a JSON array of three
// connection tokens, for users alice, bob and bob.
//
// It opens the page in headless Chromium, waits for "live", opens extra connections from a
// second tab with the page's own client module (rootcast-client.js), publishes and
// disconnects through the server API, and checks that every counter on the page follows,
// that the close code decides about reconnecting, and that the language toggle works.

import path from "node:path";

import { check, fail, runInBrowser, serverFromArgs, STEP_TIMEOUT_MS, waitFor } from "./browser.mjs";

const PROBE_CHANNEL = "sys:web-probe";
const PUBLICATIONS = 20;
/** The 100 deliveries (20 publications × 5 probes) take well under a second; the page's
 * out-rate must show at least this much at some point. Idle, it is 1/s (sys:stats to the
 * page), so 10/s holds even if a slow machine spreads the burst over several seconds. */
const OUT_RATE_SEEN = 10;

const { httpUrl, api } = serverFromArgs();
const tokens = JSON.parse(process.env.ROOTCAST_TEST_TOKENS ?? "[]");
if (tokens.length !== 3) fail("ROOTCAST_TEST_TOKENS must hold three tokens (alice, bob, bob)");

await runInBrowser("live-state-page", run);

async function run({ context, page, shotDir, problems }) {
  // ---- the page loads and goes live ----
  const response = await page.goto(`${httpUrl}/?lang=en`);
  check(response.status() === 200, `GET / answered ${response.status()}`);
  check(
    (response.headers()["content-type"] ?? "").startsWith("text/html"),
    `GET / content-type ${response.headers()["content-type"]}`,
  );
  check(await page.title() === "rootcast — live state", `title is ${await page.title()}`);

  await waitFor(page, "the state to show live and connections ≥ 1", () => {
    const state = document.querySelector('[data-testid="state"]');
    const connections = Number(document.querySelector('[data-testid="connections"]').dataset.value);
    return state.dataset.state === "live" && state.innerText.trim() === "Live" && connections >= 1;
  });
  const before = await figures(page);
  console.log("page shows before:", JSON.stringify(before));
  check(before.node.length > 0 && before.version.length > 0, "node name and version are shown");

  // ---- extra connections from a second tab, with the page's own client module ----
  const probe = await context.newPage();
  probe.setDefaultTimeout(STEP_TIMEOUT_MS);
  probe.on("pageerror", (error) => problems.push(`probe page error: ${error.message}`));
  await probe.goto(`${httpUrl}/static/rootcast-client.js`);
  const opened = await probe.evaluate(
    async ({ tokens, channel }) => {
      const { RootcastClient, websocketUrl } = await import("/static/rootcast-client.js");
      const clients = [...tokens, undefined, undefined].map(
        (token) => new RootcastClient(websocketUrl(), { token, name: "web-test-probe" }),
      );
      globalThis.probes = clients.map((client) => ({ client, received: [] }));
      for (const probe of globalThis.probes) {
        const subscription = probe.client.subscribe(channel);
        subscription.addEventListener("publication", (e) => probe.received.push(e.detail.data.n));
        probe.client.connect();
      }
      await Promise.all(clients.map((client) => client.getSubscription(channel).ready(10_000)));
      // A command the namespace does not allow must come back as a numbered error.
      let historyError = null;
      try {
        await clients[0].history(channel, { limit: 1 });
      } catch (error) {
        historyError = { code: error.code, name: error.name };
      }
      return { ids: clients.map((c) => c.clientId), historyError };
    },
    { tokens, channel: PROBE_CHANNEL },
  );
  const extra = opened.ids.length;
  check(new Set(opened.ids).size === extra && opened.ids.every(Boolean), `probe client ids ${opened.ids}`);
  if (opened.historyError) {
    check(
      typeof opened.historyError.code === "number" && opened.historyError.name === "RootcastError",
      `history error should carry a server code: ${JSON.stringify(opened.historyError)}`,
    );
  }
  console.log(`opened ${extra} extra connections (${tokens.length} with tokens)`);

  await waitFor(
    page,
    `connections ≥ ${before.connections + extra}, subscriptions ≥ ${before.subscriptions + extra}, ` +
      `channels ≥ ${before.channels + 1}, users ≥ ${before.users + 2}, ` +
      `messages in total ≥ ${before.messagesInTotal + 2 * extra}`,
    ({ b, extra, users }) => {
      const value = (id) => Number(document.querySelector(`[data-testid="${id}"]`).dataset.value);
      return (
        value("connections") >= b.connections + extra &&
        value("subscriptions") >= b.subscriptions + extra &&
        value("channels") >= b.channels + 1 &&
        value("users") >= b.users + users &&
        value("messages-in-total") >= b.messagesInTotal + 2 * extra
      );
    },
    { b: before, extra, users: 2 },
  );

  // ---- publications through the server API: messages out and its rate go up ----
  const outBefore = (await figures(page)).messagesOutTotal;
  await page.evaluate(() => {
    // Remember the highest out-rate shown from now on.
    const rate = document.querySelector('[data-testid="messages-out-rate"]');
    globalThis.maxOutRate = 0;
    new MutationObserver(() => {
      globalThis.maxOutRate = Math.max(globalThis.maxOutRate, Number(rate.dataset.value ?? 0));
    }).observe(rate, { attributes: true, childList: true, characterData: true, subtree: true });
  });
  for (let n = 1; n <= PUBLICATIONS; n++) await api("publish", { channel: PROBE_CHANNEL, data: { n } });
  const delivered = extra * PUBLICATIONS;
  await waitFor(
    probe,
    `every probe client to receive ${PUBLICATIONS} publications in order`,
    (count) => globalThis.probes.every((p) => p.received.length === count && p.received.every((n, i) => n === i + 1)),
    PUBLICATIONS,
  );
  await waitFor(
    page,
    `messages out total ≥ ${outBefore + delivered} and the out-rate to show ≥ ${OUT_RATE_SEEN}/s`,
    ({ target, rate }) =>
      Number(document.querySelector('[data-testid="messages-out-total"]').dataset.value) >= target &&
      globalThis.maxOutRate >= rate,
    { target: outBefore + delivered, rate: OUT_RATE_SEEN },
  );
  const during = await figures(page);
  console.log("page shows after publishing:", JSON.stringify(during));
  check(during.uptime > before.uptime, "uptime grows");
  check(
    (await page.locator('[data-testid="messages-out-spark"] polyline').getAttribute("points")).length > 0,
    "the out-rate sparkline is drawn",
  );

  // Screenshots while the numbers are up (desktop, then phone).
  const desktopShot = path.join(shotDir, "live-state-desktop.png");
  await page.screenshot({ path: desktopShot });
  console.log(`screenshot: ${desktopShot}`);

  // ---- the server closes connections: the close code decides about reconnecting ----
  const ids = await probe.evaluate(() => {
    for (const probe of globalThis.probes) {
      probe.events = [];
      for (const type of ["connecting", "connected", "disconnected"]) {
        probe.client.addEventListener(type, (e) => probe.events.push({ type, code: e.detail.code }));
      }
    }
    return globalThis.probes.map((p) => p.client.clientId);
  });
  const terminal = 0; // gets 4500: must stay disconnected
  const transient = 2; // gets 3005: must come back, resubscribed
  await api("disconnect", { user: userOf(terminal), client: ids[terminal], disconnect: { code: 4500, reason: "test: go away" } });
  await api("disconnect", { user: userOf(transient), client: ids[transient], disconnect: { code: 3005, reason: "test: come back" } });
  await waitFor(
    probe,
    "the 4500 client to stop and the 3005 client to reconnect and resubscribe",
    ({ terminal, transient, oldId, channel }) => {
      const [stopped, back] = [globalThis.probes[terminal], globalThis.probes[transient]];
      return (
        stopped.client.state === "disconnected" &&
        stopped.events.some((e) => e.type === "disconnected" && e.code === 4500) &&
        !stopped.events.some((e) => e.type === "connecting") &&
        back.events.some((e) => e.type === "connecting" && e.code === 3005) &&
        back.client.state === "connected" &&
        back.client.clientId !== oldId &&
        back.client.getSubscription(channel).state === "subscribed"
      );
    },
    { terminal, transient, oldId: ids[transient], channel: PROBE_CHANNEL },
  );
  await api("publish", { channel: PROBE_CHANNEL, data: { n: PUBLICATIONS + 1 } });
  await waitFor(
    probe,
    "the reconnected client to receive the next publication",
    ({ transient, n }) => globalThis.probes[transient].received.at(-1) === n,
    { transient, n: PUBLICATIONS + 1 },
  );
  check(
    await probe.evaluate(({ i, n }) => !globalThis.probes[i].received.includes(n), { i: terminal, n: PUBLICATIONS + 1 }),
    "a client closed with 4500 must not receive later publications",
  );

  // ---- the page across connection losses ----
  // A second copy of the page whose WebSocket runs through Playwright, so the test can
  // close it with a chosen code as the server would (the server API cannot disconnect an
  // anonymous connection).
  const lossy = await context.newPage();
  lossy.setDefaultTimeout(STEP_TIMEOUT_MS);
  lossy.on("pageerror", (error) => problems.push(`second page error: ${error.message}`));
  const routes = [];
  await lossy.routeWebSocket(/\/connection\/websocket$/, (route) => {
    route.connectToServer(); // forwards both ways
    routes.push(route);
  });
  await lossy.goto(`${httpUrl}/?lang=en`);
  const isLive = () => document.querySelector('[data-testid="state"]').dataset.state === "live";
  await waitFor(lossy, "the second page to go live", isLive);
  const firstId = await lossy.evaluate(() => {
    const badge = document.querySelector('[data-testid="state"]');
    globalThis.statesSeen = [];
    new MutationObserver(() => globalThis.statesSeen.push(badge.dataset.state)).observe(badge, { attributes: true });
    return globalThis.rootcast.client.clientId;
  });
  await routes.at(-1).close({ code: 3001, reason: "test: reconnect" });
  await waitFor(
    lossy,
    "the page to show reconnecting after a 3001 close, then live on a new connection",
    (old) =>
      globalThis.statesSeen.includes("reconnecting") &&
      document.querySelector('[data-testid="state"]').dataset.state === "live" &&
      globalThis.rootcast.client.clientId !== old &&
      document.querySelector('[data-testid="client-id"]').textContent.includes(globalThis.rootcast.client.clientId),
    firstId,
  );
  check(routes.length === 2, `the page reconnected once (${routes.length} connections)`);
  await routes.at(-1).close({ code: 3501, reason: "test: stay away" });
  await waitFor(
    lossy,
    "the page to show disconnected with the reason after a 3501 close",
    () =>
      document.querySelector('[data-testid="state"]').dataset.state === "disconnected" &&
      globalThis.rootcast.client.state === "disconnected" &&
      document.querySelector('[data-testid="notice"]').textContent.includes("test: stay away (3501)"),
  );
  check(routes.length === 2, "no reconnect after 3501");
  await lossy.close();

  // ---- closing connections brings the count down ----
  await probe.evaluate(() => {
    for (const probe of globalThis.probes.slice(3)) probe.client.disconnect();
  });
  // 4500 closed one, and two more were closed by the client.
  await waitFor(
    page,
    `connections ≤ ${during.connections - 3} after three probes are gone`,
    (limit) => Number(document.querySelector('[data-testid="connections"]').dataset.value) <= limit,
    during.connections - 3,
  );
  await probe.close();

  // ---- the language toggle ----
  await page.click('[data-testid="language"]');
  await waitFor(page, "Chinese text after the toggle", () =>
    document.documentElement.lang === "zh-CN" &&
    document.querySelector('[data-i18n="connections"]').textContent === "连接数" &&
    document.querySelector('[data-testid="state"]').innerText.trim() === "实时",
  );
  await page.setViewportSize({ width: 390, height: 844 });
  const phoneShot = path.join(shotDir, "live-state-phone-zh.png");
  await page.screenshot({ path: phoneShot, fullPage: true });
  console.log(`screenshot: ${phoneShot}`);
  await page.click('[data-testid="language"]');
  await waitFor(page, "English text after toggling back", () =>
    document.documentElement.lang === "en" &&
    document.querySelector('[data-i18n="connections"]').textContent === "Connections",
  );
}

/** The user ID of probe `index`: the tokens are for alice, bob, bob; the rest are anonymous. */
function userOf(index) {
  return ["alice", "bob", "bob"][index] ?? "";
}

/** The page's figures, read from the `data-value` attributes it renders. */
function figures(page) {
  return page.evaluate(() => {
    const value = (id) => Number(document.querySelector(`[data-testid="${id}"]`).dataset.value);
    const text = (id) => document.querySelector(`[data-testid="${id}"]`).textContent.trim();
    return {
      connections: value("connections"),
      users: value("users"),
      channels: value("channels"),
      subscriptions: value("subscriptions"),
      messagesInTotal: value("messages-in-total"),
      messagesOutTotal: value("messages-out-total"),
      uptime: value("uptime"),
      node: text("node"),
      version: text("version"),
    };
  });
}
