// meeting.js — the viewer page at `/meeting?id=<meeting>`: the meeting's video, the latest
// announcement as a banner over it, the question on screen, the Q&A panel (ask, optionally
// anonymously; vote and withdraw; sort by votes or time; answers) and the chat (send; the
// server's refusals shown: slow mode, timeouts, bans, length, blocked words, held for
// review). zh-CN and English.
//
// Log in with a username and password, or reuse the login kept in this tab. The live state
// is kept by `MeetingRoom` (meeting-live.js): join, the channels `meeting:<id>`, `qa:<id>`,
// `qa:<id>#<account>` and `meeting-chat:<id>`, and a full reload after every reconnect; the
// video by `MeetingPlayer` (WHEP with retries).

import { applyText, chooseLanguage, formatDateTime, nextLanguage, saveLanguage } from "./i18n.js";
import { ApiError, Session } from "./api.js";
import { describeError, mergeText, translator } from "./directive-text.js";
import { bindSession, showLoggedIn, showNotice, showPhase } from "./session-ui.js";
import { MeetingPlayer, MeetingRoom, sortQuestions } from "./meeting-live.js";

const TEXT = mergeText({
  en: {
    documentTitle: "rootcast — meeting",
    pageTitle: "meeting",
    dismiss: "Dismiss",
    unmute: "Unmute",
    mute: "Mute",
    audioOnly: "Audio only",
    onScreen: "On screen",
    qaTitle: "Questions",
    sortLabel: "Sort",
    "sort.votes": "Most votes",
    "sort.time": "Newest",
    askPlaceholder: "Your question",
    anonymous: "Ask anonymously",
    askButton: "Ask",
    asked: "Sent.",
    askedPending: "Sent; it appears once a moderator approves it.",
    askFailed: "Not sent: {reason}",
    noQuestions: "No questions yet.",
    anonymousAsker: "Anonymous",
    you: "you",
    vote: "▲ {votes}",
    voteLabel: "Vote for this question",
    unvoteLabel: "Withdraw your vote",
    "status.pending": "Waiting for approval",
    "status.open": "",
    "status.answered": "Answered",
    "status.archived": "Archived",
    privateAnswer: "Private answer to you",
    chatTitle: "Chat",
    chatPlaceholder: "Message",
    send: "Send",
    chatClosed: "The chat is closed.",
    slowModeOn: "Slow mode: one message every {seconds} s.",
    "refusal.slow": "Slow mode: wait {seconds} s before your next message.",
    "refusal.rate": "Too many messages: wait {seconds} s.",
    "refusal.banned": "You are banned from this chat.",
    "refusal.timeout": "You are timed out: {seconds} s more.",
    "refusal.closed": "The chat is closed.",
    "refusal.ended": "The meeting has ended; the chat is read-only.",
    "refusal.tooLong": "Too long: at most {max} characters.",
    "refusal.empty": "Write something first.",
    "refusal.blocked": "Not sent: the message contains a blocked word.",
    held: "Held for review: others see it once a moderator approves it.",
    chatFailed: "Not sent: {reason}",
    "meeting.scheduled": "Starts {time}",
    "meeting.live": "Live",
    "meeting.ended": "The meeting has ended.",
    "video.idle": "The video starts when the meeting goes live.",
    "video.connecting": "Connecting to the video…",
    "video.reconnecting": "Reconnecting to the video…",
    "video.live": "",
    "video.audio": "Audio only (weak connection)",
    noMeeting: "No meeting: open this page as /meeting?id=MEETING.",
    joinFailed: "Cannot join the meeting: {reason}",
    footer: "Questions, answers and chat arrive live; after a break the page reloads the current state.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 会议",
    pageTitle: "会议",
    dismiss: "关闭",
    unmute: "取消静音",
    mute: "静音",
    audioOnly: "仅音频",
    onScreen: "正在展示",
    qaTitle: "提问",
    sortLabel: "排序",
    "sort.votes": "最多赞同",
    "sort.time": "最新",
    askPlaceholder: "你的问题",
    anonymous: "匿名提问",
    askButton: "提问",
    asked: "已提交。",
    askedPending: "已提交，主持人审核后显示。",
    askFailed: "未提交：{reason}",
    noQuestions: "暂无提问。",
    anonymousAsker: "匿名",
    you: "我",
    vote: "▲ {votes}",
    voteLabel: "赞同这个问题",
    unvoteLabel: "取消赞同",
    "status.pending": "等待审核",
    "status.open": "",
    "status.answered": "已回答",
    "status.archived": "已归档",
    privateAnswer: "仅你可见的回答",
    chatTitle: "聊天",
    chatPlaceholder: "消息",
    send: "发送",
    chatClosed: "聊天已关闭。",
    slowModeOn: "慢速模式：每 {seconds} 秒可发一条。",
    "refusal.slow": "慢速模式：请等待 {seconds} 秒再发送。",
    "refusal.rate": "发送过于频繁：请等待 {seconds} 秒。",
    "refusal.banned": "你已被禁止在此聊天中发言。",
    "refusal.timeout": "你已被禁言：还剩 {seconds} 秒。",
    "refusal.closed": "聊天已关闭。",
    "refusal.ended": "会议已结束，聊天只读。",
    "refusal.tooLong": "消息过长：最多 {max} 个字符。",
    "refusal.empty": "请先输入内容。",
    "refusal.blocked": "未发送：消息包含屏蔽词。",
    held: "消息待审核：主持人批准后其他人可见。",
    chatFailed: "未发送：{reason}",
    "meeting.scheduled": "开始时间 {time}",
    "meeting.live": "直播中",
    "meeting.ended": "会议已结束。",
    "video.idle": "会议开始直播后显示视频。",
    "video.connecting": "正在连接视频…",
    "video.reconnecting": "正在重新连接视频…",
    "video.live": "",
    "video.audio": "仅音频（网络较弱）",
    noMeeting: "没有会议：请以 /meeting?id=会议 打开本页。",
    joinFailed: "无法加入会议：{reason}",
    footer: "提问、回答和聊天实时送达；连接中断后页面会重新加载当前状态。",
  },
});

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

