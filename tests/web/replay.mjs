// The replay of an ended meeting in headless Chromium, driven by tests/web_replay.rs inside a
// private network namespace (WebRTC must not reach the machine's real addresses).
//
// A moderator (REST from this script) schedules a meeting for two stations and takes it
// live; /publish sends the fake camera to the meeting's stream for a few seconds while
// viewer 0 asks a question, viewer 1 votes for it and asks another, the moderator assigns the
// first to the expert, who answers it in public, and the moderator the second in private; the publisher stops and the
// meeting ends. The meeting's recordings endpoint lists one recording (duration within a
// second of the live session) and refuses a stranger. Viewer 1 opens the ended meeting's
// viewer page, follows its link to /replay, and the replay page plays the recording
// (metadata, frames shown) with the two questions, the vote and the public answer only;
// selecting the second question seeks to when it was asked and playback goes on from there.
// The page switches to zh-CN.
//
// Environment as for browser.mjs, plus ROOTCAST_TEST_REPLAY (JSON from the Rust test:
// moderator, expert, viewers, stranger — each {username, password} — and units).

import path from "node:path";
import { check, fail, launchBrowser, MEDIA_ARGS, restClient, serverFromArgs, STEP_TIMEOUT_MS, waitFor } from "./browser.mjs";

const OVERALL_TIMEOUT_MS = 150_000;
/** How long the publisher stays live. */
const LIVE_MS = 7_000;
/** Frames shown (requestVideoFrameCallback) that count as playing. */
const FRAMES = 10;
const { httpUrl } = serverFromArgs();
const { call, rest } = restClient(httpUrl);
const setup = JSON.parse(process.env.ROOTCAST_TEST_REPLAY ?? "null");
if (!setup) fail("ROOTCAST_TEST_REPLAY is not set");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const login = ({ username, password }) => rest("POST", "/api/v1/login", "", { username, password });

const { context, shotDir, cleanUp, watchdog } = await launchBrowser("replay", OVERALL_TIMEOUT_MS, { args: MEDIA_ARGS });

const problems = [];
const pages = {};
const statuses = [];
async function openPage(name, url) {
  const page = await context.newPage();
  pages[name] = page;
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${name}: console error: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (response.url().includes("/recordings/")) statuses.push(response.status());
  });
  await page.goto(url);
  return page;
}

