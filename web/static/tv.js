// tv.js — the meeting-room TV at `/tv?credential=<unit credential>&meeting=<id>`: one
// full-screen page for a unit's screen, meant to run untouched. It shows the meeting's
// video, the latest announcement and new directives to the unit as banners, the question
// on screen, and the viewer page's address for members to open on their phones.
//
// The credential logs in (retrying while the hub is down), then leaves the address bar; it
// is kept in this tab's sessionStorage, so a reload needs none and the screen logs in again
// by itself when its login expires. Without `meeting=` the screen shows the unit's live meeting:
// it looks at `GET /api/v1/meetings` every 10 s until one is live, and again after it ends.
// The meeting's state comes from `MeetingRoom` (meeting-live.js), which reconnects the
// WebSocket (at most 3 s between attempts) and reloads the whole state after every
// reconnect; the video from `MeetingPlayer`: a new WHEP session with backoff when the
// connection fails or the stream stops, audio only while the link is weak. When the video
// comes back after it was lost, the state is reloaded too: after a network outage the
// WebSocket may take seconds more to deliver what was pushed meanwhile. Directives
// arrive on `unit:<unit id>`, to which the hub subscribes the login's connection itself.
//
// The join box shows the viewer page's address as a QR code and as text, both from
// `GET /api/v1/meetings/{id}/join-link` (the hub builds the link from the address this
// screen reached it on and draws the code as SVG); the SVG goes into an <img> as a `data:`
// URL, so nothing in it can run and the page's CSP (`img-src 'self' data:`) allows it.
// Until that answer arrives (or when it fails; tried again with each state reload) the text
// is built here and there is no code.

import { applyText, chooseLanguage, format, nextLanguage, saveLanguage } from "./i18n.js";
import { ApiError, Session } from "./api.js";
import { MeetingPlayer, MeetingRoom } from "./meeting-live.js";

const TEXT = {
  en: {
    documentTitle: "rootcast — meeting room",
    languageName: "中文",
    languageTag: "zh-CN",
    switchLanguageLabel: "切换到中文",
    fullscreen: "Full screen",
    newDirective: "New directive",
    onScreen: "Question",
    joinLabel: "Scan to join on your phone, or open",
    joinQrAlt: "QR code of {link}",
    votes: "▲ {votes}",
    "state.connecting": "Connecting",
    "state.live": "Live",
    "state.reconnecting": "Reconnecting",
    "state.disconnected": "Disconnected",
    "priority.routine": "Routine",
    "priority.important": "Important",
    "priority.urgent": "Urgent",
    "video.idle": "",
    "video.connecting": "Connecting to the video…",
    "video.reconnecting": "Reconnecting to the video…",
    "video.live": "",
    "video.audio": "Audio only (weak connection)",
    noCredential: "Open this page with ?credential=… (a meeting-room credential of the unit).",
    loginFailed: "Cannot log in: {reason}",
    waitingForMeeting: "Waiting for a live meeting…",
    scheduled: "The meeting has not started yet.",
    ended: "The meeting has ended.",
    joinFailed: "Cannot join the meeting: {reason}",
  },
  "zh-CN": {
    documentTitle: "rootcast — 会议室",
    languageName: "English",
    languageTag: "en",
    switchLanguageLabel: "Switch to English",
    fullscreen: "全屏",
    newDirective: "新指令",
    onScreen: "提问",
    joinLabel: "用手机扫码加入，或打开",
    joinQrAlt: "{link} 的二维码",
    votes: "▲ {votes}",
    "state.connecting": "连接中",
    "state.live": "在线",
    "state.reconnecting": "重新连接中",
    "state.disconnected": "已断开",
    "priority.routine": "一般",
    "priority.important": "重要",
    "priority.urgent": "紧急",
    "video.idle": "",
    "video.connecting": "正在连接视频…",
    "video.reconnecting": "正在重新连接视频…",
    "video.live": "",
    "video.audio": "仅音频（网络较弱）",
    noCredential: "请以 ?credential=…（本单位的会议室凭据）打开本页。",
    loginFailed: "无法登录：{reason}",
    waitingForMeeting: "等待会议开始直播…",
    scheduled: "会议尚未开始。",
    ended: "会议已结束。",
    joinFailed: "无法加入会议：{reason}",
  },
};