const model = {
  lang: chooseLanguage(),
  meetingId: new URLSearchParams(globalThis.location.search).get("id") ?? "",
  sort: "votes",
  dismissedAnnouncement: 0,
  chatStatus: null, // {key, params, kind}
};
const t = translator(TEXT, () => model.lang);
const session = new Session("meeting");
let room = null;
let player = null;

// ---- rendering ----

function renderAll() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  showLoggedIn(Boolean(session.data), session.account, t);
  showPhase(room ? room.phase : "loggedOut", t);
  renderMeeting();
  renderVideo();
  renderAnnouncement();
  renderScreen();
  renderQuestions();
  renderChat();
}

function renderMeeting() {
  const meeting = room?.meeting;
  $("meeting-title").textContent = meeting?.title ?? "";
  const status = $("meeting-status");
  status.dataset.status = room?.status ?? "";
  if (!meeting) status.textContent = "";
  else if (room.status === "live") status.textContent = t("meeting.live");
  else if (room.status === "ended") status.textContent = t("meeting.ended");
  else status.textContent = t("meeting.scheduled", { time: formatDateTime(meeting.starts_at, model.lang) });
  renderReplayLink(meeting && room.status === "ended" ? meeting.id : null);
}

/** The label of the link to an ended meeting's replay page, per language. */
const REPLAY_LINK_TEXT = { en: "Watch the recording and its questions", "zh-CN": "观看录像回放及提问" };

/** After the meeting ended: a link to its replay (`/replay?id=…`) beside the status. */
function renderReplayLink(meetingId) {
  let link = $("replay-link");
  if (!meetingId) {
    link?.remove();
    return;
  }
  if (!link) {
    link = document.createElement("a");
    link.dataset.testid = "replay-link";
    link.className = "secondary-button replay-link";
    $("meeting-status").after(link);
  }
  link.href = `/replay?id=${encodeURIComponent(meetingId)}`;
  link.textContent = REPLAY_LINK_TEXT[model.lang] ?? REPLAY_LINK_TEXT.en;
}

function renderVideo() {
  const status = $("video-status");
  const phase = player?.phase ?? "idle";
  status.dataset.phase = phase;
  status.toggleAttribute("data-audio-only", Boolean(player?.audioOnly));
  status.textContent = phase === "live" && player?.audioOnly ? t("video.audio") : t(`video.${phase}`);
  status.hidden = !status.textContent;
  $("unmute").textContent = t($("video").muted ? "unmute" : "mute");
}

function renderAnnouncement() {
  const banner = $("announcement");
  const announcement = room?.announcement;
  const show = announcement && announcement.number > model.dismissedAnnouncement && room.status !== "ended";
  banner.hidden = !show;
  if (!show) return;
  banner.dataset.level = announcement.level;
  banner.dataset.number = String(announcement.number);
  $("announcement-text").textContent = announcement.body;
}

