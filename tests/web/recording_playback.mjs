// A recorded stream plays back in headless Chromium: /publish sends the fake camera and
// microphone with WHIP for a few seconds, Stop DELETEs the session, the recording appears
// at GET /recordings, and a <video> plays /recordings/<name>: metadata with a duration
// within a second of the live session (timed inside the publish page), frames decoded, a
// seek to the middle that lands and then shows frames past the seek point, served with
// Range requests (206).
//
// WebRTC gathers candidates on every interface: tests/recording_playback.rs runs this
// script and the server inside a private network namespace (see there).
//
// Environment as for browser.mjs.

import path from "node:path";
import { check, fail, launchBrowser, MEDIA_ARGS, serverFromArgs, STEP_TIMEOUT_MS, waitFor } from "./browser.mjs";

const OVERALL_TIMEOUT_MS = 120_000;
/** How long the publisher stays live. */
const LIVE_MS = 6_000;
const { httpUrl } = serverFromArgs();
const stream = `rec-play-${process.pid}`;

const { context, shotDir, cleanUp, watchdog } = await launchBrowser("recording_playback", OVERALL_TIMEOUT_MS, { args: MEDIA_ARGS });

const problems = [];
const pages = {};
const statuses = [];
function watch(page, name) {
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on("response", (response) => {
    if (response.url().includes("/recordings/")) statuses.push(response.status());
  });
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${name}: console error: ${message.text()}`);
  });
}

/** Stamps, inside the publish page, when its state badge turns live and then idle again
 * (`globalThis.phaseTimes`): the session's length measured where it happens, not after the
 * test's polling noticed (which lags by seconds on a loaded machine). */
const stampPhases = (page) =>
  page.evaluate(() => {
    const state = document.querySelector('[data-testid="state"]');
    const times = (globalThis.phaseTimes = {});
    new MutationObserver(() => {
      const now = Date.now();
      if (state.dataset.state === "live") times.live ??= now;
      if (state.dataset.state === "idle" && times.live !== undefined) times.idle ??= now;
    }).observe(state, { attributes: true, attributeFilter: ["data-state"] });
  });

async function recordings() {
  const reply = await fetch(`${httpUrl}/recordings`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  check(reply.status === 200, `GET /recordings: ${reply.status}`);
  return (await reply.json()).recordings;
}

try {
  check((await recordings()).every((r) => r.stream !== stream), "no recording of the stream before it is live");

  const publish = context.pages()[0] ?? (await context.newPage());
  pages.publish = publish;
  watch(publish, "publish");
  await publish.goto(`${httpUrl}/publish?stream=${stream}`);
  await waitFor(publish, "the publish page to load", () => globalThis.rootcastPublish !== undefined);
  await stampPhases(publish);
  await publish.click('[data-testid="start"]');
  await waitFor(publish, "the publisher to go live", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "live");
  const liveAt = Date.now();
  await publish.waitForTimeout(LIVE_MS);
  await publish.click('[data-testid="stop"]');
  await waitFor(publish, "the publisher to stop", () =>
    document.querySelector('[data-testid="state"]').dataset.state === "idle");
  const phases = await publish.evaluate(() => globalThis.phaseTimes);
  const liveSeconds = (phases.idle - phases.live) / 1000;
  console.log(`live for ${liveSeconds} s in the page (${(Date.now() - liveAt) / 1000} s seen by the test)`);

  // The recording is listed once its file is complete.
  let entry;
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  while (!entry) {
    entry = (await recordings()).find((r) => r.stream === stream);
    if (!entry) {
      check(Date.now() < deadline, `a recording of ${stream} listed within ${STEP_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  console.log(`recording ${entry.name}: ${entry.duration} s, ${entry.size} bytes; live for ${liveSeconds} s`);
  check(Math.abs(entry.duration - liveSeconds) <= 1, `listed duration ${entry.duration} s within 1 s of ${liveSeconds} s live`);

  const player = await context.newPage();
  pages.player = player;
  watch(player, "player");
  // Any page of the server, then a <video> of the recording in it.
  await player.goto(`${httpUrl}/publish?stream=unused`);
  await player.evaluate((src) => {
    document.body.innerHTML = "";
    const video = document.createElement("video");
    video.id = "recording";
    video.muted = true;
    video.src = src;
    document.body.append(video);
  }, `/recordings/${entry.name}`);
  await waitFor(player, "the recording's metadata", () => {
    const v = document.getElementById("recording");
    return v.readyState >= 1 || v.error;
  });
  const meta = await player.evaluate(() => {
    const v = document.getElementById("recording");
    return { error: v.error?.message ?? v.error?.code ?? null, duration: v.duration, width: v.videoWidth, height: v.videoHeight };
  });
  console.log(`player metadata: ${JSON.stringify(meta)}`);
  check(meta.error === null, `the recording decodes without a media error (${meta.error})`);
  check(Number.isFinite(meta.duration) && meta.duration > 0, `a finite duration (${meta.duration})`);
  check(Math.abs(meta.duration - liveSeconds) <= 1, `duration ${meta.duration} s within 1 s of ${liveSeconds} s live`);
  check(meta.width > 0 && meta.height > 0, `a video size (${meta.width}x${meta.height})`);

  await player.evaluate(() => document.getElementById("recording").play());
  await waitFor(player, "10 decoded frames", () => {
    const v = document.getElementById("recording");
    return v.getVideoPlaybackQuality().totalVideoFrames >= 10 && v.currentTime > 0.2;
  });

  // Seek to the middle: it lands there and playback goes on. "Goes on" is counted in frames
  // *shown* after the seek point (requestVideoFrameCallback's mediaTime), not in
  // totalVideoFrames: a seek decodes from the keyframe before the target (the recording's
  // first, 0 s, in a 6 s file) and every one of those pre-roll frames counts as decoded, so
  // "10 more decoded frames" was already true at `seeked` and, on a loaded machine,
  // currentTime had not moved yet (the flake: 3.08 s after a seek to 3.08 s).
  const target = meta.duration / 2;
  const framesBefore = await player.evaluate((t) => {
    const v = document.getElementById("recording");
    globalThis.seekedAt = null;
    globalThis.shownAfterSeek = [];
    const onFrame = (_now, frame) => {
      if (globalThis.seekedAt !== null) globalThis.shownAfterSeek.push(frame.mediaTime);
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
    v.addEventListener("seeked", () => {
      globalThis.seekedAt = v.currentTime;
      globalThis.decodedAtSeeked = v.getVideoPlaybackQuality().totalVideoFrames;
    }, { once: true });
    v.currentTime = t;
    return v.getVideoPlaybackQuality().totalVideoFrames;
  }, target);
  await waitFor(player, "the seek to finish", () => globalThis.seekedAt !== null);
  const seekedAt = await player.evaluate(() => globalThis.seekedAt);
  check(Math.abs(seekedAt - target) < 0.5, `the seek landed at ${seekedAt} s (asked ${target} s)`);
  const decodedAtSeeked = await player.evaluate(() => globalThis.decodedAtSeeked);
  console.log(`seek: ${framesBefore} frames decoded before, ${decodedAtSeeked} at seeked (pre-roll from the keyframe)`);
  await waitFor(player, "10 frames shown past the seek point", (from) =>
    globalThis.shownAfterSeek.filter((t) => t > from).length >= 10, seekedAt);
  const quality = await player.evaluate(() => {
    const v = document.getElementById("recording");
    const q = v.getVideoPlaybackQuality();
    return { frames: q.totalVideoFrames, dropped: q.droppedVideoFrames, time: v.currentTime };
  });
  console.log(`after the seek: ${JSON.stringify(quality)}; responses ${JSON.stringify(statuses)}`);
  check(quality.time > seekedAt, "playback continues after the seek");
  check(statuses.includes(206), `the browser fetched ranges (206): ${JSON.stringify(statuses)}`);

  const shot = path.join(shotDir, "recording-playback.png");
  await player.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
  if (problems.length > 0) throw new Error(`the pages reported problems:\n  ${problems.join("\n  ")}`);
} catch (error) {
  for (const [name, page] of Object.entries(pages)) {
    const shot = path.join(shotDir, `recording-${name}-failure.png`);
    await page.screenshot({ path: shot }).then(
      () => console.error(`screenshot of the failure: ${shot}`),
      () => {},
    );
  }
  await context.close().catch(() => {});
  cleanUp();
  fail(`recording_playback: ${error.stack ?? error}`);
}
await context.close();
cleanUp();
clearTimeout(watchdog);
console.log("PASS: recording_playback");
