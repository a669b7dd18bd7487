// replay.js — the replay page at `/replay?id=<meeting>`: the meeting's recordings played in
// order in one <video> (a publisher who reconnected leaves several; the next starts when
// one ends), and beside them the meeting's questions with their votes and public answers.
// Selecting a question seeks to the moment it was asked. zh-CN and English.
//
// Data: `GET /api/v1/meetings/{id}/recordings` (whoever may watch the meeting; each
// recording with a playback URL carrying a short-lived token, since a <video> sends no
// Authorization header) and `GET /api/v1/meetings/{id}/questions?sort=time`. Logs in like
// the viewer page and shares its login in this tab (`Session("meeting")`).

import { applyText, chooseLanguage, formatDateTime, formatDuration, nextLanguage, saveLanguage } from "./i18n.js";
import { ApiError, Session } from "./api.js";
import { describeError, mergeText, translator } from "./directive-text.js";
import { bindSession, showLoggedIn, showNotice } from "./session-ui.js";

const TEXT = mergeText({
  en: {
    documentTitle: "rootcast — replay",
    pageTitle: "replay",
    partsTitle: "Recordings",
    part: "Part {n} · {time} · {duration}",
    noRecordings: "No recording of this meeting.",
    qaTitle: "Questions",
    qaHint: "Select a question to watch from when it was asked.",
    noQuestions: "No questions were asked.",
    anonymousAsker: "Anonymous",
    you: "you",
    votes: "▲ {votes}",
    votesLabel: "{votes} votes",
    "status.open": "",
    "status.answered": "Answered",
    "status.archived": "Archived",
    askedAt: "asked {time}",
    intoMeeting: "{offset} into the meeting",
    notRecorded: "not in the recording",
    seekLabel: "Watch from when this question was asked",
    when: "Live {from} – {to}",
    whenLive: "Live since {from} (recordings so far)",
    notEnded: "The meeting has not ended yet.",
    "video.loading": "Loading the recording…",
    "video.error": "The recording cannot be played: {reason}",
    "video.none": "Nothing to play.",
    noMeeting: "No meeting: open this page as /replay?id=MEETING.",
    loadFailed: "Cannot load the meeting: {reason}",
    footer: "The recording as it was streamed; questions and public answers as they stand now.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 回放",
    pageTitle: "回放",
    partsTitle: "录像",
    part: "第 {n} 段 · {time} · {duration}",
    noRecordings: "本会议没有录像。",
    qaTitle: "提问",
    qaHint: "点击问题，从提问时刻开始观看。",
    noQuestions: "会议中没有提问。",
    anonymousAsker: "匿名",
    you: "我",
    votes: "▲ {votes}",
    votesLabel: "{votes} 人赞同",
    "status.open": "",
    "status.answered": "已回答",
    "status.archived": "已归档",
    askedAt: "提问于 {time}",
    intoMeeting: "会议开始后 {offset}",
    notRecorded: "不在录像范围内",
    seekLabel: "从提问时刻开始观看",
    when: "直播 {from} – {to}",
    whenLive: "直播中，始于 {from}（已有录像）",
    notEnded: "会议尚未结束。",
    "video.loading": "正在加载录像…",
    "video.error": "录像无法播放：{reason}",
    "video.none": "没有可播放的内容。",
    noMeeting: "没有会议：请以 /replay?id=会议 打开本页。",
    loadFailed: "无法加载会议：{reason}",
    footer: "录像为直播原样；提问和公开回答为当前状态。",
  },
});

/** The question states everyone may see on a replay. */
const PUBLIC_STATUSES = new Set(["open", "answered", "archived"]);

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

const model = {
  lang: chooseLanguage(),
  meetingId: new URLSearchParams(globalThis.location.search).get("id") ?? "",
  meeting: null, // {id, title, status, live_at, ended_at}
  recordings: [], // as the API lists them, oldest first
  questions: [], // public ones, by time asked
  part: -1, // the recording in the player
  videoState: "none", // none | loading | ready | error
  videoError: "",
  /** A seek waiting for the part's metadata: seconds into it. */
  pendingSeek: null,
  selected: null, // the question last selected
};
const t = translator(TEXT, () => model.lang);
const session = new Session("meeting");

// ---- the timeline ----

/** Where the wall-clock moment `at` (ms) is in the recordings: {part, seconds}, the start
 * of the next recording when it falls in a gap, or null after the last one ended. */
