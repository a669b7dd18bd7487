// The relay's pages in headless Chromium: /publish sends the fake camera and microphone
// with WHIP, /watch plays it with WHEP, and the watch page's getStats() must show
// framesDecoded growing. Then Stop on the publish page DELETEs the session.
//
// WebRTC gathers candidates on every interface: tests/relay_pages.rs runs this script
// and the server inside a private network namespace (see there). Run it by hand only
// inside such a namespace.
//
// Environment as for browser.mjs, plus ROOTCAST_TEST_STREAM (stream name, optional).

import path from "node:path";
import { check, fail, launchBrowser, MEDIA_ARGS, serverFromArgs, STEP_TIMEOUT_MS, waitFor } from "./browser.mjs";

const OVERALL_TIMEOUT_MS = 120_000;
const { httpUrl } = serverFromArgs();
const stream = process.env.ROOTCAST_TEST_STREAM ?? `relay-test-${process.pid}`;

const { context, shotDir, cleanUp, watchdog } = await launchBrowser("relay_pages", OVERALL_TIMEOUT_MS, { args: MEDIA_ARGS });

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
      // The early viewer's 404s (no publisher yet) are expected; the browser logs them.
      if (name === "early watch" && /status of 404/.test(message.text())) return;
      problems.push(`${name}: console ${message.type()}: ${message.text()}`);
    }
  });
}

const framesDecoded = (page) =>
  page.evaluate(async () => {
    const pc = globalThis.rootcastWatch?.session()?.pc;
    if (!pc) return 0;
    let frames = 0;
    for (const entry of (await pc.getStats()).values()) {
      if (entry.type === "inbound-rtp" && entry.kind === "video") frames += entry.framesDecoded ?? 0;
    }
    return frames;
  });

try {
  // A viewer that arrives before the publisher: 404, then retries with backoff.
  const early = context.pages()[0] ?? (await context.newPage());
  pages.early = early;
  watchProblems(early, "early watch");
  await early.goto(`${httpUrl}/watch?stream=${stream}`);
  await waitFor(early, "the early viewer to report the missing publisher", () =>
    /\(404\)/.test(document.querySelector('[data-testid="notice"]').textContent));
  check((await early.getAttribute('[data-testid="state"]', "data-state")) === "connecting", "early viewer is connecting");

  const publish = await context.newPage();
  pages.publish = publish;
  watchProblems(publish, "publish");
  await publish.goto(`${httpUrl}/publish?stream=${stream}`);
  await waitFor(publish, "the publish page to load", () => globalThis.rootcastPublish !== undefined);
  check((await publish.textContent('[data-testid="state-text"]')) === "Stopped", "publish page starts stopped");
  await publish.click('[data-testid="start"]');
  await waitFor(publish, "the publisher to go live", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "live");
  await waitFor(publish, "the local preview to play", () => document.querySelector('[data-testid="preview"]').readyState >= 2);

  const watch = await context.newPage();
  pages.watch = watch;
  watchProblems(watch, "watch");
  const joinedAt = Date.now();
  await watch.goto(`${httpUrl}/watch?stream=${stream}`);
  await waitFor(watch, "the viewer to go live", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "live");
  await waitFor(watch, "a first decoded frame", async () => {
    const pc = globalThis.rootcastWatch?.session()?.pc;
    if (!pc) return false;
    for (const entry of (await pc.getStats()).values()) {
      if (entry.type === "inbound-rtp" && entry.kind === "video" && entry.framesDecoded > 0) return true;
    }
    return false;
  });
  console.log(`first frame decoded ${Date.now() - joinedAt} ms after opening the watch page`);

  await waitFor(early, "the early viewer to go live after its retries", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "live");
  await waitFor(early, "the early viewer to decode frames", () =>
    Number(document.querySelector('[data-testid="frames-decoded"]').textContent.replace(/\D/g, "")) > 0);
  check(await early.isHidden('[data-testid="notice"]'), "the early viewer's notice is gone once live");

  const before = await framesDecoded(watch);
  await watch.waitForTimeout(2_000);
  const after = await framesDecoded(watch);
  console.log(`framesDecoded ${before} → ${after} in 2 s`);
  check(after - before >= 10, `framesDecoded should grow by at least 10 in 2 s (was ${before}, then ${after})`);
  await waitFor(watch, "the video element to play", () => {
    const video = document.querySelector('[data-testid="video"]');
    return video.readyState >= 2 && video.videoWidth > 0;
  });
  await waitFor(watch, "the page's frames-decoded figure", () =>
    /\d/.test(document.querySelector('[data-testid="frames-decoded"]').textContent));
  await waitFor(watch, "the page's bitrate figure", () =>
    /kbit/.test(document.querySelector('[data-testid="bitrate"]').textContent));

  const watchShot = path.join(shotDir, "relay-watch.png");
  const publishShot = path.join(shotDir, "relay-publish.png");
  await watch.screenshot({ path: watchShot, fullPage: true });
  await publish.screenshot({ path: publishShot, fullPage: true });
  console.log(`screenshots: ${publishShot} ${watchShot}`);

  // zh-CN on the watch page.
  await watch.click('[data-testid="language"]');
  check((await watch.textContent('[data-testid="state-text"]')) === "直播中", "watch page state in zh-CN");
  await watch.screenshot({ path: path.join(shotDir, "relay-watch-zh.png"), fullPage: true });

  // Stop: the publish page DELETEs its session and the relay accepts a new publisher.
  const resource = await publish.evaluate(() => globalThis.rootcastPublish.session()?.stop && true);
  check(resource, "the publish page has a session");
  await publish.click('[data-testid="stop"]');
  await waitFor(publish, "the publisher to stop", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "idle");
  await publish.click('[data-testid="start"]');
  await waitFor(publish, "the publisher to go live again (the DELETE freed the stream)", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "live");

  if (problems.length > 0) throw new Error(`the pages reported problems:\n  ${problems.join("\n  ")}`);
} catch (error) {
  for (const [name, page] of Object.entries(pages)) {
    const shot = path.join(shotDir, `relay-${name}-failure.png`);
    await page.screenshot({ path: shot }).then(
      () => console.error(`screenshot of the failure: ${shot}`),
      () => {},
    );
    const text = await page.evaluate(() => document.body?.innerText).catch(() => "(page not readable)");
    console.error(`${name} page text at failure:\n${text}`);
  }
  await context.close().catch(() => {});
  cleanUp();
  fail(`relay_pages: ${error.stack ?? error}`);
}
await context.close();
cleanUp();
clearTimeout(watchdog);
console.log("PASS: relay_pages");