/** Counts the frames the page's <video> shows, with their media times (`globalThis.shown`). */
const countShownFrames = (page) =>
  page.evaluate(() => {
    const video = document.querySelector('[data-testid="video"]');
    globalThis.shown = [];
    const onFrame = (_now, frame) => {
      globalThis.shown.push(frame.mediaTime);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  });

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

try {
  const moderator = await login(setup.moderator);
  const expert = await login(setup.expert);
  const [viewer0, viewer1] = await Promise.all(setup.viewers.map(login));
  const stranger = await login(setup.stranger);

  const { meeting } = await rest("POST", "/api/v1/meetings", moderator.token, {
    title: "Replay briefing",
    starts_at: Date.now(),
    target: { units: setup.units },
    experts: [expert.account.id],
  });
  const recordingsRoute = `/api/v1/meetings/${meeting.id}/recordings`;
  const live = await rest("POST", `/api/v1/meetings/${meeting.id}/live`, moderator.token, {});
  const stream = live.media.stream;
  console.log(`meeting ${meeting.id} live on stream ${stream}`);

  const publish = await openPage("publish", `${httpUrl}/publish?stream=${encodeURIComponent(stream)}`);
  await waitFor(publish, "the publish page to load", () => globalThis.rootcastPublish !== undefined);
  await stampPhases(publish);
  await publish.click('[data-testid="start"]');
  await waitFor(publish, "the publisher to go live", () => document.querySelector('[data-testid="state"]').dataset.state === "live");
  const liveAt = Date.now();

  // Q&A while live: a question, a vote, a second question; a public and a private answer.
  await sleep(1_500);
  const first = (await rest("POST", `/api/v1/meetings/${meeting.id}/questions`, viewer0.token, { body: "Where is the flood map?" })).question;
  await rest("POST", `/api/v1/questions/${first.id}/vote`, viewer1.token, {});
  await sleep(2_500);
  const second = (await rest("POST", `/api/v1/meetings/${meeting.id}/questions`, viewer1.token, { body: "Who covers the night shift?" })).question;
  await rest("POST", `/api/v1/questions/${first.id}/assign`, moderator.token, { expert: expert.account.id });
  await rest("POST", `/api/v1/questions/${first.id}/answers`, expert.token, { body: "On the county site, updated hourly." });
  await rest("POST", `/api/v1/questions/${second.id}/answers`, moderator.token, { body: "Only for you: the roster.", private: true });
  await sleep(Math.max(0, LIVE_MS - (Date.now() - liveAt)));
  await publish.click('[data-testid="stop"]');
  await waitFor(publish, "the publisher to stop", () => document.querySelector('[data-testid="state"]').dataset.state === "idle");
  const phases = await publish.evaluate(() => globalThis.phaseTimes);
  const liveSeconds = (phases.idle - phases.live) / 1000;
  console.log(`live for ${liveSeconds} s in the page (${(Date.now() - liveAt) / 1000} s seen by the test)`);
  await rest("POST", `/api/v1/meetings/${meeting.id}/end`, moderator.token, {});

  // The recording is listed once its file is complete; strangers are refused.
  let listed;
  for (const started = Date.now(); ; await sleep(200)) {
    listed = await rest("GET", recordingsRoute, viewer1.token);
    if (listed.recordings.length > 0) break;
    check(Date.now() - started < STEP_TIMEOUT_MS, `a recording of meeting ${meeting.id} listed within ${STEP_TIMEOUT_MS} ms`);
  }
  check(listed.recordings.length === 1, `one recording: ${JSON.stringify(listed.recordings)}`);
  const recording = listed.recordings[0];
  console.log(`recording ${recording.name}: ${recording.duration} s, offset ${recording.offset} s; live for ${liveSeconds} s`);
  check(recording.stream === stream, `the recording is of the meeting's stream (${recording.stream})`);
  check(Math.abs(recording.duration - liveSeconds) <= 1, `listed duration ${recording.duration} s within 1 s of ${liveSeconds} s live`);
  const refused = await call("GET", recordingsRoute, stranger.token);
  check(refused.status === 403, `a stranger is refused the list: ${refused.status}`);
  const anonymous = await fetch(`${httpUrl}${recordingsRoute}/${recording.name}`, { signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  check(anonymous.status === 401, `the file without a token or login: ${anonymous.status}`);

  // Viewer 1 missed it: the ended meeting's page links to the replay.
  const viewer = await openPage("viewer", `${httpUrl}/meeting?id=${meeting.id}`);
  await viewer.fill('[data-testid="username"]', setup.viewers[1].username);
  await viewer.fill('[data-testid="password"]', setup.viewers[1].password);
  await viewer.click('[data-testid="login"]');
  await waitFor(viewer, "the viewer page to show the meeting ended", () => globalThis.rootcast?.room?.status === "ended");
  await waitFor(viewer, "the link to the replay", () => document.querySelector('[data-testid="replay-link"]') !== null);
  await viewer.click('[data-testid="replay-link"]');
  await viewer.waitForURL(`${httpUrl}/replay?id=${meeting.id}`);
  const replay = viewer;
  // Same tab: the replay page reuses the viewer page's login.
  await waitFor(replay, "the replay page to load the meeting", () => globalThis.rootcastReplay?.model?.recordings?.length === 1);
  check((await replay.textContent('[data-testid="meeting-title"]')) === "Replay briefing", "the replay shows the meeting's title");

  // The Q&A: both questions, the vote, the public answer and not the private one.
  const question = (id) => `[data-testid="question-${id}"]`;
  await replay.waitForSelector(question(first.id));
  await replay.waitForSelector(question(second.id));
  check((await replay.getAttribute(`${question(first.id)} [data-testid="votes"]`, "data-votes")) === "1", "the first question has its vote");
  check((await replay.textContent(`${question(first.id)} [data-testid="answer"]`)).includes("On the county site"), "the public answer is shown");
  check((await replay.locator(`${question(second.id)} [data-testid="answer"]`).count()) === 0, "the private answer is not shown");

  // The recording plays: metadata with a duration within a second of the session, frames shown.
  await waitFor(replay, "the recording's metadata", () => {
    const v = document.querySelector('[data-testid="video"]');
    return v.readyState >= 1 || v.error;
  });
  const meta = await replay.evaluate(() => {
    const v = document.querySelector('[data-testid="video"]');
    return { error: v.error?.message ?? v.error?.code ?? null, duration: v.duration, width: v.videoWidth, height: v.videoHeight };
  });
  console.log(`replay metadata: ${JSON.stringify(meta)}`);
  check(meta.error === null, `the recording decodes without a media error (${meta.error})`);
  check(Math.abs(meta.duration - liveSeconds) <= 1, `duration ${meta.duration} s within 1 s of ${liveSeconds} s live`);
  check(meta.width > 0 && meta.height > 0, `a video size (${meta.width}x${meta.height})`);
  await countShownFrames(replay);
  await replay.evaluate(() => document.querySelector('[data-testid="video"]').play());
  await waitFor(replay, `${FRAMES} frames shown`, (n) => globalThis.shown.length >= n, FRAMES);
  const decoded = await replay.evaluate(() => document.querySelector('[data-testid="video"]').getVideoPlaybackQuality().totalVideoFrames);
  check(decoded >= FRAMES, `frames decoded (${decoded})`);

  // Selecting the second question seeks to when it was asked; playback goes on from there.
  const expected = (second.asked_at - recording.started_at) / 1000;
  check(expected > 0 && expected < meta.duration, `the second question was asked inside the recording (${expected} s)`);
  await replay.evaluate(() => {
    const v = document.querySelector('[data-testid="video"]');
    globalThis.seekedAt = null;
    v.addEventListener("seeked", () => { globalThis.seekedAt = v.currentTime; }, { once: true });
  });
  await replay.click(`${question(second.id)} [data-testid="question-seek"]`);
  await waitFor(replay, "the seek to the question", () => globalThis.seekedAt !== null);
  const seekedAt = await replay.evaluate(() => globalThis.seekedAt);
  console.log(`seeked to ${seekedAt} s (question asked at ${expected} s into the recording)`);
  check(Math.abs(seekedAt - expected) < 0.5, `the seek landed at ${seekedAt} s, where the question was asked (${expected} s)`);
  check((await replay.getAttribute(question(second.id), "data-selected")) !== null, "the question is marked as selected");
  await waitFor(replay, `${FRAMES} frames shown after the seek point`, ({ from, n }) =>
    globalThis.shown.filter((t) => t > from).length >= n, { from: seekedAt, n: FRAMES });
  const after = await replay.evaluate(() => document.querySelector('[data-testid="video"]').currentTime);
  check(after > seekedAt, `playback goes on after the seek (${after} s > ${seekedAt} s)`);
  await waitFor(replay, "the question to count as asked at this point", (id) =>
    document.querySelector(`[data-testid="question-${id}"]`).hasAttribute("data-asked"), second.id);
  check(statuses.includes(206), `the browser fetched ranges (206): ${JSON.stringify(statuses)}`);

  // zh-CN.
  await replay.click('[data-testid="language"]');
  await waitFor(replay, "the page in Chinese", () => document.documentElement.lang === "zh-CN");
  check((await replay.textContent('[data-testid="parts"]')).includes("第 1 段"), "the recordings list in Chinese");
  check((await replay.textContent(`${question(first.id)} [data-testid="question-meta"]`)).includes("提问于"), "the question's time in Chinese");

  const shot = path.join(shotDir, "replay.png");
  await replay.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
  if (problems.length > 0) throw new Error(`the pages reported problems:\n  ${problems.join("\n  ")}`);
} catch (error) {
  for (const [name, page] of Object.entries(pages)) {
    const shot = path.join(shotDir, `replay-${name}-failure.png`);
    await page.screenshot({ path: shot }).then(
      () => console.error(`screenshot of the failure: ${shot}`),
      () => {},
    );
  }
  await context.close().catch(() => {});
  cleanUp();
  fail(`replay: ${error.stack ?? error}`);
}
await context.close();
cleanUp();
clearTimeout(watchdog);
console.log("PASS: replay");