export function locate(recordings, at) {
  for (const [part, recording] of recordings.entries()) {
    if (at > recording.ended_at) continue;
    return { part, seconds: Math.max(0, (at - recording.started_at) / 1000) };
  }
  return null;
}

/** The wall-clock moment (ms) of the player's position. */
function playerMoment() {
  const recording = model.recordings[model.part];
  if (!recording) return null;
  return recording.started_at + $("video").currentTime * 1000;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

// ---- rendering ----

function renderAll() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  showLoggedIn(Boolean(session.data), session.account, t);
  renderMeeting();
  renderParts();
  renderVideo();
  renderQuestions();
  renderClock();
}

function renderMeeting() {
  const meeting = model.meeting;
  $("meeting-title").textContent = meeting?.title ?? "";
  const when = $("meeting-when");
  when.dataset.status = meeting?.status ?? "";
  if (!meeting) when.textContent = "";
  else if (meeting.live_at == null) when.textContent = t("notEnded");
  else if (meeting.ended_at == null) when.textContent = t("whenLive", { from: formatDateTime(meeting.live_at, model.lang) });
  else {
    when.textContent = t("when", {
      from: formatDateTime(meeting.live_at, model.lang),
      to: formatDateTime(meeting.ended_at, model.lang),
    });
  }
}

function renderParts() {
  const list = $("parts");
  $("no-recordings").hidden = !model.meeting || model.recordings.length > 0;
  list.replaceChildren(
    ...model.recordings.map((recording, index) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link-button part-button";
      button.dataset.testid = `part-${index}`;
      button.dataset.name = recording.name;
      button.toggleAttribute("data-current", index === model.part);
      button.setAttribute("aria-pressed", String(index === model.part));
      button.textContent = t("part", {
        n: index + 1,
        time: formatDateTime(recording.started_at, model.lang),
        duration: formatDuration(recording.duration, model.lang),
      });
      button.addEventListener("click", () => play(index, 0));
      li.append(button);
      return li;
    }),
  );
}

function renderVideo() {
  const status = $("video-status");
  status.dataset.state = model.videoState;
  let text = "";
  if (model.videoState === "loading") text = t("video.loading");
  else if (model.videoState === "error") text = t("video.error", { reason: model.videoError });
  else if (model.videoState === "none" && model.meeting) text = t("video.none");
  status.textContent = text;
  status.hidden = !text;
}

function askerName(question) {
  if (question.asker?.id && question.asker.id === session.account?.id) return t("you");
  return question.asker?.name ?? t("anonymousAsker");
}

function renderQuestions() {
  const live = model.meeting?.live_at ?? null;
  $("no-questions").hidden = !model.meeting || model.questions.length > 0;
  $("questions").replaceChildren(
    ...model.questions.map((question) => {
      const li = document.createElement("li");
      li.className = "question replay-question";
      li.dataset.testid = `question-${question.id}`;
      li.dataset.status = question.status;
      li.toggleAttribute("data-selected", model.selected === question.id);
      const votes = document.createElement("span");
      votes.className = "vote-button replay-votes";
      votes.dataset.testid = "votes";
      votes.dataset.votes = String(question.votes);
      votes.title = t("votesLabel", { votes: question.votes });
      votes.textContent = t("votes", { votes: question.votes });
      const place = locate(model.recordings, question.asked_at);
      const seek = document.createElement("button");
      seek.type = "button";
      seek.className = "link-button question-body";
      seek.dataset.testid = "question-seek";
      seek.title = t("seekLabel");
      seek.textContent = question.body;
      seek.disabled = !place;
      seek.addEventListener("click", () => selectQuestion(question));
      const meta = document.createElement("span");
      meta.className = "muted";
      meta.dataset.testid = "question-meta";
      const parts = [askerName(question), t("askedAt", { time: formatDateTime(question.asked_at, model.lang) })];
      if (live != null && question.asked_at >= live) parts.push(t("intoMeeting", { offset: clock((question.asked_at - live) / 1000) }));
      if (!place) parts.push(t("notRecorded"));
      const statusText = t(`status.${question.status}`);
      if (statusText) parts.push(statusText);
      meta.textContent = parts.join(" · ");
      const answers = document.createElement("ul");
      answers.className = "answers";
      for (const answer of question.answers ?? []) {
        if (answer.private) continue;
        const item = document.createElement("li");
        item.dataset.testid = "answer";
        const who = document.createElement("strong");
        who.textContent = `${answer.author?.name ?? ""}: `;
        const text = document.createElement("span");
        text.textContent = answer.body;
        item.append(who, text);
        answers.append(item);
      }
      li.append(votes, seek, meta, answers);
      return li;
    }),
  );
  renderAsked();
}

