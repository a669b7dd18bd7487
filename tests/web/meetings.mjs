// The meeting pages in headless Chromium, driven by tests/web_meetings.rs inside a private
// network namespace (WebRTC must not reach the machine's real addresses).
//
// A moderator (REST from this script) schedules a meeting for three stations and takes it
// live; /publish sends the fake camera to the meeting's stream; the meeting-room TV
// (/tv?credential=…) and two viewer pages (/meeting?id=…) decode frames. Then, each step
// checked on every page: an announcement banner; viewer 0 asks anonymously (pre-approval:
// only they see it, pending), the moderator approves, viewer 1 votes from the page (and withdraws and votes again), the
// moderator puts it on screen and assigns it, the expert answers; viewer 0 chats, viewer
// 1 sees it, the moderator deletes it and it goes from both; slow mode refuses a second
// message on the page with the seconds to wait; a directive to the TV's unit shows as a
// banner on the TV; a TV opened without `meeting=` finds the live meeting. Last, the server
// is restarted on the same address and store (the Rust
// side does it when this script creates `<control>/restart`); the publisher starts again
// and the TV must be back to live video and the current state (a new announcement) within
// 10 s, by itself. Then the TV alone loses its network for 7 s (the Rust side drops every
// packet of its hub connections, which go through a forwarder of their own, and of its
// WebRTC session); an announcement and a screen change made meanwhile, and live video, must
// be on it within 10 s of the network coming back, by itself. Last, 40% of the packets to
// the TV are dropped: it falls back to audio only (no more frames, audio still arriving).
// The TV shows the viewer page's link and its QR code (the hub's SVG in an <img>).
//
// Environment as for browser.mjs, plus ROOTCAST_TEST_MEETINGS (JSON from the Rust test:
// moderator, expert, viewers, units, screen {unit, credential, url: the TV's own address
// of the hub}, control).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { check, fail, launchBrowser, MEDIA_ARGS, restClient, serverFromArgs, STEP_TIMEOUT_MS, waitFor } from "./browser.mjs";

const OVERALL_TIMEOUT_MS = 290_000;
/** The TV must be back within this long after the restarted server is up (the publisher
 * starts again in that time too), and after its network comes back. */
const RECOVERY_MS = 10_000;
/** How long the TV's network is cut. */
const OUTAGE_MS = 7_000;
const here = path.dirname(fileURLToPath(import.meta.url));
const { httpUrl } = serverFromArgs();
const { rest } = restClient(httpUrl);
const setup = JSON.parse(process.env.ROOTCAST_TEST_MEETINGS ?? "null");
if (!setup) fail("ROOTCAST_TEST_MEETINGS is not set");

async function login({ username, password }) {
  return rest("POST", "/api/v1/login", "", { username, password });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Asks the Rust side for something by writing `<control>/<name>` and waits (up to 45 s)
 * for its answer file. */
async function request(name, body, answer) {
  const answerFile = path.join(setup.control, answer);
  // Written whole, then renamed: the Rust side never reads half a request.
  fs.writeFileSync(path.join(setup.control, `${name}.part`), body);
  fs.renameSync(path.join(setup.control, `${name}.part`), path.join(setup.control, name));
  for (const started = Date.now(); !fs.existsSync(answerFile); await sleep(50)) {
    check(Date.now() - started < 45_000, `the test answered ${name} within 45 s`);
  }
  fs.rmSync(answerFile);
}

const { context, shotDir, cleanUp, watchdog } = await launchBrowser("meetings", OVERALL_TIMEOUT_MS, { args: MEDIA_ARGS });

const problems = [];
const pages = {};
let restarting = false;
let outage = false;
async function openPage(name, url) {
  const page = await context.newPage();
  pages[name] = page;
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    const text = message.text();
    // Refusals the test provokes (slow mode 429), WHEP 404s while no publisher is back,
    // and failed requests while the server restarts are expected; the browser logs them.
    // (The TV's forwarder closes a connection the server refuses: ERR_EMPTY_RESPONSE.)
    if (/status of (404|429)/.test(text) || (restarting && /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_(RESET|CLOSED)|WebSocket|status of 50\d/.test(text))) return;
    // While the TV is cut off, its requests time out or fail.
    if (outage && name === "tv" && /net::ERR_|WebSocket|Failed to fetch/.test(text)) return;
    problems.push(`${name}: console ${message.type()}: ${text}`);
  });
  await page.goto(url);
  return page;
}