function renderScreen() {
  const card = $("screen");
  const question = room?.screen;
  card.hidden = !question;
  if (!question) return;
  card.dataset.question = question.id;
  $("screen-body").textContent = question.body;
}

function askerName(question) {
  if (question.asker?.id && question.asker.id === session.account?.id) return t("you");
  return question.asker?.name ?? t("anonymousAsker");
}

function renderQuestions() {
  const list = room ? sortQuestions(room.questions.values(), model.sort) : [];
  $("no-questions").hidden = list.length > 0;
  $("questions").replaceChildren(
    ...list.map((question) => {
      const li = document.createElement("li");
      li.className = "question";
      li.dataset.testid = `question-${question.id}`;
      li.dataset.status = question.status;
      li.toggleAttribute("data-on-screen", room.screen?.id === question.id);
      const voted = room.myVotes.has(question.id);
      const vote = document.createElement("button");
      vote.type = "button";
      vote.className = "vote-button";
      vote.dataset.testid = "vote";
      vote.toggleAttribute("data-voted", voted);
      vote.setAttribute("aria-pressed", String(voted));
      vote.title = t(voted ? "unvoteLabel" : "voteLabel");
      vote.textContent = t("vote", { votes: question.votes });
      vote.disabled = !["open", "answered"].includes(question.status) || room.status === "ended";
      vote.addEventListener("click", () => toggleVote(question.id, !voted));
      const body = document.createElement("p");
      body.className = "question-body";
      body.dataset.testid = "question-body";
      body.textContent = question.body;
      const meta = document.createElement("span");
      meta.className = "muted";
      const parts = [askerName(question), formatDateTime(question.asked_at, model.lang)];
      const statusText = t(`status.${question.status}`);
      if (statusText) parts.push(statusText);
      if (room.screen?.id === question.id) parts.push(t("onScreen"));
      meta.textContent = parts.join(" · ");
      const answers = document.createElement("ul");
      answers.className = "answers";
      for (const answer of question.answers ?? []) {
        const item = document.createElement("li");
        item.dataset.testid = "answer";
        item.toggleAttribute("data-private", answer.private);
        const who = document.createElement("strong");
        who.textContent = `${answer.author?.name ?? ""}${answer.private ? ` (${t("privateAnswer")})` : ""}: `;
        const text = document.createElement("span");
        text.textContent = answer.body;
        item.append(who, text);
        answers.append(item);
      }
      li.append(vote, body, meta, answers);
      return li;
    }),
  );
}

function chatStatusText() {
  const status = model.chatStatus;
  return status ? t(status.key, status.params) : "";
}

function renderChat() {
  const settings = room?.chatSettings;
  const line = $("chat-settings");
  const parts = [];
  if (settings && settings.enabled === false) parts.push(t("chatClosed"));
  if (settings?.slow_mode_seconds > 0) parts.push(t("slowModeOn", { seconds: settings.slow_mode_seconds }));
  line.textContent = parts.join(" ");
  line.hidden = parts.length === 0;
  const messages = room ? [...room.chat.values()].sort((a, b) => a.id - b.id) : [];
  const list = $("chat-messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.replaceChildren(
    ...messages.map((message) => {
      const li = document.createElement("li");
      li.dataset.testid = `chat-${message.id}`;
      li.className = "chat-message";
      const who = document.createElement("strong");
      who.textContent = message.account === session.account?.id ? t("you") : (message.name ?? "");
      const text = document.createElement("span");
      text.className = "chat-text";
      text.textContent = message.text;
      li.append(who, " ", text);
      return li;
    }),
  );
  if (atBottom) list.scrollTop = list.scrollHeight;
  const status = $("chat-status");
  status.textContent = chatStatusText();
  status.dataset.kind = model.chatStatus?.kind ?? "";
  status.dataset.refusal = model.chatStatus?.key ?? "";
  const ended = room?.status === "ended";
  $("chat-send").disabled = ended;
  $("chat-text").disabled = ended;
}

// ---- actions ----

async function toggleVote(questionId, on) {
  try {
    await room.vote(questionId, on);
    showNotice(null);
  } catch (error) {
    showNotice(describeError(error, t));
  }
  renderQuestions();
}

async function ask(event) {
  event.preventDefault();
  const body = $("ask-body").value.trim();
  if (!body) return;
  const status = $("ask-status");
  $("ask").disabled = true;
  try {
    const reply = await room.ask(body, $("ask-anonymous").checked);
    $("ask-body").value = "";
    status.dataset.kind = "ok";
    status.textContent = t(reply?.question?.status === "pending" ? "askedPending" : "asked");
  } catch (error) {
    status.dataset.kind = "error";
    status.textContent = t("askFailed", { reason: describeError(error, t) });
  } finally {
    $("ask").disabled = false;
  }
}

