// The moderator's meeting console, the expert desk and the attendance report in headless
// Chromium, driven by tests/web_meeting_console.rs inside a private network namespace
// (WebRTC must not reach the machine's real addresses).
//
// Everything the moderator does, they do on the console page (/meeting-console): schedule
// the meeting (list view: the county ticked on the org-tree picker, whose live count must
// match the county's units, and the expert ticked by name; the scheduled meeting must
// target exactly the county's units and name that expert), open it, take it live (then the console's publish link opens
// /publish with the stream and token, which sends the fake camera); the meeting-room TV
// (/tv) and two viewer pages (/meeting), opened before the meeting went live, start
// playing (the viewers then listen on audio only, to spare the CPU). Then, each step checked live on every page concerned: the attendance panel
// counts the watching units, the headcount the TV's unit reports and the unit not
// connected (reminded with one click); an announcement; viewer 0 asks anonymously (the
// console sees who asked), the console approves it, viewer 1 votes, the console puts it
// on screen and assigns it to the expert; the expert desk (/expert) shows it and answers
// publicly and then privately (only the asker and the console see the private one); chat:
// the console deletes a message, approves a held one (word filter in hold mode), times a
// member out (the viewer page says so when they write) and lifts it. The console ends the
// meeting; the report page (/meeting-report) and its CSV download match what happened.
//
// Environment as for browser.mjs, plus ROOTCAST_TEST_MEETING_CONSOLE (JSON from the Rust
// test: moderator, expert, expert_name, viewers, county {id, units: every unit of its
// subtree}, screen {unit, credential}, absent).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BACKGROUND_TAB_ARGS, check, fail, launchBrowser, MEDIA_ARGS, restClient, serverFromArgs, STEP_TIMEOUT_MS, waitFor } from "./browser.mjs";

/** Under a minute and a half on an idle 2-core machine; the slack is for a busy one. */
const OVERALL_TIMEOUT_MS = 170_000;
const here = path.dirname(fileURLToPath(import.meta.url));
const { httpUrl } = serverFromArgs();
const { rest } = restClient(httpUrl);
const setup = JSON.parse(process.env.ROOTCAST_TEST_MEETING_CONSOLE ?? "null");
if (!setup) fail("ROOTCAST_TEST_MEETING_CONSOLE is not set");

