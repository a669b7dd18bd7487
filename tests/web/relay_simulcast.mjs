// Simulcast through the relay in headless Chromium.
//
// 1. /publish sends the fake camera as three simulcast encodings (RIDs q, h, f).
// 2. Two /watch tabs play it; framesDecoded must keep growing in both.
// 3. Late joiners (new tabs, after the stream has run for several seconds) must decode their
//    first frame within 1 s of the WHEP POST (R2). The watch page measures it itself with
//    performance.now(): `postAt` just before the POST, `firstFrameAt` at the first getStats()
//    with framesDecoded > 0 (polled every 10 ms). Printed as `R2 join …`. Asserted: the
//    median ≤ 1 s, at most one join of the seven over 1 s, none over 2 s.
// 4. The layer picker: auto → low → high on one viewer; framesDecoded keeps growing and the
//    decoded width follows the publisher's encodings. Audio only on the other: video frames
//    stop, audio packets keep coming; back to auto brings video back.
// 5. The layer route's statuses: 400 for a bad layer, 404 for an unknown session.
//
// WebRTC gathers candidates on every interface: tests/relay_simulcast.rs runs this script and
// the server inside a private network namespace (see there). Run it by hand only inside one.
//
// Environment as for browser.mjs, plus ROOTCAST_TEST_STREAM (stream name, optional) and
// ROOTCAST_TEST_JOINS (how many late joins to measure, default 7).

import path from "node:path";
import { BACKGROUND_TAB_ARGS, check, fail, launchBrowser, MEDIA_ARGS, serverFromArgs, STEP_TIMEOUT_MS, waitFor } from "./browser.mjs";

const OVERALL_TIMEOUT_MS = 170_000;
/** R2: a viewer joining a live stream decodes its first frame within this long. */
const JOIN_LIMIT_MS = 1_000;
const JOINS = Number(process.env.ROOTCAST_TEST_JOINS ?? 7);
/** Extra query for the late joiners' watch pages (e.g. `&layer=low`), for comparisons. */
const JOIN_QUERY = process.env.ROOTCAST_TEST_JOIN_QUERY ?? "";
const { httpUrl } = serverFromArgs();
const stream = process.env.ROOTCAST_TEST_STREAM ?? `simulcast-test-${process.pid}`;

const { context, shotDir, cleanUp, watchdog } = await launchBrowser("relay_simulcast", OVERALL_TIMEOUT_MS, {
  args: [...MEDIA_ARGS, ...BACKGROUND_TAB_ARGS],
  viewport: { width: 1280, height: 900 },
});

const problems = [];
const pages = {};
function watchProblems(page, name) {
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) console.log(`${name}: ${response.request().method()} ${response.url()} → ${response.status()}`);
  });
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      problems.push(`${name}: console ${message.type()}: ${message.text()}`);
    }
  });
}

/** The watch page's receive figures from getStats(). */
const viewerStats = (page) =>
  page.evaluate(async () => {
    const pc = globalThis.rootcastWatch?.session()?.pc;
    const out = { framesDecoded: 0, width: 0, height: 0, audioPackets: 0 };
    if (!pc) return out;
    for (const entry of (await pc.getStats()).values()) {
      if (entry.type !== "inbound-rtp") continue;
      if (entry.kind === "video") {
        out.framesDecoded += entry.framesDecoded ?? 0;
        out.video = {
          packetsReceived: entry.packetsReceived,
          packetsLost: entry.packetsLost,
          framesReceived: entry.framesReceived,
          framesDropped: entry.framesDropped,
          keyFramesDecoded: entry.keyFramesDecoded,
          pliCount: entry.pliCount,
          nackCount: entry.nackCount,
        };
        out.width = entry.frameWidth ?? 0;
        out.height = entry.frameHeight ?? 0;
      } else if (entry.kind === "audio") {
        out.audioPackets += entry.packetsReceived ?? 0;
      }
    }
    return out;
  });

/** The publisher's encodings: rid → {width, framesSent}. */
const publisherEncodings = (page) =>
  page.evaluate(async () => {
    const pc = globalThis.rootcastPublish?.session()?.pc;
    const out = {};
    if (!pc) return out;
    for (const entry of (await pc.getStats()).values()) {
      if (entry.type === "outbound-rtp" && entry.kind === "video" && entry.rid) {
        out[entry.rid] = {
          width: entry.frameWidth ?? 0,
          height: entry.frameHeight ?? 0,
          framesSent: entry.framesSent ?? 0,
          limit: entry.qualityLimitationReason,
          keyframes: entry.keyFramesEncoded,
          plis: entry.pliCount,
        };
      }
    }
    return out;
  });

