// expert.js — the expert desk at `/expert` (optionally `?meeting=<id>` for one meeting):
// the questions moderators assigned to the logged-in expert, live, across the expert's
// meetings that have not ended; each answered in its thread, publicly (every viewer sees
// it) or privately to the asker (only they and the moderators see it). zh-CN and English.
//
// Each meeting is a `MeetingRoom` (meeting-live.js): an expert's join hands out the tokens
// of `meeting:<id>`, `qa:<id>` and their own `qa:<id>#<account>`; an assignment arrives as
// a question push on `qa:<id>` (its `assigned_to` names the expert), and the room reloads
// the whole state after every reconnect. The expert's own private answers are not pushed
// to them: the room reloads after one is sent. The meeting list is read again every 30 s,
// so a meeting scheduled later joins the desk.

import { applyText, chooseLanguage, formatDateTime, nextLanguage, saveLanguage } from "./i18n.js";
import { ApiError, Session } from "./api.js";
import { describeError, mergeText, translator } from "./directive-text.js";
import { bindSession, showLoggedIn, showNotice, showPhase } from "./session-ui.js";
import { MeetingRoom, sortQuestions } from "./meeting-live.js";

const TEXT = mergeText({
  en: {
    documentTitle: "rootcast — expert desk",
    pageTitle: "expert desk",
    assignedTitle: "Questions assigned to you",
    showAnswered: "Show answered",
    noAssigned: "Nothing assigned to you yet. Questions appear here as soon as a moderator assigns them.",
    meetings: "Your meetings: {list}",
    noMeetings: "You are not an expert of any meeting that is running or coming.",
    anonymousAsker: "Anonymous",
    votes: "▲ {votes}",
    "status.open": "open",
    "status.answered": "answered",
    "status.archived": "archived",
    "meeting.live": "live",
    "meeting.scheduled": "starts {time}",
    "meeting.ended": "ended",
    answerPlaceholder: "Your answer",
    privateLabel: "Only to the asker (private)",
    send: "Answer",
    sent: "Answered.",
    sentPrivately: "Answered privately.",
    sendFailed: "Not sent: {reason}",
    privateAnswer: "private, to the asker",
    joinFailed: "Cannot open meeting {meeting}: {reason}",
    footer: "Assignments arrive live. A public answer reaches every viewer; a private one only the asker (and the moderators).",
  },
  "zh-CN": {
    documentTitle: "rootcast — 专家席",
    pageTitle: "专家席",
    assignedTitle: "分配给你的提问",
    showAnswered: "显示已回答",
    noAssigned: "暂无分配给你的提问。主持人分配后会立即显示在这里。",
    meetings: "你的会议：{list}",
    noMeetings: "你没有正在进行或即将开始的会议。",
    anonymousAsker: "匿名",
    votes: "▲ {votes}",
    "status.open": "公开",
    "status.answered": "已回答",
    "status.archived": "已归档",
    "meeting.live": "直播中",
    "meeting.scheduled": "{time} 开始",
    "meeting.ended": "已结束",
    answerPlaceholder: "你的回答",
    privateLabel: "仅回复提问人（私密）",
    send: "回答",
    sent: "已回答。",
    sentPrivately: "已私密回答。",
    sendFailed: "未发送：{reason}",
    privateAnswer: "仅提问人可见",
    joinFailed: "无法打开会议 {meeting}：{reason}",
    footer: "分配实时送达。公开回答所有观众可见；私密回答仅提问人（和主持人）可见。",
  },
});

const $ = (testId, root = document) => root.querySelector(`[data-testid="${testId}"]`);

/** How often the list of the expert's meetings is read again. */
const MEETINGS_POLL_MS = 30_000;
/** Most meetings followed at once (each is one hub connection). */
const MAX_ROOMS = 10;

const model = {
  lang: chooseLanguage(),
  only: new URLSearchParams(globalThis.location.search).get("meeting") ?? "",
  showAnswered: true,
};
const t = translator(TEXT, () => model.lang);
const session = new Session("expert");
/** Meeting id → MeetingRoom. */
const rooms = new Map();
/** Question id → its list item, kept across renders so a draft answer and focus survive. */
const items = new Map();
let poll = null;

function el(tag, { className, testId, text, attrs } = {}, children = []) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (testId) element.dataset.testid = testId;
  if (text !== undefined) element.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

function renderAll() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  showLoggedIn(Boolean(session.data), session.account, t);
  renderPhase();
  renderMeetings();
  for (const item of items.values()) item.refreshText();
  renderQuestions();
}

function renderPhase() {
  if (!session.data) return showPhase("loggedOut", t);
  const phases = [...rooms.values()].map((room) => room.phase);
  const phase = ["disconnected", "reconnecting", "connecting"].find((p) => phases.includes(p)) ?? "live";
  showPhase(phase, t);
}

function meetingLabel(room) {
  const meeting = room.meeting;
  const status = room.status === "scheduled" ? t("meeting.scheduled", { time: formatDateTime(meeting?.starts_at, model.lang) }) : t(`meeting.${room.status}`);
  return `${meeting?.title ?? room.id} (${status})`;
}

function renderMeetings() {
  const list = [...rooms.values()].map(meetingLabel);
  $("meetings-line").textContent = session.data ? (list.length > 0 ? t("meetings", { list: list.join(" · ") }) : t("noMeetings")) : "";
}