/** Frames decoded by the page's current WHEP session (`rootcast.player` or `rootcastTv.player`). */
const framesDecoded = (page) =>
  page.evaluate(async () => {
    const pc = (globalThis.rootcastTv ?? globalThis.rootcast)?.player?.pc;
    if (!pc) return 0;
    let frames = 0;
    for (const entry of (await pc.getStats()).values()) {
      if (entry.type === "inbound-rtp" && entry.kind === "video") frames += entry.framesDecoded ?? 0;
    }
    return frames;
  });

async function waitForFrames(page, what) {
  await waitFor(page, `${what} to decode frames`, () => (globalThis.rootcastTv ?? globalThis.rootcast)?.player?.framesDecoded > 0);
  const before = await framesDecoded(page);
  await page.waitForTimeout(1_500);
  const after = await framesDecoded(page);
  console.log(`${what}: framesDecoded ${before} → ${after} in 1.5 s`);
  check(after > before, `${what}: frames keep being decoded (${before} → ${after})`);
}

const text = (page, testId) => page.textContent(`[data-testid="${testId}"]`);

/** Waits until the TV's current WHEP session has a nominated, succeeded candidate pair
 * (a session that has just replaced another may not have one yet). */
async function waitForTvPair(tv) {
  await waitFor(tv, "the TV's session to have a nominated candidate pair", async () => {
    const pc = globalThis.rootcastTv.player.pc;
    if (!pc) return false;
    return [...(await pc.getStats()).values()].some((e) => e.type === "candidate-pair" && e.nominated && e.state === "succeeded");
  });
}