/** The server's refusal of a chat message as a key of TEXT, decided on the reply's status,
 * code and `retry_after` (never on its English words). A 403 (closed chat, ban or timeout)
 * and a 422 (blank, too long, blocked word) are told apart by reading the chat's state
 * again: its settings, the caller's sanction and the longest message allowed. */
async function chatRefusal(error, text) {
  const code = error?.code ?? "";
  if (error?.status === 429 && code === "too_many_requests") {
    const seconds = error.retryAfter ?? 1;
    return { key: room?.chatSettings?.slow_mode_seconds > 0 ? "refusal.slow" : "refusal.rate", params: { seconds } };
  }
  if (error?.status === 409 && code === "conflict") return { key: "refusal.ended" };
  if ((error?.status === 403 && code === "forbidden") || (error?.status === 422 && code === "unprocessable")) {
    let chat = null;
    try {
      chat = await session.get(`/api/v1/meetings/${encodeURIComponent(model.meetingId)}/chat?limit=1`);
    } catch {
      // Decided on what the page knows already.
    }
    if (error.status === 403) {
      const sanction = chat?.you?.sanction;
      if (sanction?.kind === "ban") return { key: "refusal.banned" };
      if (sanction?.kind === "timeout") {
        return { key: "refusal.timeout", params: { seconds: Math.max(1, Math.ceil((sanction.until - Date.now()) / 1000)) } };
      }
      if ((chat?.settings ?? room?.chatSettings)?.enabled === false) return { key: "refusal.closed" };
    } else {
      if (!text.trim()) return { key: "refusal.empty" };
      const max = chat?.limits?.max_message_length;
      if (max && [...text.trim()].length > max) return { key: "refusal.tooLong", params: { max } };
      if (max) return { key: "refusal.blocked" };
    }
  }
  return { key: "chatFailed", params: { reason: describeError(error, t) } };
}

async function sendChat(event) {
  event.preventDefault();
  const input = $("chat-text");
  const text = input.value;
  if (!text.trim()) return;
  $("chat-send").disabled = true;
  try {
    const reply = await room.postChat(text);
    input.value = "";
    model.chatStatus = reply?.message?.state === "held" ? { key: "held", kind: "info" } : null;
  } catch (error) {
    model.chatStatus = { ...(await chatRefusal(error, text)), kind: "error" };
  } finally {
    $("chat-send").disabled = false;
    renderChat();
  }
}

// ---- session ----

async function enter() {
  showNotice(null);
  if (!model.meetingId) {
    showNotice(t("noMeeting"));
    return;
  }
  const next = new MeetingRoom(session, model.meetingId, { chat: true, name: "rootcast-meeting" });
  try {
    await next.start();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showNotice(t("joinFailed", { reason: describeError(error, t) }));
    return;
  }
  room = next;
  globalThis.rootcast.room = room;
  room.addEventListener("change", ({ detail }) => {
    if (detail.what === "phase") showPhase(room.phase, t);
    else if (detail.what === "error") showNotice(describeError(room.error, t));
    else {
      if (detail.what === "all") {
        showNotice(null);
        player.nudge();
      }
      player.setMedia(room.status === "live" ? room.media : null);
      renderAll();
    }
  });
  player.setMedia(room.status === "live" ? room.media : null);
  renderAll();
}

function leave() {
  room?.stop();
  room = null;
  player.setMedia(null);
  renderAll();
}

function start() {
  player = new MeetingPlayer($("video"), renderVideo);
  globalThis.rootcast = { model, session, room: null, player };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    renderAll();
  });
  bindSession({ session, t, onLogin: enter, onLogout: leave });
  $("qa-sort").addEventListener("change", () => {
    model.sort = $("qa-sort").value;
    renderQuestions();
  });
  $("ask-form").addEventListener("submit", ask);
  $("chat-form").addEventListener("submit", sendChat);
  $("announcement-dismiss").addEventListener("click", () => {
    model.dismissedAnnouncement = room?.announcement?.number ?? 0;
    renderAnnouncement();
  });
  $("unmute").addEventListener("click", () => {
    const video = $("video");
    video.muted = !video.muted;
    if (!video.muted) video.play().catch(() => {});
    renderVideo();
  });
  $("audio-only").addEventListener("change", () => player.setForcedAudio($("audio-only").checked));
  globalThis.addEventListener("pagehide", () => player.setMedia(null));
  renderAll();
  if (session.data) enter();
}

start();