/** How often to look for the unit's live meeting when none is chosen. */
const LOOK_EVERY_MS = 10_000;
/** How long a directive banner stays up. */
const DIRECTIVE_BANNER_MS = 120_000;
/** Longest wait between WebSocket reconnect attempts. */
const MAX_RECONNECT_DELAY_MS = 3_000;

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);
const params = new URL(globalThis.location.href).searchParams;
const model = {
  lang: chooseLanguage(),
  fixedMeeting: params.get("meeting") ?? "",
  message: null, // {key, params}
  directive: null, // {title, priority}
  join: null, // {meeting, link, qr_svg} from the hub, for the open meeting
};
const session = new Session("tv");
let room = null;
let player = null;
let directiveTimer = null;
let lookTimer = null;

function t(key, values) {
  return format(TEXT[model.lang][key] ?? TEXT.en[key] ?? key, values);
}

function render() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  const phase = room?.phase ?? "connecting";
  $("state").dataset.state = phase;
  $("state-text").textContent = t(`state.${phase}`);
  renderVideo();

  const meeting = room?.meeting;
  $("meeting-title").textContent = meeting?.title ?? "";
  let message = model.message;
  if (!message && room?.status === "ended") message = { key: "ended" };
  if (!message && room && room.status !== "live") message = { key: "scheduled" };
  $("message").textContent = message ? t(message.key, message.params) : "";
  $("waiting").hidden = Boolean(room && room.status === "live" && player.phase === "live" && !model.message);

  const announcement = room?.status === "ended" ? null : room?.announcement;
  const banner = $("announcement");
  banner.hidden = !announcement;
  if (announcement) {
    banner.dataset.level = announcement.level;
    banner.dataset.number = String(announcement.number);
    $("announcement-text").textContent = announcement.body;
  }

  const directive = $("directive-banner");
  directive.hidden = !model.directive;
  if (model.directive) {
    directive.dataset.priority = model.directive.priority;
    directive.dataset.directive = model.directive.id;
    $("directive-priority").textContent = t(`priority.${model.directive.priority}`);
    $("directive-title").textContent = model.directive.title;
  }

  const question = room?.status === "live" ? room.screen : null;
  $("screen").hidden = !question;
  if (question) {
    $("screen").dataset.question = question.id;
    $("screen-body").textContent = question.body;
    $("screen-votes").textContent = t("votes", { votes: question.votes ?? 0 });
  }

  $("join").hidden = !meeting || room.status === "ended";
  const join = meeting && model.join?.meeting === meeting.id ? model.join : null;
  const link = join?.link ?? (meeting ? new URL(`/meeting?id=${encodeURIComponent(meeting.id)}`, globalThis.location.href).href : "");
  $("join-link").textContent = link;
  const qr = $("join-qr");
  qr.hidden = !join;
  const source = join ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(join.qr_svg)}` : "";
  if (qr.getAttribute("src") !== source) {
    if (source) qr.src = source;
    else qr.removeAttribute("src");
  }
  qr.alt = join ? t("joinQrAlt", { link }) : "";
}

/** Fetches the open meeting's join link and QR code once (again after a failure). */
let joinLoading = null;
function loadJoinLink() {
  const id = room?.id;
  if (!id || model.join?.meeting === id || joinLoading === id) return;
  joinLoading = id;
  session
    .get(`/api/v1/meetings/${encodeURIComponent(id)}/join-link`)
    .then((answer) => {
      if (room?.id !== id || typeof answer?.qr_svg !== "string") return;
      model.join = { meeting: id, link: answer.link, qr_svg: answer.qr_svg };
      render();
    })
    .catch((error) => console.info("rootcast: no join QR code yet: %s", error.message))
    .finally(() => {
      if (joinLoading === id) joinLoading = null;
    });
}

function renderVideo() {
  const status = $("video-status");
  const phase = player?.phase ?? "idle";
  status.dataset.phase = phase;
  status.toggleAttribute("data-audio-only", Boolean(player?.audioOnly));
  status.textContent = phase === "live" && player?.audioOnly ? t("video.audio") : t(`video.${phase}`);
  if (room) $("waiting").hidden = room.status === "live" && phase === "live" && !model.message;
}

/** A directive to the unit (`{"type":"entry"}` on `unit:<id>`): a banner for a while. */
function onUnitPush(data) {
  if (data?.type !== "entry" || !data.entry?.directive || data.entry.kind === "retracted") return;
  model.directive = data.entry.directive;
  clearTimeout(directiveTimer);
  directiveTimer = setTimeout(() => {
    model.directive = null;
    render();
  }, DIRECTIVE_BANNER_MS);
  render();
}

async function openMeeting(id) {
  const next = new MeetingRoom(session, id, { name: "rootcast-tv", maxReconnectDelay: MAX_RECONNECT_DELAY_MS });
  try {
    await next.start();
  } catch (error) {
    model.message = { key: "joinFailed", params: { reason: error.message } };
    render();
    if (!(error instanceof ApiError && error.status === 401)) setTimeout(() => openMeeting(id), LOOK_EVERY_MS);
    return;
  }
  room = next;
  model.message = null;
  globalThis.rootcastTv.room = room;
  const unitChannel = `unit:${session.account?.unit ?? ""}`;
  room.client.addEventListener("publication", ({ detail }) => {
    if (detail.channel === unitChannel) onUnitPush(detail.data);
  });
  room.addEventListener("change", ({ detail }) => {
    player.setMedia(room.status === "live" ? room.media : null);
    // A reload follows every reconnect to the hub: the video may need a new session too.
    if (detail.what === "all") {
      player.nudge();
      loadJoinLink();
    }
    if (room.status === "ended" && !model.fixedMeeting) {
      // The unit's next live meeting, when there is one.
      clearTimeout(lookTimer);
      lookTimer = setTimeout(lookForMeeting, LOOK_EVERY_MS);
    }
    render();
  });
  player.setMedia(room.status === "live" ? room.media : null);
  loadJoinLink();
  render();
}

/** Opens the unit's live meeting (the most recently started), or looks again later. */
async function lookForMeeting() {
  lookTimer = null;
  try {
    const meetings = await session.get("/api/v1/meetings");
    const live = (Array.isArray(meetings) ? meetings : (meetings?.meetings ?? [])).find((m) => m.status === "live");
    if (live && live.id !== room?.id) {
      room?.stop();
      room = null;
      await openMeeting(live.id);
      return;
    }
    if (!live && !room) model.message = { key: "waitingForMeeting" };
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
  }
  render();
  if (!room || room.status === "ended") lookTimer = setTimeout(lookForMeeting, LOOK_EVERY_MS);
}

/** Where the credential is kept for this tab, so the screen logs in again by itself when
 * its login expires (12 h) or the hub forgets it. */
const CREDENTIAL_KEY = "rootcast.tv.credential";

function keptCredential() {
  try {
    return globalThis.sessionStorage?.getItem(CREDENTIAL_KEY) ?? null;
  } catch {
    return null;
  }
}

function keepCredential(credential) {
  try {
    globalThis.sessionStorage?.setItem(CREDENTIAL_KEY, credential);
  } catch {
    // Kept in memory only: a reload then needs the credential in the address again.
  }
}

/** Logs in with the credential, trying again (every 1 s to 15 s) while the hub cannot be
 * reached or fails; gives up only when the hub refuses the credential (4xx). */
async function logIn(credential) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await session.loginCredential(credential);
      return true;
    } catch (error) {
      model.message = { key: "loginFailed", params: { reason: error.message } };
      render();
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(15_000, 1_000 * 2 ** attempt)));
    }
  }
}

/** Shows the chosen meeting, or the unit's live one. */
async function enter() {
  model.message = null;
  if (model.fixedMeeting) await openMeeting(model.fixedMeeting);
  else await lookForMeeting();
}

async function start() {
  // Video back after it was lost (a network outage, a relay restart): the hub's pushes of
  // meanwhile may still be stuck behind TCP's retransmissions, so the state is read again.
  player = new MeetingPlayer($("video"), renderVideo, { onRecovered: () => room?.reload() });
  globalThis.rootcastTv = { model, session, room: null, player };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    render();
  });
  $("fullscreen").addEventListener("click", () => document.documentElement.requestFullscreen?.().catch(() => {}));
  session.addEventListener("logout", async () => {
    room?.stop();
    room = null;
    clearTimeout(lookTimer);
    player.setMedia(null);
    const credential = keptCredential();
    if (credential && (await logIn(credential))) {
      await enter();
      return;
    }
    model.message = { key: "noCredential" };
    render();
  });
  render();

  const url = new URL(globalThis.location.href);
  const credential = url.searchParams.get("credential");
  if (credential) {
    url.searchParams.delete("credential");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    keepCredential(credential);
    if (!(await logIn(credential))) return;
  }
  if (!session.data) {
    model.message = { key: "noCredential" };
    render();
    return;
  }
  await enter();
}

start();