/** The relay's layer state for a watch page (GET on its layer URL). */
const relayLayer = (page) =>
  page.evaluate(async () => {
    const url = globalThis.rootcastWatch?.session()?.layerUrl;
    if (!url) return null;
    return (await fetch(url)).json();
  });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls the async `probe()` (run in node, e.g. around page.evaluate) every 100 ms until it
 * returns a truthy value, which it returns; throws naming `what` after the step timeout.
 * (page.waitForFunction does not await a predicate's promise: an async predicate is always
 * "true" there.)
 */
async function until(what, probe) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${STEP_TIMEOUT_MS} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** framesDecoded must grow by at least `min` over `ms`. Returns the stats after. */
// After a layer switch playback must go on without a stall: at least 10 frames in the 2 s
// right after the new layer's first decoded frame. (Before the relay rewrote VP8 PictureID,
// TL0PICIDX and KEYIDX per viewer, a viewer sometimes decoded the switch keyframe and then
// almost nothing until the next keyframe: Chromium's VP8 reference finder mixed the two
// encoders' counters. relay/src/vp8.rs, relay/DESIGN.md §10.)
const SWITCH_WINDOW_MS = 2_000;

async function expectDecoding(page, name, ms = 2_000, min = 10) {
  const before = await viewerStats(page);
  await sleep(ms);
  const after = await viewerStats(page);
  console.log(`${name}: framesDecoded ${before.framesDecoded} → ${after.framesDecoded} in ${ms} ms, ${after.width}×${after.height}`);
  if (after.framesDecoded - before.framesDecoded < min) {
    console.log(`  relay layer state: ${JSON.stringify(await relayLayer(page))}`);
    console.log(`  viewer video before: ${JSON.stringify(before.video)}, after: ${JSON.stringify(after.video)}`);
    console.log(`  publisher encodings: ${JSON.stringify(await publisherEncodings(pages.publish))}`);
  }
  check(
    after.framesDecoded - before.framesDecoded >= min,
    `${name}: framesDecoded should grow by at least ${min} in ${ms} ms (was ${before.framesDecoded}, then ${after.framesDecoded})`,
  );
  return after;
}

async function openViewer(name, query = "") {
  const page = await context.newPage();
  pages[name] = page;
  watchProblems(page, name);
  await page.goto(`${httpUrl}/watch?stream=${stream}${query}`);
  return page;
}

const firstFrame = (page, name) =>
  waitFor(page, `${name}'s first decoded frame`, () => (globalThis.rootcastWatch?.model.joins.length ?? 0) > 0);

/** Picks a layer in the page's picker; waits until the relay reports it as current. */
async function pick(page, name, layer, expectCurrent) {
  await page.selectOption('[data-testid="layer"]', layer);
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let state;
  for (;;) {
    state = await relayLayer(page);
    const current = typeof expectCurrent === "function" ? expectCurrent(state) : state?.current === expectCurrent;
    if (state?.preference === layer && current) return state;
    if (Date.now() > deadline) throw new Error(`${name}: the relay did not switch to ${layer} (state ${JSON.stringify(state)})`);
    await sleep(100);
  }
}