/** Marks the questions already asked at the player's position (`data-asked`). */
function renderAsked() {
  const now = playerMoment();
  for (const question of model.questions) {
    const li = document.querySelector(`[data-testid="question-${CSS.escape(question.id)}"]`);
    li?.toggleAttribute("data-asked", now != null && question.asked_at <= now);
  }
}

function renderClock() {
  const video = $("video");
  const live = model.meeting?.live_at;
  const now = playerMoment();
  $("clock").textContent = now != null && live != null ? clock((now - live) / 1000) : "";
  $("clock").dataset.seconds = video.currentTime.toFixed(2);
}

// ---- the player ----

/** Plays recording `part` from `seconds` into it (loading it first when it is another). */
function play(part, seconds) {
  const recording = model.recordings[part];
  if (!recording) return;
  const video = $("video");
  if (part !== model.part || model.videoState === "error") {
    model.part = part;
    model.pendingSeek = seconds;
    model.videoState = "loading";
    video.src = recording.url;
    video.load();
    renderParts();
    renderVideo();
  } else {
    video.currentTime = seconds;
  }
  video.play().catch(() => {
    // Autoplay refused: the controls are there to start it.
  });
}

function selectQuestion(question) {
  const place = locate(model.recordings, question.asked_at);
  if (!place) return;
  model.selected = question.id;
  play(place.part, place.seconds);
  renderQuestions();
}

function bindPlayer() {
  const video = $("video");
  video.addEventListener("loadedmetadata", () => {
    model.videoState = "ready";
    if (model.pendingSeek) video.currentTime = model.pendingSeek;
    model.pendingSeek = null;
    renderVideo();
  });
  video.addEventListener("timeupdate", () => {
    renderClock();
    renderAsked();
  });
  video.addEventListener("seeked", () => {
    renderClock();
    renderAsked();
  });
  video.addEventListener("ended", () => {
    if (model.part + 1 < model.recordings.length) play(model.part + 1, 0);
  });
  video.addEventListener("error", () => {
    if (!video.currentSrc) return;
    model.videoState = "error";
    model.videoError = video.error?.message || String(video.error?.code ?? "");
    renderVideo();
    // The playback URL may have expired: fetch fresh ones for the next attempt.
    load({ keepPlayer: true }).catch(() => {});
  });
}

// ---- data ----

async function load({ keepPlayer = false } = {}) {
  const id = encodeURIComponent(model.meetingId);
  const [listed, qa] = await Promise.all([
    session.get(`/api/v1/meetings/${id}/recordings`),
    session.get(`/api/v1/meetings/${id}/questions?sort=time`),
  ]);
  model.meeting = listed.meeting;
  model.recordings = listed.recordings ?? [];
  model.questions = (qa.questions ?? [])
    .filter((question) => PUBLIC_STATUSES.has(question.status))
    .sort((a, b) => a.asked_at - b.asked_at || a.id.localeCompare(b.id));
  if (!keepPlayer) {
    model.part = -1;
    model.videoState = "none";
    if (model.recordings.length > 0) {
      model.part = 0;
      model.videoState = "loading";
      $("video").src = model.recordings[0].url;
    }
  }
  renderAll();
}

async function enter() {
  showNotice(null);
  if (!model.meetingId) {
    showNotice(t("noMeeting"));
    return;
  }
  try {
    await load();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showNotice(t("loadFailed", { reason: describeError(error, t) }));
  }
}

function leave() {
  model.meeting = null;
  model.recordings = [];
  model.questions = [];
  model.part = -1;
  model.videoState = "none";
  const video = $("video");
  video.removeAttribute("src");
  video.load();
  renderAll();
}

function start() {
  globalThis.rootcastReplay = { model, session, locate };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    renderAll();
  });
  bindSession({ session, t, onLogin: enter, onLogout: leave });
  bindPlayer();
  renderAll();
  if (session.data) enter();
}

start();