try {
  const moderator = await login(setup.moderator);
  const expert = await login(setup.expert);
  const [viewer0, viewer1] = await Promise.all(setup.viewers.map(login));

  // The moderator schedules the meeting (pre-approved questions) and takes it live.
  const { meeting } = await rest("POST", "/api/v1/meetings", moderator.token, {
    title: "Flood season briefing",
    agenda: "1. Water levels\n2. Duty rosters",
    starts_at: Date.now(),
    target: { units: setup.units },
    experts: [expert.account.id],
    qa_preapproval: true,
  });
  const live = await rest("POST", `/api/v1/meetings/${meeting.id}/live`, moderator.token, {});
  const stream = live.media.stream;
  console.log(`meeting ${meeting.id} live on stream ${stream}`);

  const publish = await openPage("publish", `${httpUrl}/publish?stream=${encodeURIComponent(stream)}`);
  await waitFor(publish, "the publish page to load", () => globalThis.rootcastPublish !== undefined);
  await publish.click('[data-testid="start"]');
  await waitFor(publish, "the publisher to go live", () => document.querySelector('[data-testid="state"]').dataset.state === "live");

  // The TV logs in with the unit's credential, which then leaves the address bar.
  // The TV reaches the hub through its own forwarder (see web_meetings.rs).
  const tvUrl = setup.screen.url;
  const tv = await openPage("tv", `${tvUrl}/tv?credential=${encodeURIComponent(setup.screen.credential)}&meeting=${meeting.id}`);
  await waitFor(tv, "the TV to join", () => globalThis.rootcastTv?.room?.meeting != null);
  check(!tv.url().includes("credential"), `the credential left the TV's address bar: ${tv.url()}`);
  check((await text(tv, "meeting-title")) === "Flood season briefing", "the TV shows the meeting's title");

  const viewers = [];
  for (const [i, who] of setup.viewers.entries()) {
    const page = await openPage(`viewer${i}`, `${httpUrl}/meeting?id=${meeting.id}`);
    await page.fill('[data-testid="username"]', who.username);
    await page.fill('[data-testid="password"]', who.password);
    await page.click('[data-testid="login"]');
    await waitFor(page, `viewer ${i} to join`, () => globalThis.rootcast?.room?.phase === "live");
    viewers.push(page);
  }
  const watchers = [tv, ...viewers];
  const names = ["TV", "viewer 0", "viewer 1"];
  for (const [i, page] of watchers.entries()) await waitForFrames(page, names[i]);
  await waitFor(tv, "the TV's waiting text to give way to the video", () => document.querySelector('[data-testid="waiting"]').hidden);
  // The join box: the viewer page's address on the address the TV reached, as text and as
  // the hub's QR code (web_meetings.rs decodes that code; here: it is the hub's, drawn).
  await waitFor(tv, "the join QR code on the TV", () => {
    const img = document.querySelector('[data-testid="join-qr"]');
    return !img.hidden && img.complete && img.naturalWidth >= 256 && img.getBoundingClientRect().width > 100;
  });
  const joinLink = await text(tv, "join-link");
  check(joinLink === `${tvUrl}/meeting?id=${meeting.id}`, `the TV shows the viewer page's address (${joinLink})`);
  const shown = await tv.evaluate(() => {
    const img = document.querySelector('[data-testid="join-qr"]');
    const src = img.getAttribute("src");
    const prefix = "data:image/svg+xml;charset=utf-8,";
    return { svg: src.startsWith(prefix) ? decodeURIComponent(src.slice(prefix.length)) : `not a data URL: ${src.slice(0, 60)}`, alt: img.alt };
  });
  const hubsCode = await fetch(`${tvUrl}/api/v1/meetings/${meeting.id}/join-link`, {
    headers: { Authorization: `Bearer ${viewer0.token}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).then((r) => r.json());
  check(hubsCode.link === joinLink, `the hub's join link is the TV's (${hubsCode.link})`);
  check(shown.svg === hubsCode.qr_svg, `the TV shows the hub's QR code for that link (${shown.svg.slice(0, 80)}…)`);
  check(shown.alt.includes(joinLink), `the QR code's alt text names the link (${shown.alt})`);

  // An announcement: a banner over the video on every page.
  await rest("POST", `/api/v1/meetings/${meeting.id}/announcements`, moderator.token, {
    body: "Break at 10:30",
    level: "warning",
  });
  for (const [i, page] of watchers.entries()) {
    await waitFor(page, `the announcement on ${names[i]}`, () => {
      const banner = document.querySelector('[data-testid="announcement"]');
      return !banner.hidden && banner.textContent.includes("Break at 10:30") && banner.dataset.level === "warning";
    });
  }

  // Viewer 0 asks anonymously; with pre-approval only they see it, as pending.
  const [asker, voter] = viewers;
  await asker.fill('[data-testid="ask-body"]', "When does the night shift start?");
  await asker.check('[data-testid="ask-anonymous"]');
  await asker.click('[data-testid="ask"]');
  await waitFor(asker, "the asker's own pending question", () =>
    [...document.querySelectorAll('[data-testid^="question-"]')].some((q) => q.dataset.status === "pending"));
  const questionId = await asker.evaluate(() => document.querySelector('[data-testid^="question-"]').dataset.testid.slice("question-".length));
  const questionSelector = `[data-testid="question-${questionId}"]`;
  await voter.waitForTimeout(500);
  check((await voter.$(questionSelector)) === null, "a pending question is not shown to other viewers");

  await rest("POST", `/api/v1/questions/${questionId}/approve`, moderator.token, {});
  await waitFor(voter, "the approved question on viewer 1", (s) => document.querySelector(s) !== null, questionSelector);
  await waitFor(asker, "the asker's question open", (s) => document.querySelector(s)?.dataset.status === "open", questionSelector);
  const shownAsker = await voter.textContent(`${questionSelector} .muted`);
  check(shownAsker.startsWith("Anonymous"), `viewer 1 sees an anonymous asker (${shownAsker})`);
  check(!shownAsker.includes(setup.viewers[0].username), "viewer 1 does not see the asker's name");

  // Viewer 1 votes from the page; both pages count it.
  await voter.click(`${questionSelector} [data-testid="vote"]`);
  for (const [i, page] of viewers.entries()) {
    await waitFor(page, `one vote on viewer ${i}`, (s) => document.querySelector(`${s} [data-testid="vote"]`)?.textContent.includes("1"), questionSelector);
  }
  check((await voter.getAttribute(`${questionSelector} [data-testid="vote"]`, "aria-pressed")) === "true", "viewer 1's vote is marked");
  // Withdrawn and given again: both pages follow.
  await voter.click(`${questionSelector} [data-testid="vote"]`);
  for (const [i, page] of viewers.entries()) {
    await waitFor(page, `the withdrawn vote on viewer ${i}`, (s) => document.querySelector(`${s} [data-testid="vote"]`)?.textContent.includes("0"), questionSelector);
  }
  await voter.click(`${questionSelector} [data-testid="vote"]`);
  for (const [i, page] of viewers.entries()) {
    await waitFor(page, `the vote again on viewer ${i}`, (s) => document.querySelector(`${s} [data-testid="vote"]`)?.textContent.includes("1"), questionSelector);
  }

  // The moderator puts it on screen and assigns it to the expert, who answers.
  await rest("POST", `/api/v1/meetings/${meeting.id}/screen`, moderator.token, { question: questionId });
  await waitFor(tv, "the question on the TV's screen", () => {
    const card = document.querySelector('[data-testid="screen"]');
    return !card.hidden && card.textContent.includes("night shift") && card.textContent.includes("1");
  });
  for (const [i, page] of viewers.entries()) {
    await waitFor(page, `the question highlighted on viewer ${i}`, (s) => document.querySelector(s)?.hasAttribute("data-on-screen"), questionSelector);
  }
  await rest("POST", `/api/v1/questions/${questionId}/assign`, moderator.token, { expert: expert.account.id });
  await rest("POST", `/api/v1/questions/${questionId}/answers`, expert.token, { body: "At 20:00, every day.", private: false });
  for (const [i, page] of viewers.entries()) {
    await waitFor(page, `the answer on viewer ${i}`, (s) =>
      document.querySelector(`${s} [data-testid="answer"]`)?.textContent.includes("At 20:00"), questionSelector);
  }

  // Chat: viewer 0 writes, viewer 1 sees it; the moderator deletes it and it goes from both.
  await asker.fill('[data-testid="chat-text"]', "Is the map updated?");
  await asker.click('[data-testid="chat-send"]');
  for (const [i, page] of viewers.entries()) {
    await waitFor(page, `the chat message on viewer ${i}`, () =>
      [...document.querySelectorAll('[data-testid="chat-messages"] li')].some((li) => li.textContent.includes("Is the map updated?")));
  }
  const messageId = Number(await voter.evaluate(() =>
    [...document.querySelectorAll('[data-testid="chat-messages"] li')].find((li) => li.textContent.includes("Is the map updated?")).dataset.testid.slice("chat-".length)));
  await rest("POST", `/api/v1/meetings/${meeting.id}/chat/delete`, moderator.token, { message: messageId });
  for (const [i, page] of viewers.entries()) {
    await waitFor(page, `the deleted message gone from viewer ${i}`, (id) => document.querySelector(`[data-testid="chat-${id}"]`) === null, messageId);
  }

  // Slow mode: the second message within 30 s is refused on the page, with the wait.
  await rest("POST", `/api/v1/meetings/${meeting.id}/chat/settings`, moderator.token, { slow_mode_seconds: 30 });
  await waitFor(voter, "the slow-mode line", () => /30 s/.test(document.querySelector('[data-testid="chat-settings"]').textContent));
  await voter.fill('[data-testid="chat-text"]', "first");
  await voter.click('[data-testid="chat-send"]');
  await waitFor(asker, "viewer 1's first message on viewer 0", () =>
    [...document.querySelectorAll('[data-testid="chat-messages"] .chat-text')].some((s) => s.textContent === "first"));
  await voter.fill('[data-testid="chat-text"]', "second");
  await voter.click('[data-testid="chat-send"]');
  await waitFor(voter, "the slow-mode refusal", () => document.querySelector('[data-testid="chat-status"]').dataset.refusal === "refusal.slow");
  const refusal = await text(voter, "chat-status");
  check(/wait (2\d|30) s/.test(refusal), `the refusal says how long to wait: ${refusal}`);
  check((await voter.inputValue('[data-testid="chat-text"]')) === "second", "the refused text stays in the box");

  // A directive to the TV's unit: a banner on the TV.
  await rest("POST", "/api/v1/directives", moderator.token, {
    title: "Check the pumps tonight",
    body: "All stations.",
    priority: "urgent",
    target: { units: [setup.screen.unit] },
    ack_required: false,
  });
  await waitFor(tv, "the directive banner on the TV", () => {
    const banner = document.querySelector('[data-testid="directive-banner"]');
    return !banner.hidden && banner.textContent.includes("Check the pumps tonight") && banner.dataset.priority === "urgent";
  });

  // A TV opened without `meeting=` finds the unit's live meeting by itself.
  const finder = await openPage("tv-finder", `${httpUrl}/tv?credential=${encodeURIComponent(setup.screen.credential)}`);
  await waitFor(finder, "the TV without meeting= to open the live meeting", (id) => globalThis.rootcastTv?.room?.meeting?.id === id, meeting.id);
  await waitFor(finder, "its question on screen", () => document.querySelector('[data-testid="screen-body"]').textContent.includes("night shift"));
  await finder.close();
  delete pages["tv-finder"];

  // zh-CN on a viewer page and the TV.
  await voter.click('[data-testid="language"]');
  check((await voter.textContent("#qa-title")) === "提问", "viewer page in zh-CN");
  await tv.click('[data-testid="language"]');
  check((await tv.textContent(".tv-label")) === "提问", "TV in zh-CN");
  for (const [name, page] of Object.entries(pages)) await page.screenshot({ path: path.join(shotDir, `meeting-${name}.png`) });

  // ---- the server restarts during the meeting ----
  const before = await tv.evaluate(() => ({ reloads: globalThis.rootcastTv.room.reloads, sessions: globalThis.rootcastTv.player.sessions }));
  restarting = true;
  // A meeting-room TV is the page in front; a page in the background has its timers
  // throttled by Chromium, which would slow its own checks down.
  await tv.bringToFront();
  await request("restart", "", "restarted");
  // The clock starts when the restarted server listens.
  const backAt = Date.now();
  // The studio starts publishing again (the publish page does not reconnect by itself).
  await publish.click('[data-testid="stop"]');
  await waitFor(publish, "the publisher to stop", () => document.querySelector('[data-testid="state"]').dataset.state === "idle");
  await publish.click('[data-testid="start"]');
  await waitFor(publish, "the publisher to go live again", () => document.querySelector('[data-testid="state"]').dataset.state === "live");
  // Something that changed while the TV was away: it must come from the reload.
  await rest("POST", `/api/v1/meetings/${meeting.id}/announcements`, moderator.token, { body: "We are back", level: "info" });

  const recovered = (what, predicate, arg) => recoveredSince(backAt, what, predicate, arg);
  const recoveredSince = async (since, what, predicate, arg) => {
    const left = RECOVERY_MS - (Date.now() - since);
    check(left > 0, `the TV is back within ${RECOVERY_MS} ms (still waiting for ${what})`);
    try {
      await tv.waitForFunction(predicate, arg, { timeout: left, polling: 100 });
    } catch {
      const state = await tv.evaluate(() => {
        const { room, player } = globalThis.rootcastTv;
        return {
          phase: room.phase,
          connects: room.connects,
          reloads: room.reloads,
          error: room.error?.message ?? null,
          video: player.phase,
          notice: player.notice,
          sessions: player.sessions,
          frames: player.framesDecoded,
          audioOnly: player.audioOnly,
          lost: player.lost,
          lastLoss: player.lastLoss,
          announcement: document.querySelector('[data-testid="announcement-text"]').textContent,
          pc: player.pc?.connectionState ?? null,
          visibility: document.visibilityState,
          checkedAgo: Math.round(performance.now() - player.checkedAt),
        };
      });
      throw new Error(`the TV was not back within ${RECOVERY_MS} ms: no ${what} (${JSON.stringify(state)})`);
    }
  };
  await recovered("live connection to the hub", () => globalThis.rootcastTv.room.phase === "live");
  await recovered("state reload", (n) => globalThis.rootcastTv.room.reloads > n, before.reloads);
  await recovered("new announcement", () => document.querySelector('[data-testid="announcement-text"]').textContent === "We are back");
  await recovered("question on screen", () => document.querySelector('[data-testid="screen-body"]').textContent.includes("night shift"));
  // The old WHEP session died with the relay: frames must come on a new one.
  // The old WHEP session died with the relay: frames must come on a new one (the player
  // counts frames of its current session once a second).
  await recovered(
    "decoded video on a new WHEP session",
    (sessions) => {
      const player = globalThis.rootcastTv.player;
      return player.phase === "live" && player.sessions > sessions && player.framesDecoded > 0;
    },
    before.sessions,
  );
  console.log(`TV back to live video and state ${Date.now() - backAt} ms after the restarted server was up`);
  restarting = false;
  await waitForFrames(tv, "TV after the restart");
  await tv.screenshot({ path: path.join(shotDir, "meeting-tv-after-restart.png") });

  // ---- the TV alone loses its network for OUTAGE_MS ----
  // Every packet of its hub connections (its forwarder's port) and of its WebRTC session
  // (the relay's port to any of its candidates' ports) is dropped, in both directions.
  await waitForTvPair(tv);
  const cut = await tv.evaluate(async () => {
    const stats = [...(await globalThis.rootcastTv.player.pc.getStats()).values()];
    const pair = stats.find((e) => e.type === "candidate-pair" && e.nominated && e.state === "succeeded");
    return {
      relay_port: stats.find((e) => e.id === pair.remoteCandidateId).port,
      tv_ports: [...new Set(stats.filter((e) => e.type === "local-candidate").map((e) => e.port))],
    };
  });
  // Frames decoded so far by the session the TV had when the network went.
  await tv.evaluate(() => {
    globalThis.outagePc = globalThis.rootcastTv.player.pc;
  });
  // ("closed" once the player gave that session up: a closed connection has no stats.)
  const oldSessionFrames = () =>
    tv.evaluate(async () => {
      if (globalThis.outagePc.connectionState === "closed") return "closed";
      let frames = 0;
      for (const entry of (await globalThis.outagePc.getStats()).values()) {
        if (entry.type === "inbound-rtp" && entry.kind === "video") frames += entry.framesDecoded ?? 0;
      }
      return frames;
    });
  outage = true;
  await request("outage", JSON.stringify(cut), "outage-on");
  const cutAt = Date.now();
  // What changes while the TV is away: it must be on the screen once it is back.
  await rest("POST", `/api/v1/meetings/${meeting.id}/announcements`, moderator.token, { body: "Pumps checked", level: "urgent" });
  await rest("POST", `/api/v1/meetings/${meeting.id}/screen`, moderator.token, { question: null });
  await sleep(Math.max(0, cutAt + OUTAGE_MS - 2_500 - Date.now()));
  const framesLate = await oldSessionFrames();
  await sleep(Math.max(0, cutAt + OUTAGE_MS - Date.now()));
  const framesAtEnd = await oldSessionFrames();
  const cutOff = {
    frames: typeof framesAtEnd === "number" && typeof framesLate === "number" ? framesAtEnd - framesLate : framesAtEnd,
    announcement: await text(tv, "announcement-text"),
    player: await tv.evaluate(() => globalThis.rootcastTv.player.phase),
  };
  await request("outage-off", "", "outage-lifted");
  const restoredAt = Date.now();
  console.log(`during the outage: ${JSON.stringify(cutOff)} (${restoredAt - cutAt} ms)`);
  // The outage was real: no frame on the old session at its end, the announcement not there.
  check(cutOff.frames === 0 || cutOff.frames === "closed", `the TV's video stopped while it was cut off (${cutOff.frames} frames in the last 2.5 s)`);
  check(cutOff.announcement !== "Pumps checked", "the announcement did not reach the TV while it was cut off");
  const since = (what, predicate, arg) => recoveredSince(restoredAt, what, predicate, arg);
  await since("the announcement made during the outage", () => {
    const banner = document.querySelector('[data-testid="announcement"]');
    return !banner.hidden && banner.dataset.level === "urgent" && document.querySelector('[data-testid="announcement-text"]').textContent === "Pumps checked";
  });
  await since("the question off screen", () => document.querySelector('[data-testid="screen"]').hidden);
  await since("video decoding again", () => {
    const player = globalThis.rootcastTv.player;
    if (player.phase !== "live" || !player.pc) return false;
    const mark = globalThis.outageMark;
    if (!mark || mark.pc !== player.pc) {
      globalThis.outageMark = { pc: player.pc, frames: player.framesDecoded };
      return false;
    }
    return player.framesDecoded > mark.frames;
  });
  await since("a live hub connection", () => globalThis.rootcastTv.room.phase === "live");
  console.log(`TV back after its network outage: video and state ${Date.now() - restoredAt} ms after the network came back`);
  outage = false;
  await waitForFrames(tv, "TV after the outage");

  // A weak link: 40% of the RTP/RTCP datagrams from the relay to the TV's session are
  // dropped; the TV asks the relay for audio only, and stays there once the loss is lifted
  // (it asks for video again only after 30 s of a good link).
  await waitForTvPair(tv);
  const ports = await tv.evaluate(async () => {
    const stats = [...(await globalThis.rootcastTv.player.pc.getStats()).values()];
    const pair = stats.find((e) => e.type === "candidate-pair" && e.nominated && e.state === "succeeded");
    const byId = (id) => stats.find((e) => e.id === id);
    return { relay_port: byId(pair.remoteCandidateId).port, viewer_port: byId(pair.localCandidateId).port };
  });
  const media = () =>
    tv.evaluate(async () => {
      const counts = { frames: 0, audio: 0 };
      for (const entry of (await globalThis.rootcastTv.player.pc.getStats()).values()) {
        if (entry.type !== "inbound-rtp") continue;
        if (entry.kind === "video") counts.frames += entry.framesDecoded ?? 0;
        else counts.audio += entry.packetsReceived ?? 0;
      }
      return counts;
    });
  const baseline = await media();
  await tv.waitForTimeout(3_000);
  const baselineFrames = (await media()).frames - baseline.frames;
  await request("loss", JSON.stringify({ ...ports, percent: 40 }), "loss-on");
  await waitFor(tv, "the TV to fall back to audio only", () =>
    globalThis.rootcastTv.player.audioOnly && document.querySelector('[data-testid="video-status"]').hasAttribute("data-audio-only"));
  const statusText = await text(tv, "video-status");
  check(statusText === "仅音频（网络较弱）", `the TV says it is audio only (${statusText})`);
  await request("loss-off", "", "loss-lifted");
  // Frames still waiting for a retransmission may be decoded just after the loss ends.
  await tv.waitForTimeout(2_000);
  const first = await media();
  await tv.waitForTimeout(3_000);
  const second = await media();
  console.log(`before the loss: ${baselineFrames} frames in 3 s`);
  console.log(`audio only after the loss: frames ${first.frames} → ${second.frames}, audio packets ${first.audio} → ${second.audio} in 3 s`);
  // A few may still trickle in (up to 4 in 3 s seen; see the report): at most a fifth of
  // the rate before.
  check(
    second.frames - first.frames <= baselineFrames / 5,
    `(almost) no video frames while audio only (${second.frames - first.frames} in 3 s; ${baselineFrames} before the loss)`,
  );
  const layer = await tv.evaluate(async () => {
    const { player } = globalThis.rootcastTv;
    const response = await fetch(player.layerUrl, { headers: { Authorization: `Bearer ${globalThis.rootcastTv.room.media.token}` } });
    return response.json();
  });
  check(layer.preference === "audio", `the relay has the TV's session on audio only: ${JSON.stringify(layer)}`);
  check(second.audio - first.audio >= 50, "audio keeps arriving while audio only");
  check(await tv.evaluate(() => globalThis.rootcastTv.player.phase === "live"), "the TV's player is still live");

  if (problems.length > 0) throw new Error(`the pages reported problems:\n  ${problems.join("\n  ")}`);
} catch (error) {
  for (const [name, page] of Object.entries(pages)) {
    const shot = path.join(shotDir, `meeting-${name}-failure.png`);
    await page.screenshot({ path: shot }).then(() => console.error(`screenshot of the failure: ${shot}`), () => {});
    const body = await page.evaluate(() => document.body?.innerText).catch(() => "(page not readable)");
    console.error(`${name} page text at failure:\n${body}`);
  }
  if (problems.length > 0) console.error(`problems the pages reported:\n  ${problems.join("\n  ")}`);
  await context.close().catch(() => {});
  cleanUp();
  fail(`meetings: ${error.stack ?? error}`);
}
await context.close();
cleanUp();
clearTimeout(watchdog);
console.log("PASS: meetings");