/** Waits until the page decodes frames `width` wide. */
async function expectWidth(page, name, width) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  let stats;
  for (;;) {
    stats = await viewerStats(page);
    if (stats.width === width) return stats;
    if (Date.now() > deadline) throw new Error(`${name}: decoded width stayed ${stats.width}, expected ${width}`);
    await sleep(100);
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

try {
  // 1. The publisher, with simulcast.
  const publish = context.pages()[0] ?? (await context.newPage());
  pages.publish = publish;
  watchProblems(publish, "publish");
  await publish.goto(`${httpUrl}/publish?stream=${stream}`);
  await waitFor(publish, "the publish page to load", () => globalThis.rootcastPublish !== undefined);
  await publish.click('[data-testid="start"]');
  await waitFor(publish, "the publisher to go live", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "live");
  const liveAt = Date.now();
  // Three RIDs negotiated; Chromium may hold the top one back while its CPU is short (a
  // loaded 2-core machine), so at least q and h must be sending, f once it does.
  let lastSeen;
  const encodings = await until("the simulcast encodings q and h to send frames", async () => {
    const e = await publisherEncodings(publish);
    lastSeen = e;
    return e.q?.framesSent > 10 && e.h?.framesSent > 10 && e;
  }).catch((error) => {
    throw new Error(`${error.message}; the publisher's encodings: ${JSON.stringify(lastSeen)}`);
  });
  await until("the f encoding to send", async () => (await publisherEncodings(publish)).f?.framesSent > 0).catch(() => {});
  Object.assign(encodings, await publisherEncodings(publish));
  console.log(`publisher encodings: ${JSON.stringify(encodings)}`);
  check(Object.keys(encodings).sort().join() === "f,h,q", "the publisher sends three RIDs q, h, f");
  check(encodings.q.width < encodings.h.width, "q is smaller than h");
  check(!(encodings.f.width > 0) || encodings.h.width < encodings.f.width, "h is smaller than f");

  // 2. Two viewers, automatic layer.
  const one = await openViewer("viewer 1");
  const two = await openViewer("viewer 2");
  await firstFrame(one, "viewer 1");
  await firstFrame(two, "viewer 2");
  await expectDecoding(one, "viewer 1");
  await expectDecoding(two, "viewer 2");
  const state = await relayLayer(one);
  console.log(`viewer 1 layer state: ${JSON.stringify(state)}`);
  check(state.preference === "auto" && state.joined && state.layers.length >= 2, "live layers, auto");
  // A simulcast stream's viewers get a bandwidth estimate: their layer follows it.
  check(Number.isFinite(state.estimate_bps) && state.estimate_bps > 0, `a bandwidth estimate (got ${state.estimate_bps})`);
  const expected = { q: "low", h: "medium", f: "high" };
  check(
    state.layers.every((l) => expected[l.encodingId] === l.layer) && state.layers[0].encodingId === "q",
    `RIDs map to low, medium, high (got ${JSON.stringify(state.layers)})`,
  );

  // 3. Late joiners: the stream has run for several seconds.
  const ranFor = Date.now() - liveAt;
  if (ranFor < 6_000) await sleep(6_000 - ranFor);
  const fromPost = [];
  const fromStart = [];
  for (let i = 0; i < JOINS; i += 1) {
    const name = `late joiner ${i + 1}`;
    const late = await openViewer(name, JOIN_QUERY);
    await firstFrame(late, name);
    const t = await late.evaluate(() => globalThis.rootcastWatch.model.joins[0]);
    const lateState = await relayLayer(late);
    const join = t.firstFrameAt - t.postAt;
    fromPost.push(join);
    fromStart.push(t.firstFrameAt - t.startAt);
    console.log(
      `R2 join ${i + 1}: first frame ${join.toFixed(0)} ms after the WHEP POST ` +
        `(answer ${(t.answeredAt - t.postAt).toFixed(0)} ms, connected ${(t.connectedAt - t.postAt).toFixed(0)} ms; ` +
        `${(t.firstFrameAt - t.startAt).toFixed(0)} ms after offer creation; layer ${lateState?.current})`,
    );
    await late.close();
    delete pages[name];
    // Joins a little over the keyframe throttle apart, so each is its own join.
    await sleep(1_500);
  }
  const summary = (xs) => `min ${Math.min(...xs).toFixed(0)} ms, median ${median(xs).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`;
  console.log(`R2 join time over ${JOINS} joins, WHEP POST → first decoded frame: ${summary(fromPost)}`);
  console.log(`R2 join time over ${JOINS} joins, offer creation → first decoded frame: ${summary(fromStart)}`);
  // R2 is asserted on the median and on all but one join; a single join over 1 s is
  // printed as a miss, and none may take more than twice the limit (a stall). (Misses were
  // about one join in 20 — the one analysed: a keyframe request held back by the relay's
  // throttle; since such joins start from a cached keyframe, one in 49. relay/DESIGN.md §10.)
  const misses = fromPost.filter((ms) => ms > JOIN_LIMIT_MS);
  for (const [i, ms] of fromPost.entries()) {
    if (ms > JOIN_LIMIT_MS) console.log(`R2 MISSED by late joiner ${i + 1}: ${ms.toFixed(0)} ms`);
    check(ms <= 2 * JOIN_LIMIT_MS, `late joiner ${i + 1} decoded its first frame ${ms.toFixed(0)} ms after the POST (a stall)`);
  }
  check(median(fromPost) <= JOIN_LIMIT_MS, `median join ${median(fromPost).toFixed(0)} ms (limit ${JOIN_LIMIT_MS} ms)`);
  check(misses.length <= 1, `${misses.length} of ${JOINS} joins took more than ${JOIN_LIMIT_MS} ms`);

  console.log(`publisher encodings after the joins: ${JSON.stringify(await publisherEncodings(publish))}`);

  // 4. Layer switches on viewer 1: auto → low → high, playback going on.
  await pick(one, "viewer 1", "low", "low");
  await expectWidth(one, "viewer 1 on low", (await publisherEncodings(publish)).q.width);
  await expectDecoding(one, "viewer 1 on low", SWITCH_WINDOW_MS, 10);
  // "high" gets the highest live layer: f, unless the publisher's browser has dropped it
  // (Chromium drops the top encoding when its CPU or uplink is short; then h).
  const onHigh = await pick(one, "viewer 1", "high", (s) => s.current && s.current === s.layers.at(-1)?.layer);
  const top = onHigh.layers.at(-1);
  console.log(`viewer 1 pinned high: receiving ${onHigh.current} (${top.encodingId}); live ${onHigh.layers.map((l) => l.encodingId).join(",")}`);
  check(top.layer !== "low", "a higher layer than low is live");
  await expectWidth(one, "viewer 1 on high", (await publisherEncodings(publish))[top.encodingId].width);
  await expectDecoding(one, "viewer 1 on high", SWITCH_WINDOW_MS, 10);
  if (top.encodingId === "f") {
    await one.waitForFunction(() => /high/.test(document.querySelector('[data-testid="layer-now"]').textContent));
  }
  await one.screenshot({ path: path.join(shotDir, "relay-simulcast-watch-high.png"), fullPage: true });

  // Audio only on viewer 2: video stops, audio goes on; then back to auto.
  await pick(two, "viewer 2", "audio", null);
  await sleep(500);
  const muted = await viewerStats(two);
  await sleep(2_000);
  const later = await viewerStats(two);
  console.log(
    `viewer 2 audio only: framesDecoded ${muted.framesDecoded} → ${later.framesDecoded}, audio packets ${muted.audioPackets} → ${later.audioPackets} in 2 s`,
  );
  check(later.framesDecoded - muted.framesDecoded <= 1, "no video frames in audio-only mode");
  check(later.audioPackets - muted.audioPackets >= 50, "audio keeps coming in audio-only mode");
  const back = await pick(two, "viewer 2", "auto", (s) => s.current !== null);
  console.log(`viewer 2 back to auto: ${JSON.stringify(back)}`);
  await expectDecoding(two, "viewer 2 back on auto", SWITCH_WINDOW_MS, 10);

  // Viewer 1 kept playing through everything.
  await expectDecoding(one, "viewer 1 at the end", 1_000, 5);

  // 5. The layer route's statuses.
  const layerUrl = await one.evaluate(() => globalThis.rootcastWatch.session().layerUrl);
  check(/\/whep\/[^/]+\/[0-9a-f]{32}\/layer$/.test(layerUrl), `the 201 advertises the layer URL (${layerUrl})`);
  const post = (url, body) =>
    fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  check((await post(layerUrl, '{"layer":"ultra"}')).status === 400, "unknown layer → 400");
  check((await post(layerUrl, '{"encodingId":"zz"}')).status === 400, "unknown RID → 400");
  check((await post(layerUrl, "not json")).status === 400, "bad JSON → 400");
  const unknown = layerUrl.replace(/[0-9a-f]{32}\/layer$/, `${"0".repeat(32)}/layer`);
  check((await post(unknown, '{"layer":"low"}')).status === 404, "unknown session → 404");
  const rid = await post(layerUrl, '{"encodingId":"h"}');
  check(rid.status === 200 && (await rid.json()).preference === "medium", "encodingId h → medium, 200");

  // zh-CN: the picker and the layer figure are translated.
  await two.click('[data-testid="language"]');
  check((await two.textContent('[data-testid="layer"] option[value="audio"]')) === "仅音频", "picker in zh-CN");
  await two.waitForFunction(() => /自动/.test(document.querySelector('[data-testid="layer-now"]').textContent));
  await two.screenshot({ path: path.join(shotDir, "relay-simulcast-watch-zh.png"), fullPage: true });
  await two.click('[data-testid="language"]');

  await two.screenshot({ path: path.join(shotDir, "relay-simulcast-watch-auto.png"), fullPage: true });
  await publish.screenshot({ path: path.join(shotDir, "relay-simulcast-publish.png"), fullPage: true });
  console.log(`screenshots in ${shotDir}`);

  if (problems.length > 0) throw new Error(`the pages reported problems:\n  ${problems.join("\n  ")}`);
} catch (error) {
  for (const [name, page] of Object.entries(pages)) {
    const shot = path.join(shotDir, `relay-simulcast-${name.replace(/\s+/g, "-")}-failure.png`);
    await page.screenshot({ path: shot }).then(
      () => console.error(`screenshot of the failure: ${shot}`),
      () => {},
    );
    const text = await page.evaluate(() => document.body?.innerText).catch(() => "(page not readable)");
    console.error(`${name} page text at failure:\n${text}`);
  }
  await context.close().catch(() => {});
  cleanUp();
  fail(`relay_simulcast: ${error.stack ?? error}`);
}
await context.close();
cleanUp();
clearTimeout(watchdog);
console.log("PASS: relay_simulcast");