/** The list item of one question, made once; `update(question, room)` refreshes it. */
function makeItem(question, room) {
  const li = el("li", { className: "expert-question", testId: `eq-${question.id}` });
  const head = el("p", { className: "muted", testId: "question-meeting" });
  const body = el("p", { className: "question-body", testId: "question-body" });
  const meta = el("p", { className: "muted", testId: "question-meta" });
  const answers = el("ul", { className: "answers", testId: "answers" });
  const form = el("form", { className: "expert-answer", testId: "answer-form" });
  const text = el("textarea", { testId: "answer-body", attrs: { rows: "3", maxlength: "4000", required: "" } });
  const privateBox = el("input", { testId: "answer-private", attrs: { type: "checkbox" } });
  const privateText = el("span");
  const send = el("button", { className: "primary-button", testId: "answer-send", attrs: { type: "submit" } });
  const status = el("span", { className: "status", testId: "answer-status", attrs: { role: "status" } });
  form.append(text, el("div", { className: "form-actions" }, [el("label", { className: "check" }, [privateBox, privateText]), send, status]));
  li.append(head, body, meta, answers, form);
  const item = { li, room, question };
  item.refreshText = () => {
    text.setAttribute("aria-label", t("answerPlaceholder"));
    text.placeholder = t("answerPlaceholder");
    privateText.textContent = t("privateLabel");
    send.textContent = t("send");
    item.update(item.question, item.room);
  };
  item.update = (next, nextRoom) => {
    item.question = next;
    item.room = nextRoom;
    li.dataset.status = next.status;
    li.dataset.meeting = nextRoom.id;
    head.textContent = meetingLabel(nextRoom);
    body.textContent = next.body;
    const asker = next.asker?.name ?? t("anonymousAsker");
    meta.textContent = [t("votes", { votes: next.votes }), asker, formatDateTime(next.asked_at, model.lang), t(`status.${next.status}`)].join(" · ");
    answers.replaceChildren(
      ...(next.answers ?? []).map((answer) => {
        const a = el("li", { testId: "answer" }, [
          el("strong", { text: `${answer.author?.name ?? ""}${answer.private ? ` (${t("privateAnswer")})` : ""}: ` }),
          el("span", { text: answer.body }),
        ]);
        a.toggleAttribute("data-private", answer.private);
        return a;
      }),
    );
    send.disabled = nextRoom.status === "ended";
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = text.value.trim();
    if (!answer) return;
    const isPrivate = privateBox.checked;
    send.disabled = true;
    try {
      await session.post(`/api/v1/questions/${encodeURIComponent(item.question.id)}/answers`, { body: answer, private: isPrivate });
      text.value = "";
      privateBox.checked = false;
      status.dataset.kind = "ok";
      status.textContent = t(isPrivate ? "sentPrivately" : "sent");
      // A private answer is not pushed back to its author: read the thread again.
      await item.room.reload();
    } catch (error) {
      status.dataset.kind = "error";
      status.textContent = t("sendFailed", { reason: describeError(error, t) });
    } finally {
      send.disabled = item.room.status === "ended";
    }
  });
  item.refreshText();
  return item;
}

function renderQuestions() {
  const me = session.account?.id;
  const wanted = [];
  for (const room of rooms.values()) {
    for (const question of sortQuestions(room.questions.values(), "votes")) {
      if (question.assigned_to !== me || !["open", "answered", "archived"].includes(question.status)) continue;
      if (!model.showAnswered && question.status !== "open") continue;
      wanted.push([question, room]);
    }
  }
  const list = $("expert-questions");
  const keep = new Set(wanted.map(([q]) => q.id));
  for (const [id, item] of items) {
    if (!keep.has(id)) {
      item.li.remove();
      items.delete(id);
    }
  }
  let previous = null;
  for (const [question, room] of wanted) {
    let item = items.get(question.id);
    if (!item) {
      item = makeItem(question, room);
      items.set(question.id, item);
    } else {
      item.update(question, room);
    }
    // Moved only when out of place, so a focused text box keeps its focus.
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (expected !== item.li) {
      if (previous) previous.after(item.li);
      else list.prepend(item.li);
    }
    previous = item.li;
  }
  $("no-assigned").hidden = wanted.length > 0;
}

async function followMeetings() {
  let meetings;
  try {
    meetings = await session.get("/api/v1/meetings");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showNotice(describeError(error, t));
    return;
  }
  const wanted = meetings
    .filter((m) => (model.only ? m.id === model.only : m.status !== "ended"))
    .slice(0, MAX_ROOMS);
  for (const meeting of wanted) {
    if (rooms.has(meeting.id)) continue;
    const room = new MeetingRoom(session, meeting.id, { name: "rootcast-expert" });
    rooms.set(meeting.id, room);
    try {
      await room.start();
    } catch (error) {
      rooms.delete(meeting.id);
      room.stop();
      if (!(error instanceof ApiError && error.status === 401)) showNotice(t("joinFailed", { meeting: meeting.title, reason: describeError(error, t) }));
      continue;
    }
    room.addEventListener("change", ({ detail }) => {
      if (detail.what === "phase") renderPhase();
      else if (detail.what === "error") showNotice(describeError(room.error, t));
      else {
        if (detail.what === "all") showNotice(null);
        renderMeetings();
        renderQuestions();
      }
    });
  }
  globalThis.rootcastExpert.rooms = rooms;
  renderAll();
}

async function enter() {
  showNotice(null);
  await followMeetings();
  clearInterval(poll);
  poll = setInterval(followMeetings, MEETINGS_POLL_MS);
}

function leave() {
  clearInterval(poll);
  for (const room of rooms.values()) room.stop();
  rooms.clear();
  for (const item of items.values()) item.li.remove();
  items.clear();
  renderAll();
}

function start() {
  globalThis.rootcastExpert = { model, session, rooms };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    renderAll();
  });
  bindSession({ session, t, onLogin: enter, onLogout: leave });
  $("show-answered").addEventListener("change", () => {
    model.showAnswered = $("show-answered").checked;
    renderQuestions();
  });
  renderAll();
  if (session.data) enter();
}

start();