const startedAt = Date.now();
const step = (what) => console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${what}`);

const { context, shotDir, cleanUp, watchdog } = await launchBrowser("meeting_console", OVERALL_TIMEOUT_MS, {
  args: [...MEDIA_ARGS, ...BACKGROUND_TAB_ARGS],
  viewport: { width: 1280, height: 900 },
});

const problems = [];
const pages = {};
function watch(name, page) {
  pages[name] = page;
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error" && message.type() !== "warning") return;
    const text = message.text();
    // The refusal the test provokes (a timed-out member's message, 403) and WHEP 404s
    // before the publisher is up are expected; the browser logs them.
    if (/status of (403|404)/.test(text)) return;
    problems.push(`${name}: console ${message.type()}: ${text}`);
  });
}
async function openPage(name, url) {
  const page = await context.newPage();
  watch(name, page);
  await page.goto(url);
  return page;
}

async function logIn(page, { username, password }) {
  await page.fill('[data-testid="username"]', username);
  await page.fill('[data-testid="password"]', password);
  await page.click('[data-testid="login"]');
}

/** Longest wait for a page to be decoding video: three pages set up WHEP sessions at once,
 * which takes a while on a busy 2-core machine. */
const FRAMES_MS = 45_000;

/** Waits until the page's current WHEP session decodes frames and keeps doing so: two
 * samples of `getStats()` half a second apart on the same peer connection, the second
 * with more frames (a player that restarts its session meanwhile starts the count again). */
async function waitForFrames(page, what) {
  const sample = () =>
    page.evaluate(async () => {
      const pc = (globalThis.rootcastTv ?? globalThis.rootcast)?.player?.pc;
      if (!pc) return null;
      pc.rootcastTestId ??= Math.random();
      let frames = 0;
      for (const entry of (await pc.getStats()).values()) {
        if (entry.type === "inbound-rtp" && entry.kind === "video") frames += entry.framesDecoded ?? 0;
      }
      return { pc: pc.rootcastTestId, frames };
    });
  const deadline = Date.now() + FRAMES_MS;
  let last = null;
  for (;;) {
    const now = await sample();
    if (last && now && now.pc === last.pc && last.frames > 0 && now.frames > last.frames) {
      console.log(`${what}: ${last.frames} → ${now.frames} frames decoded in 0.5 s`);
      return;
    }
    check(Date.now() < deadline, `${what} keeps decoding frames within ${FRAMES_MS} ms (last sample ${JSON.stringify(now)})`);
    last = now;
    await page.waitForTimeout(500);
  }
}

/** The fields of one CSV line (RFC 4180 quoting; no line breaks inside fields here). */
function csvFields(line) {
  const fields = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (quoted && c === '"' && line[i + 1] === '"') {
      field += '"';
      i += 1;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === "," && !quoted) {
      fields.push(field);
      field = "";
    } else {
      field += c;
    }
  }
  fields.push(field);
  return fields;
}

/** Runs the waits `[page, what, predicate, arg]` side by side (each bounded by waitFor). */
const waitAll = (waits) => Promise.all(waits.map(([page, what, predicate, arg]) => waitFor(page, what, predicate, arg)));

const q = (testId) => `[data-testid="${testId}"]`;
const text = (page, selector) => page.textContent(selector);
const chatTexts = (page, listId) =>
  page.evaluate((id) => [...document.querySelectorAll(`[data-testid="${id}"] .chat-text`)].map((s) => s.textContent), listId);

try {
  const expertLogin = await rest("POST", "/api/v1/login", "", setup.expert);
  const viewerLogins = await Promise.all(setup.viewers.map((v) => rest("POST", "/api/v1/login", "", v)));
  const [askerId, voterId] = viewerLogins.map((l) => l.account.id);
  const [askerUnit, voterUnit] = viewerLogins.map((l) => l.account.unit);
  const screenUnit = setup.screen.unit;

  // ---- the console: schedule from the list view, then open the meeting ----
  const moderatorToken = (await rest("POST", "/api/v1/login", "", setup.moderator)).token;
  const county = setup.county;
  const audience = county.units.length;
  const consolePage = await openPage("console", `${httpUrl}/meeting-console`);
  await logIn(consolePage, setup.moderator);
  await waitFor(consolePage, "the console's list view", () => !document.querySelector('[data-testid="list-view"]').hidden);
  await consolePage.fill(q("schedule-title"), "Flood season briefing");
  await consolePage.fill(q("schedule-starts"), "2030-01-01T09:00");
  await consolePage.fill(q("schedule-agenda"), "1. Water levels");
  // The audience: the county ticked on the org tree (under the moderator's city, open).
  await consolePage.waitForSelector(q(`pick-${county.id}`));
  check(await consolePage.isDisabled(q("schedule")), "Schedule is disabled while no unit is chosen");
  await consolePage.check(q(`pick-${county.id}`));
  await waitFor(consolePage, `the live count of the county's ${audience} units`, (n) =>
    document.querySelector('[data-testid="target-count"]').dataset.value === String(n), audience);
  const countText = await text(consolePage, q("target-count"));
  check(countText === `The meeting will reach ${audience} units`, `the count says how many units the meeting reaches: ${countText}`);
  await consolePage.click(q("language"));
  const countZh = await text(consolePage, q("target-count"));
  check(countZh === `会议将覆盖 ${audience} 个单位`, `the count in zh-CN: ${countZh}`);
  await consolePage.click(q("language"));
  check(!(await consolePage.isDisabled(q("schedule"))), "Schedule is enabled once the county is ticked");
  // The expert, chosen by name.
  await consolePage.getByLabel(setup.expert_name, { exact: true }).check();
  await consolePage.check(q("schedule-preapproval"));
  await consolePage.click(q("schedule"));
  await waitFor(consolePage, "the scheduled meeting in the list", () =>
    [...document.querySelectorAll('[data-testid="meeting-list"] tr')].some((tr) => tr.textContent.includes("Flood season briefing")));
  const meetingId = await consolePage.evaluate(() =>
    [...document.querySelectorAll('[data-testid="meeting-list"] tr')].find((tr) => tr.textContent.includes("Flood season briefing")).dataset.testid.slice("meeting-".length));
  const { meeting: scheduled } = await rest("GET", `/api/v1/meetings/${meetingId}`, moderatorToken);
  const sorted = (ids) => JSON.stringify([...ids].sort());
  check(sorted(scheduled.units) === sorted(county.units), `the meeting targets exactly the county's units: ${JSON.stringify(scheduled.units)}`);
  check(JSON.stringify(scheduled.target.subtrees) === JSON.stringify([county.id]), `the meeting's target is the county: ${JSON.stringify(scheduled.target)}`);
  check(JSON.stringify(scheduled.experts) === JSON.stringify([expertLogin.account.id]), `the expert chosen by name: ${JSON.stringify(scheduled.experts)}`);
  check((await consolePage.getAttribute(q("target-count"), "data-value")) === "0" && (await consolePage.isDisabled(q("schedule"))), "the form is cleared after scheduling");
  await consolePage.click(`${q(`meeting-${meetingId}`)} ${q("open-meeting")}`);
  await waitFor(consolePage, "the console to open the meeting", () => globalThis.rootcastConsole?.room?.phase === "live" && globalThis.rootcastConsole.room.reloads > 0);
  check((await consolePage.getAttribute(q("meeting-status"), "data-status")) === "scheduled", "the console shows the meeting scheduled");
  step(`meeting ${meetingId} scheduled and opened in the console`);

  // ---- the TV, two viewers and the expert desk open before the meeting goes live ----
  const [tv, asker, voter, expert] = await Promise.all([
    (async () => {
      const page = await openPage("tv", `${httpUrl}/tv?credential=${encodeURIComponent(setup.screen.credential)}&meeting=${meetingId}`);
      await waitFor(page, "the TV to join", () => globalThis.rootcastTv?.room?.meeting != null);
      return page;
    })(),
    ...setup.viewers.map(async (who, i) => {
      const page = await openPage(`viewer${i}`, `${httpUrl}/meeting?id=${meetingId}`);
      await logIn(page, who);
      await waitFor(page, `viewer ${i} to join`, () => globalThis.rootcast?.room?.phase === "live");
      return page;
    }),
    (async () => {
      const page = await openPage("expert", `${httpUrl}/expert`);
      await logIn(page, setup.expert);
      await waitFor(page, "the expert desk to follow the meeting", (id) => globalThis.rootcastExpert?.rooms?.get(id)?.phase === "live", meetingId);
      return page;
    })(),
  ]);
  const viewers = [asker, voter];

  // ---- go live from the console; publish through the console's link ----
  await consolePage.click(q("go-live"));
  await waitFor(consolePage, "the console live with a publish link", () =>
    document.querySelector('[data-testid="meeting-status"]').dataset.status === "live" && !document.querySelector('[data-testid="media"]').hidden);
  const publishHref = await consolePage.getAttribute(q("publish-link"), "href");
  check(publishHref.startsWith(`/publish?stream=meeting-${meetingId}&token=`), `the publish link names the stream and a token: ${publishHref}`);
  const publish = await openPage("publish", `${httpUrl}${publishHref}`);
  await waitFor(publish, "the publish page to load", () => globalThis.rootcastPublish !== undefined);
  await publish.click(q("start"));
  await waitFor(publish, "the publisher to go live", () => document.querySelector('[data-testid="state"]').dataset.state === "live");
  const watchers = [tv, ...viewers];
  const names = ["TV", "viewer 0", "viewer 1"];
  await waitAll(viewers.map((page, i) => [page, `viewer ${i} to show the meeting live`, () => document.querySelector('[data-testid="meeting-status"]').dataset.status === "live"]));
  await Promise.all(watchers.map((page, i) => waitForFrames(page, names[i])));
  step("live: the TV and both viewers decode the console's stream");
  // The viewers go on listening with the page's "Audio only" switch: three 720p decoders
  // beside the encoder would starve the 2-core machine for the rest of the test. The TV
  // keeps the video (checked again before the meeting ends).
  await Promise.all(viewers.map((page) => page.check(q("audio-only"))));
  await waitAll(viewers.map((page, i) => [page, `viewer ${i} on audio only`, () => globalThis.rootcast.player.audioOnly]));

  // ---- attendance: three units watching, one not; a headcount; a reminder ----
  const attendanceRow = (unit) => `[data-testid="att-${unit}"]`;
  await waitFor(consolePage, "the three watching units connected in the attendance panel", (rows) => rows.every((s) => Number(document.querySelector(s)?.dataset.connections) >= 1), [askerUnit, voterUnit, screenUnit].map(attendanceRow));
  check((await consolePage.getAttribute(attendanceRow(setup.absent), "data-connections")) === "0", "the absent unit has no connection");
  check((await consolePage.$(q(`missing-${setup.absent}`))) !== null, "the absent unit is listed as not connected");
  check((await consolePage.$(q(`missing-${askerUnit}`))) === null, "a watching unit is not listed as not connected");
  const screenLogin = await rest("POST", "/api/v1/login/credential", "", { credential: setup.screen.credential });
  await rest("POST", `/api/v1/meetings/${meetingId}/headcount`, screenLogin.token, { headcount: 12 });
  await waitFor(consolePage, "the TV unit's headcount in the console", (s) => document.querySelector(s)?.dataset.headcount === "12", attendanceRow(screenUnit));
  await consolePage.click(q("remind"));
  await waitFor(consolePage, `the reminder to the ${audience - 3} units not connected`, (n) => document.querySelector('[data-testid="remind-status"]').dataset.count === String(n), audience - 3);
  const totals = await consolePage.getAttribute(q("attendance-totals"), "data-connected-units");
  check(totals === "3", `three units connected in the totals (${totals})`);
  step(`attendance panel: 3 of ${audience} units, headcount 12, the others reminded`);

  // ---- an announcement from the console ----
  await consolePage.fill(q("announce-body"), "Break at 10:30");
  await consolePage.selectOption(q("announce-level"), "warning");
  await consolePage.click(q("announce"));
  await waitAll(
    watchers.map((page, i) => [
      page,
      `the announcement on ${names[i]}`,
      () => {
        const banner = document.querySelector('[data-testid="announcement"]');
        return !banner.hidden && banner.textContent.includes("Break at 10:30") && banner.dataset.level === "warning";
      },
    ]),
  );

  // ---- Q&A: ask (anonymous), approve in the console, vote, screen, assign ----
  await asker.fill(q("ask-body"), "When does the night shift start?");
  await asker.check(q("ask-anonymous"));
  await asker.click(q("ask"));
  await waitFor(consolePage, "the question waiting in the console", () => document.querySelector('[data-testid="pending-questions"] li') !== null);
  const questionId = await consolePage.evaluate(() => document.querySelector('[data-testid="pending-questions"] li').dataset.testid.slice("cq-".length));
  const cq = q(`cq-${questionId}`);
  const vq = q(`question-${questionId}`);
  const shownTo = await text(consolePage, `${cq} ${q("question-meta")}`);
  check(shownTo.includes(setup.viewers[0].username) && shownTo.includes("anonymous to viewers"), `the console sees who asked: ${shownTo}`);
  check((await voter.$(vq)) === null, "a pending question is not shown to other viewers");
  await consolePage.click(`${cq} ${q("approve")}`);
  await waitFor(voter, "the approved question on viewer 1", (s) => document.querySelector(s) !== null, vq);
  await waitFor(asker, "the asker's question open", (s) => document.querySelector(s)?.dataset.status === "open", vq);
  await waitFor(consolePage, "the question open in the console's list", (s) =>
    document.querySelector(`[data-testid="console-questions"] ${s}`)?.dataset.status === "open" && document.querySelector('[data-testid="pending-questions"] li') === null, cq);
  const shownAsker = await voter.textContent(`${vq} .muted`);
  check(shownAsker.startsWith("Anonymous") && !shownAsker.includes(setup.viewers[0].username), `viewer 1 does not see the asker (${shownAsker})`);

  await voter.click(`${vq} ${q("vote")}`);
  await waitFor(consolePage, "the vote in the console", (s) => document.querySelector(`${s} [data-testid="votes"]`)?.textContent.includes("1"), cq);
  await waitFor(asker, "the vote on viewer 0", (s) => document.querySelector(`${s} [data-testid="vote"]`)?.textContent.includes("1"), vq);

  await consolePage.click(`${cq} ${q("screen")}`);
  await waitFor(tv, "the question on the TV's screen", () => {
    const card = document.querySelector('[data-testid="screen"]');
    return !card.hidden && card.textContent.includes("night shift");
  });
  await waitAll(viewers.map((page, i) => [page, `the question highlighted on viewer ${i}`, (s) => document.querySelector(s)?.hasAttribute("data-on-screen"), vq]));
  await waitFor(consolePage, "the question on screen in the console", (s) => document.querySelector(s)?.hasAttribute("data-on-screen") && !document.querySelector('[data-testid="screen"]').hidden, cq);

  await consolePage.selectOption(`${cq} ${q("assign-select")}`, expertLogin.account.id);
  await consolePage.click(`${cq} ${q("assign")}`);
  const eq = q(`eq-${questionId}`);
  await waitFor(expert, "the assigned question on the expert desk", (s) => document.querySelector(s) !== null, eq);
  // The console names the expert (display name), not the account id.
  const expertName = setup.expert_name;
  await waitFor(consolePage, "the assignment in the console, by the expert's name", ([s, name]) => document.querySelector(`${s} [data-testid="question-meta"]`)?.textContent.includes(`assigned to ${name}`), [cq, expertName]);
  step("question asked, approved, voted, on screen and assigned from the console");

  // ---- the expert answers: publicly, then privately ----
  await expert.fill(`${eq} ${q("answer-body")}`, "At 20:00, every day.");
  await expert.click(`${eq} ${q("answer-send")}`);
  await waitAll(
    [["viewer 0", asker, vq], ["viewer 1", voter, vq], ["the console", consolePage, cq], ["the expert desk", expert, eq]].map(([name, page, selector]) => [
      page,
      `the public answer on ${name}`,
      ([s, body]) => [...document.querySelectorAll(`${s} [data-testid="answer"]`)].some((a) => a.textContent.includes(body)),
      [selector, "At 20:00"],
    ]),
  );
  await expert.fill(`${eq} ${q("answer-body")}`, "Call me on extension 42.");
  await expert.check(`${eq} ${q("answer-private")}`);
  await expert.click(`${eq} ${q("answer-send")}`);
  await waitAll(
    [["viewer 0 (the asker)", asker, vq], ["the console", consolePage, cq], ["the expert desk", expert, eq]].map(([name, page, selector]) => [
      page,
      `the private answer on ${name}`,
      ([s, body]) => [...document.querySelectorAll(`${s} [data-testid="answer"][data-private]`)].some((a) => a.textContent.includes(body)),
      [selector, "extension 42"],
    ]),
  );
  const voterAnswers = await voter.evaluate((s) => [...document.querySelectorAll(`${s} [data-testid="answer"]`)].map((a) => a.textContent), vq);
  check(voterAnswers.length === 1 && !voterAnswers.join().includes("extension 42"), `viewer 1 sees only the public answer: ${JSON.stringify(voterAnswers)}`);
  step("expert answered publicly and privately");

  // ---- chat: the console deletes a message ----
  await asker.fill(q("chat-text"), "Is the map updated?");
  await asker.click(q("chat-send"));
  const hasMessage = ([list, body]) => [...document.querySelectorAll(`[data-testid="${list}"] .chat-text`)].some((s) => s.textContent === body);
  await waitAll([
    [voter, "the chat message on viewer 1", hasMessage, ["chat-messages", "Is the map updated?"]],
    [consolePage, "the chat message on the console", hasMessage, ["console-chat", "Is the map updated?"]],
  ]);
  const messageId = await consolePage.evaluate(() =>
    [...document.querySelectorAll('[data-testid="console-chat"] li')].find((li) => li.textContent.includes("Is the map updated?")).dataset.testid.slice("cchat-".length));
  await consolePage.click(`${q(`cchat-${messageId}`)} ${q("chat-delete")}`);
  const gone = (s) => document.querySelector(s) === null;
  await waitAll([
    [asker, "the deleted message gone from viewer 0", gone, q(`chat-${messageId}`)],
    [voter, "the deleted message gone from viewer 1", gone, q(`chat-${messageId}`)],
    [consolePage, "the deleted message gone from the console", gone, q(`cchat-${messageId}`)],
  ]);

  step("chat: a message deleted from the console");

  // ---- a held message, approved in the console ----
  await voter.fill(q("chat-text"), "spam alert: pumps on sale");
  await voter.click(q("chat-send"));
  await waitFor(voter, "viewer 1 told the message is held", () => document.querySelector('[data-testid="chat-status"]').dataset.refusal === "held");
  await waitFor(consolePage, "the held message in the console", () =>
    [...document.querySelectorAll('[data-testid="held-messages"] li')].some((li) => li.textContent.includes("pumps on sale")));
  check(!(await chatTexts(asker, "chat-messages")).includes("spam alert: pumps on sale"), "a held message does not reach the other viewer");
  const heldId = await consolePage.evaluate(() =>
    [...document.querySelectorAll('[data-testid="held-messages"] li')].find((li) => li.textContent.includes("pumps on sale")).dataset.testid.slice("held-".length));
  await consolePage.click(`${q(`held-${heldId}`)} ${q("held-approve")}`);
  await waitAll([
    [asker, "the approved message on viewer 0", hasMessage, ["chat-messages", "spam alert: pumps on sale"]],
    [voter, "the approved message on viewer 1", hasMessage, ["chat-messages", "spam alert: pumps on sale"]],
    [consolePage, "the approved message on the console", hasMessage, ["console-chat", "spam alert: pumps on sale"]],
  ]);
  await waitFor(consolePage, "the held list empty", () => document.querySelector('[data-testid="held-messages"] li') === null);

  step("chat: a held message approved from the console");

  // ---- a timeout from the console, refused on the viewer page, then lifted ----
  await consolePage.fill(q("timeout-seconds"), "120");
  await consolePage.click(`${q(`cchat-${heldId}`)} ${q("chat-timeout")}`);
  await waitFor(consolePage, "the timeout in the console's list", (s) => document.querySelector(s)?.dataset.kind === "timeout", q(`sanction-${voterId}`));
  await voter.fill(q("chat-text"), "hello?");
  await voter.click(q("chat-send"));
  await waitFor(voter, "the timeout refusal on viewer 1", () => document.querySelector('[data-testid="chat-status"]').dataset.refusal === "refusal.timeout");
  const refusal = await text(voter, q("chat-status"));
  check(/timed out: (11\d|120) s more/.test(refusal), `the refusal says how long the timeout lasts: ${refusal}`);
  check(!(await chatTexts(asker, "chat-messages")).includes("hello?"), "the refused message reached nobody");
  await consolePage.click(`${q(`sanction-${voterId}`)} ${q("lift")}`);
  await waitFor(consolePage, "the timeout lifted", (s) => document.querySelector(s) === null, q(`sanction-${voterId}`));
  await voter.click(q("chat-send"));
  await waitFor(asker, "viewer 1's message after the lift", () =>
    [...document.querySelectorAll('[data-testid="chat-messages"] .chat-text')].some((s) => s.textContent === "hello?"));
  step("chat: a member timed out and the timeout lifted from the console");

  // ---- zh-CN on the console ----
  await consolePage.click(q("language"));
  check((await consolePage.textContent("#qa-title")) === "提问", "console in zh-CN");
  check((await consolePage.textContent("#attendance-title")) === "参会情况", "console attendance in zh-CN");
  await consolePage.click(q("language"));
  await Promise.all(Object.entries(pages).map(([name, page]) => page.screenshot({ path: path.join(shotDir, `meeting-console-${name}.png`) })));

  await waitForFrames(tv, "the TV, still");

  // ---- the console ends the meeting ----
  await consolePage.click(q("end"));
  check((await consolePage.getAttribute(q("meeting-status"), "data-status")) === "live", "one click does not end the meeting");
  await consolePage.click(q("end-confirm"));
  const ended = () => document.querySelector('[data-testid="meeting-status"]').dataset.status === "ended";
  await waitAll([
    [asker, "viewer 0 to show the meeting ended", ended],
    [voter, "viewer 1 to show the meeting ended", ended],
    [consolePage, "the console to show the meeting ended", ended],
  ]);
  step("meeting ended from the console");

  // ---- the report page ----
  const stored = await rest("GET", `/api/v1/meetings/${meetingId}/report`, moderatorToken);
  check(stored.status === "ended", `the stored report is of the ended meeting (${stored.status})`);
  const report = await openPage("report", `${httpUrl}/meeting-report?id=${meetingId}`);
  await logIn(report, setup.moderator);
  await waitFor(report, "the report's rows", (n) => document.querySelectorAll('[data-testid="report-units"] tr').length === n, audience);
  const rows = await report.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll('[data-testid="report-units"] tr')].map((tr) => [tr.dataset.testid.slice("rep-".length), { ...tr.dataset, minutesText: tr.querySelector('[data-testid="minutes"]').textContent }])));
  const liveSeconds = (stored.ended_at - stored.live_at) / 1000;
  for (const unit of [askerUnit, voterUnit, screenUnit]) {
    const row = rows[unit];
    check(row && row.joinedAt !== "", `unit ${unit} joined in the report: ${JSON.stringify(row)}`);
    check(Number(row.seconds) > 0 && Number(row.seconds) <= liveSeconds + 1, `unit ${unit} watched for a while, at most the live time (${row.seconds} s of ${liveSeconds} s)`);
  }
  check(rows[setup.absent]?.joinedAt === "" && rows[setup.absent].seconds === "0", `the absent unit did not join: ${JSON.stringify(rows[setup.absent])}`);
  check(rows[screenUnit].headcount === "12", `the TV's unit has its headcount: ${JSON.stringify(rows[screenUnit])}`);
  check(rows[askerUnit].questions === "1" && rows[voterUnit].questions === "0", "questions are counted per unit");
  for (const unit of stored.units) {
    const row = rows[unit.unit];
    check(row.minutesText === unit.minutes_watched.toFixed(2), `the page's minutes for ${unit.unit} match the report (${row.minutesText} vs ${unit.minutes_watched})`);
  }
  const summary = await text(report, q("report-summary"));
  check(summary.startsWith(`3 of ${audience} units joined`), `the report's summary: ${summary}`);

  // The CSV download carries the same figures.
  await waitFor(report, "the CSV link", () => !document.querySelector('[data-testid="csv-download"]').hidden);
  const [download] = await Promise.all([report.waitForEvent("download", { timeout: STEP_TIMEOUT_MS }), report.click(q("csv-download"))]);
  check(download.suggestedFilename() === `attendance-${meetingId}.csv`, `the CSV's file name (${download.suggestedFilename()})`);
  const csv = fs.readFileSync(await download.path(), "utf8").trim().split(/\r?\n/);
  check(csv[0] === "unit,name,joined_at,minutes_watched,headcount,questions_asked", `the CSV header: ${csv[0]}`);
  check(csv.length === audience + 1, `one CSV line per unit (${csv.length - 1})`);
  for (const line of csv.slice(1)) {
    const [unit, , joinedAt, minutes, headcount, questions] = csvFields(line);
    const row = rows[unit];
    check(row, `the CSV's unit ${unit} is on the page`);
    check(joinedAt === row.joinedAt && minutes === row.minutesText && headcount === row.headcount && questions === row.questions, `the CSV line matches the page: ${line} vs ${JSON.stringify(row)}`);
  }
  await report.screenshot({ path: path.join(shotDir, "meeting-console-report.png") });
  step("report page and CSV match");

  if (problems.length > 0) throw new Error(`the pages reported problems:\n  ${problems.join("\n  ")}`);
} catch (error) {
  for (const [name, page] of Object.entries(pages)) {
    const shot = path.join(shotDir, `meeting-console-${name}-failure.png`);
    await page.screenshot({ path: shot }).then(() => console.error(`screenshot of the failure: ${shot}`), () => {});
    const body = await page.evaluate(() => document.body?.innerText).catch(() => "(page not readable)");
    console.error(`${name} page text at failure:\n${body}`);
  }
  if (problems.length > 0) console.error(`problems the pages reported:\n  ${problems.join("\n  ")}`);
  await context.close().catch(() => {});
  cleanUp();
  fail(`meeting_console: ${error.stack ?? error}`);
}
await context.close();
cleanUp();
clearTimeout(watchdog);
console.log(`PASS: meeting_console in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
