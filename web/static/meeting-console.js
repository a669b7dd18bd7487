// meeting-console.js — the moderator's meeting console at `/meeting-console?id=<meeting>`
// (without `id`: the meetings the moderator may run and, for administrators and
// moderators, a form to schedule one: its audience chosen on the org tree as for a
// directive (unit-picker.js, with the live count of units it reaches) and its experts
// ticked by name from `GET /api/v1/meetings/experts`).
//
// One meeting: go live on a relay stream (the WHIP address and publish token for OBS, or a
// link to the browser publish page), end it, push live announcements, the Q&A queue
// (approve or reject what waits; merge duplicates, assign to an expert, put on screen, mark
// answered, archive, delete; by votes or time; askers' names shown), chat moderation
// (delete, time out, ban and lift, approve or reject held messages, slow mode, close and
// open the chat) and attendance (connections and headcount per unit and per subtree, the
// units not connected and a reminder to them), with a link to the report. zh-CN and
// English.
//
// Live state: `ConsoleRoom` joins the meeting (a moderator's join hands out the tokens of
// `meeting:<id>`, `qa:<id>@moderators`, `meeting-chat:<id>` and
// `meeting-chat:<id>@moderators`), subscribes to them on one hub connection (join/leave
// on `meeting:<id>` asks for the attendance again), and reloads the whole state from the
// store after every (re)subscription; pushes move it on between reloads. The moderators'
// channels carry the full view (pending questions, askers, private answers, held
// messages, sanctions).

import { RootcastClient, State, websocketUrl } from "./rootcast-client.js";
import { applyText, chooseLanguage, formatCount, formatDateTime, nextLanguage, saveLanguage } from "./i18n.js";
import { ApiError, Session, request } from "./api.js";
import { describeError, mergeText, translator } from "./directive-text.js";
import { bindSession, showLoggedIn, showNotice, showPhase } from "./session-ui.js";
import { sortQuestions } from "./meeting-live.js";
import { PICKER_TEXT, UnitPicker } from "./unit-picker.js";

const TEXT = mergeText(PICKER_TEXT, {
  en: {
    documentTitle: "rootcast — meeting console",
    pageTitle: "meeting console",
    refresh: "Refresh",
    meetingsTitle: "Meetings",
    noMeetings: "No meetings yet.",
    "col.title": "Title",
    "col.starts": "Starts",
    "col.status": "Status",
    "col.units": "Units",
    "col.unit": "Unit",
    "col.connections": "Connections",
    "col.headcount": "Headcount",
    "col.subtree": "Subtree",
    "col.connectedUnits": "Units connected",
    open: "Open the console",
    report: "Report",
    scheduleTitle: "Schedule a meeting",
    "field.title": "Title",
    "field.starts": "Starts",
    "field.agenda": "Agenda",
    "field.units": "Audience",
    "field.experts": "Experts who answer questions",
    "field.preapproval": "Questions wait for approval",
    targetCount: "The meeting will reach {n} units",
    targetNone: "Tick the parts of the organisation to invite.",
    noExperts: "No expert accounts yet.",
    formFailed: "Cannot load the units and experts: {reason}",
    scheduleButton: "Schedule",
    scheduled: "Scheduled for {n} units.",
    scheduleFailed: "Not scheduled: {reason}",
    controlTitle: "Meeting",
    "status.scheduled": "Scheduled",
    "status.live": "Live",
    "status.ended": "Ended",
    when: "Starts {starts} · {units} units · questions {approval}",
    whenLive: "Live since {time} · {units} units · questions {approval}",
    whenEnded: "Ended {time} · {units} units",
    "approval.on": "wait for approval",
    "approval.off": "appear at once",
    streamLabel: "Relay stream",
    goLive: "Go live",
    goLiveAgain: "Change stream",
    end: "End the meeting",
    endConfirm: "End it for everyone",
    cancel: "Cancel",
    whipLabel: "WHIP (OBS, encoders)",
    tokenLabel: "Publish token",
    publishLink: "Publish a camera from this browser",
    viewerLink: "Viewer page",
    reportLink: "Attendance report",
    listLink: "All meetings",
    announceLabel: "Live announcement",
    "level.info": "Information",
    "level.warning": "Warning",
    "level.urgent": "Urgent",
    announceButton: "Announce",
    announced: "Sent to every screen.",
    lastAnnouncement: "Last announcement ({time}): {body}",
    onScreen: "On screen",
    screenClear: "Take off the screen",
    qaTitle: "Questions",
    sortLabel: "Sort",
    "sort.votes": "Most votes",
    "sort.time": "Newest",
    pendingTitle: "Waiting for approval",
    noPending: "Nothing waiting.",
    allTitle: "All questions",
    showClosed: "Show rejected, merged and archived",
    noQuestions: "No questions yet.",
    votes: "▲ {votes}",
    anonymousBy: "{name} (anonymous to viewers)",
    "qstatus.pending": "waiting",
    "qstatus.open": "open",
    "qstatus.answered": "answered",
    "qstatus.archived": "archived",
    "qstatus.rejected": "rejected",
    "qstatus.merged": "merged",
    assignedTo: "assigned to {expert}",
    mergedInto: "merged into another question",
    approve: "Approve",
    reject: "Reject",
    toScreen: "Show on screen",
    fromScreen: "Take off screen",
    markAnswered: "Mark answered",
    archive: "Archive",
    delete: "Delete",
    assign: "Assign",
    unassigned: "(nobody)",
    merge: "Merge into",
    privateAnswer: "private, to the asker",
    actionFailed: "Not done: {reason}",
    chatTitle: "Chat",
    chatOpen: "Close the chat",
    chatClosedButton: "Open the chat",
    chatIsClosed: "The chat is closed: members cannot post.",
    slowModeOn: "Slow mode: one message every {seconds} s.",
    slowModeOff: "Slow mode is off.",
    slowLabel: "Slow mode (seconds, 0 = off)",
    apply: "Apply",
    heldTitle: "Held for review",
    noHeld: "Nothing held.",
    heldWord: "held for “{word}”",
    messagesTitle: "Messages",
    timeoutLabel: "Timeout length (seconds)",
    timeout: "Time out",
    ban: "Ban",
    sanctionsTitle: "Timeouts and bans",
    noSanctions: "None.",
    "sanction.ban": "{account}: banned",
    "sanction.timeout": "{account}: timed out until {until}",
    lift: "Lift",
    attendanceTitle: "Attendance",
    remind: "Remind units not connected",
    reminded: "Reminded {count} units.",
    totals: "{connected} of {targeted} units connected · {connections} connections · {others} without a unit (moderators, experts) · headcount {headcount}",
    notConnectedTitle: "Not connected",
    allConnected: "Every unit is connected.",
    noMeeting: "Open a meeting from the list.",
    loadFailed: "Cannot load the meeting: {reason}",
    notModerator: "You do not moderate this meeting.",
    footer: "Questions, chat and attendance arrive live; after a break the console reloads the current state.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 会议控制台",
    pageTitle: "会议控制台",
    refresh: "刷新",
    meetingsTitle: "会议",
    noMeetings: "暂无会议。",
    "col.title": "标题",
    "col.starts": "开始时间",
    "col.status": "状态",
    "col.units": "单位数",
    "col.unit": "单位",
    "col.connections": "连接数",
    "col.headcount": "到场人数",
    "col.subtree": "下级范围",
    "col.connectedUnits": "已连接单位",
    open: "打开控制台",
    report: "报告",
    scheduleTitle: "安排会议",
    "field.title": "标题",
    "field.starts": "开始时间",
    "field.agenda": "议程",
    "field.units": "参会范围",
    "field.experts": "答疑专家",
    "field.preapproval": "提问需审核后显示",
    targetCount: "会议将覆盖 {n} 个单位",
    targetNone: "请勾选要参会的组织范围。",
    noExperts: "暂无专家账号。",
    formFailed: "无法加载单位和专家：{reason}",
    scheduleButton: "安排",
    scheduled: "已安排，共 {n} 个单位。",
    scheduleFailed: "未能安排：{reason}",
    controlTitle: "会议",
    "status.scheduled": "未开始",
    "status.live": "直播中",
    "status.ended": "已结束",
    when: "开始时间 {starts} · {units} 个单位 · 提问{approval}",
    whenLive: "{time} 开始直播 · {units} 个单位 · 提问{approval}",
    whenEnded: "{time} 结束 · {units} 个单位",
    "approval.on": "需审核",
    "approval.off": "直接显示",
    streamLabel: "中继流",
    goLive: "开始直播",
    goLiveAgain: "更换流",
    end: "结束会议",
    endConfirm: "确认结束（所有人）",
    cancel: "取消",
    whipLabel: "WHIP（OBS、编码器）",
    tokenLabel: "推流令牌",
    publishLink: "用本浏览器的摄像头推流",
    viewerLink: "观看页面",
    reportLink: "参会报告",
    listLink: "全部会议",
    announceLabel: "实时公告",
    "level.info": "通知",
    "level.warning": "提醒",
    "level.urgent": "紧急",
    announceButton: "发布公告",
    announced: "已发送到所有屏幕。",
    lastAnnouncement: "最近公告（{time}）：{body}",
    onScreen: "正在展示",
    screenClear: "取消展示",
    qaTitle: "提问",
    sortLabel: "排序",
    "sort.votes": "最多赞同",
    "sort.time": "最新",
    pendingTitle: "待审核",
    noPending: "没有待审核的提问。",
    allTitle: "全部提问",
    showClosed: "显示已拒绝、已合并和已归档的提问",
    noQuestions: "暂无提问。",
    votes: "▲ {votes}",
    anonymousBy: "{name}（对观众匿名）",
    "qstatus.pending": "待审核",
    "qstatus.open": "公开",
    "qstatus.answered": "已回答",
    "qstatus.archived": "已归档",
    "qstatus.rejected": "已拒绝",
    "qstatus.merged": "已合并",
    assignedTo: "已分配给 {expert}",
    mergedInto: "已合并到其他提问",
    approve: "通过",
    reject: "拒绝",
    toScreen: "展示到屏幕",
    fromScreen: "取消展示",
    markAnswered: "标记为已回答",
    archive: "归档",
    delete: "删除",
    assign: "分配",
    unassigned: "（不分配）",
    merge: "合并到",
    privateAnswer: "仅提问人可见",
    actionFailed: "操作未完成：{reason}",
    chatTitle: "聊天",
    chatOpen: "关闭聊天",
    chatClosedButton: "开放聊天",
    chatIsClosed: "聊天已关闭：成员不能发言。",
    slowModeOn: "慢速模式：每 {seconds} 秒可发一条。",
    slowModeOff: "慢速模式已关闭。",
    slowLabel: "慢速模式（秒，0 为关闭）",
    apply: "应用",
    heldTitle: "待审核消息",
    noHeld: "没有待审核的消息。",
    heldWord: "因“{word}”待审核",
    messagesTitle: "消息",
    timeoutLabel: "禁言时长（秒）",
    timeout: "禁言",
    ban: "封禁",
    sanctionsTitle: "禁言与封禁",
    noSanctions: "无。",
    "sanction.ban": "{account}：已封禁",
    "sanction.timeout": "{account}：禁言至 {until}",
    lift: "解除",
    attendanceTitle: "参会情况",
    remind: "提醒未连接的单位",
    reminded: "已提醒 {count} 个单位。",
    totals: "{targeted} 个单位中 {connected} 个已连接 · {connections} 个连接 · {others} 个非单位连接（主持人、专家）· 到场 {headcount} 人",
    notConnectedTitle: "未连接",
    allConnected: "所有单位均已连接。",
    noMeeting: "请从列表中打开一个会议。",
    loadFailed: "无法加载会议：{reason}",
    notModerator: "你不是此会议的主持人。",
    footer: "提问、聊天和参会情况实时更新；连接中断后控制台会重新加载当前状态。",
  },
});

const $ = (testId, root = document) => root.querySelector(`[data-testid="${testId}"]`);

/** Delay before reloading after a (re)subscription, so channels coming back together cost
 * one reload. */
const RELOAD_DELAY_MS = 100;
/** Delay before asking for the attendance after a join, leave or headcount. */
const ATTENDANCE_DELAY_MS = 250;
/** The attendance is asked for at least this often, in case a push was missed. */
const ATTENDANCE_POLL_MS = 10_000;

/**
 * One meeting as its moderator sees it. Fields: `meeting`, `access`, `status`,
 * `announcement`, `screen`, `questions` (Map id → full view with `answers`), `chat` (Map
 * id → message), `held` (Map id → held message), `sanctions` (Map account → sanction),
 * `chatSettings`, `attendance`, `phase`, `error`, `reloads`. One `change` event (detail
 * `{what}`) per change.
 */
export class ConsoleRoom extends EventTarget {
  #session;
  #client = null;
  #reloadTimer = null;
  #attendanceTimer = null;
  #attendancePoll = null;
  #reloading = null;
  #reloadAgain = false;
  #removedQuestions = new Set();
  #removedMessages = new Set();
  #everLive = false;

  constructor(session, meetingId) {
    super();
    this.#session = session;
    this.id = meetingId;
    this.meeting = null;
    this.access = null;
    this.status = "";
    this.announcement = null;
    this.screen = null;
    this.questions = new Map();
    this.chat = new Map();
    this.held = new Map();
    this.sanctions = new Map();
    this.chatSettings = null;
    this.attendance = null;
    this.phase = "connecting";
    this.error = null;
    this.reloads = 0;
  }

  #changed(what) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what } }));
  }

  path(suffix = "") {
    return `/api/v1/meetings/${encodeURIComponent(this.id)}${suffix}`;
  }

  /** Joins and subscribes; rejects when the join is refused or the caller does not
   * moderate the meeting. */
  async start() {
    const joined = await this.#session.post(this.path("/join"));
    if (!joined.access?.moderator || !joined.channels?.qa_moderators) {
      throw new ApiError(403, "forbidden", "not a moderator of this meeting");
    }
    this.#takeJoin(joined);
    const client = new RootcastClient(websocketUrl(), { token: this.#session.token, name: "rootcast-meeting-console" });
    this.#client = client;
    client.addEventListener("state", ({ detail }) => {
      if (detail.state === State.CONNECTING) this.#setPhase(this.#everLive ? "reconnecting" : "connecting");
    });
    client.addEventListener("connected", () => {
      this.#everLive = true;
      this.#setPhase("live");
    });
    client.addEventListener("disconnected", ({ detail }) => {
      if (detail.code !== 0) this.#setPhase("disconnected");
    });
    const subscribe = (entry, onData, options = {}) => {
      const subscription = client.subscribe(entry.channel, { token: entry.token, ...options });
      subscription.addEventListener("publication", ({ detail }) => onData(detail.data));
      subscription.addEventListener("subscribed", () => this.#scheduleReload());
      return subscription;
    };
    const { meeting, qa_moderators: qa, chat, chat_moderators: chatModerators } = joined.channels;
    const presence = subscribe(meeting, (data) => this.#onMeetingPush(data), { joinLeave: true });
    presence.addEventListener("join", () => this.#scheduleAttendance());
    presence.addEventListener("leave", () => this.#scheduleAttendance());
    subscribe(qa, (data) => this.#onQaPush(data));
    subscribe(chat, (data) => this.#onChatPush(data));
    subscribe(chatModerators, (data) => this.#onChatPush(data));
    this.#attendancePoll = setInterval(() => this.refreshAttendance(), ATTENDANCE_POLL_MS);
    client.connect();
  }

  stop() {
    clearTimeout(this.#reloadTimer);
    clearTimeout(this.#attendanceTimer);
    clearInterval(this.#attendancePoll);
    this.#client?.disconnect();
    this.#client = null;
  }

  #setPhase(phase) {
    this.phase = phase;
    this.#changed("phase");
  }

  #scheduleReload() {
    clearTimeout(this.#reloadTimer);
    this.#reloadTimer = setTimeout(() => this.reload(), RELOAD_DELAY_MS);
  }

  #scheduleAttendance() {
    clearTimeout(this.#attendanceTimer);
    this.#attendanceTimer = setTimeout(() => this.refreshAttendance(), ATTENDANCE_DELAY_MS);
  }

  /** Reads the whole state again (one reload at a time). */
  reload() {
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      try {
        do {
          this.#reloadAgain = false;
          const [joined, list, chat, attendance] = await Promise.all([
            this.#session.post(this.path("/join")),
            this.#session.get(this.path("/questions?sort=time")),
            this.#session.get(this.path("/chat?limit=200")),
            this.#session.get(this.path("/attendance")),
          ]);
          this.#takeJoin(joined);
          this.#takeQuestions(list);
          this.#takeChat(chat);
          this.attendance = attendance;
          this.error = null;
          this.reloads += 1;
          this.#changed("all");
        } while (this.#reloadAgain);
      } catch (error) {
        this.error = error;
        this.#changed("error");
        if (!(error instanceof ApiError && error.status === 401)) {
          clearTimeout(this.#reloadTimer);
          this.#reloadTimer = setTimeout(() => this.reload(), 2_000);
        }
      } finally {
        this.#reloading = null;
      }
    })();
    return this.#reloading;
  }

  async refreshAttendance() {
    try {
      this.attendance = await this.#session.get(this.path("/attendance"));
      this.#changed("attendance");
    } catch (error) {
      this.error = error;
      this.#changed("error");
    }
  }

  #takeJoin(joined) {
    this.meeting = joined.meeting ?? this.meeting;
    this.access = joined.access ?? this.access;
    this.status = joined.state?.status ?? joined.meeting?.status ?? this.status;
    const announcement = joined.state?.announcement ?? null;
    if (announcement && (this.announcement?.number ?? 0) <= announcement.number) this.announcement = announcement;
    this.screen = joined.state?.screen ?? null;
  }

  #takeQuestions(list) {
    const next = new Map();
    for (const question of list?.questions ?? []) {
      if (this.#removedQuestions.has(question.id)) continue;
      const known = this.questions.get(question.id);
      next.set(question.id, known && (known.updated_at ?? 0) > (question.updated_at ?? 0) ? { ...question, ...known } : question);
    }
    this.questions = next;
  }

  #takeChat(chat) {
    const next = new Map();
    for (const message of chat.messages ?? []) {
      if (!this.#removedMessages.has(message.id)) next.set(message.id, message);
    }
    for (const [id, message] of this.chat) if (!next.has(id) && id > Math.max(0, ...next.keys())) next.set(id, message);
    this.chat = next;
    this.chatSettings = chat.settings ?? this.chatSettings;
    this.held = new Map((chat.moderation?.held ?? []).map((m) => [m.id, m]));
    this.sanctions = new Map((chat.moderation?.sanctions ?? []).map((s) => [s.account, s]));
  }

  #onMeetingPush(data) {
    if (data?.type === "announcement" && data.announcement) {
      if ((this.announcement?.number ?? 0) < data.announcement.number) this.announcement = data.announcement;
      this.#changed("announcement");
    } else if (data?.type === "screen") {
      this.screen = data.question ?? null;
      this.#changed("screen");
    } else if (data?.type === "state" && data.meeting) {
      this.meeting = data.meeting;
      this.status = data.meeting.status;
      this.#changed("meeting");
      this.#scheduleAttendance();
    } else if (data?.type === "headcount") {
      this.#scheduleAttendance();
    }
  }

  /** Takes a question's full view (from a push or an action's reply). */
  takeQuestion(question) {
    if (this.#removedQuestions.has(question.id)) return;
    const known = this.questions.get(question.id);
    if (known && (known.updated_at ?? 0) > (question.updated_at ?? 0)) return;
    this.questions.set(question.id, { ...question, answers: question.answers ?? known?.answers ?? [] });
    if (this.screen?.id === question.id && !["open", "answered"].includes(question.status)) {
      this.screen = null;
      this.#changed("screen");
      return;
    }
    this.#changed("questions");
  }

  #onQaPush(data) {
    if (data?.type === "question" && data.question) {
      this.takeQuestion(data.question);
    } else if (data?.type === "question_removed") {
      this.#removedQuestions.add(data.id);
      this.questions.delete(data.id);
      const wasOnScreen = this.screen?.id === data.id;
      if (wasOnScreen) this.screen = null;
      this.#changed(wasOnScreen ? "screen" : "questions");
    } else if (data?.type === "answer" && data.answer) {
      const question = this.questions.get(data.answer.question);
      if (question) {
        const answers = (question.answers ?? []).filter((a) => a.number !== data.answer.number);
        answers.push(data.answer);
        answers.sort((a, b) => a.number - b.number);
        question.answers = answers;
      }
      this.#changed("questions");
    }
  }

  /** Pushes of both chat channels (the moderators' one adds held, approved, rejected,
   * sanction and lifted). */
  #onChatPush(data) {
    switch (data?.type) {
      case "message":
      case "approved":
        if (data.message && !this.#removedMessages.has(data.message.id)) this.chat.set(data.message.id, data.message);
        if (data.message) this.held.delete(data.message.id);
        break;
      case "held":
        if (data.message) this.held.set(data.message.id, data.message);
        break;
      case "rejected":
        this.held.delete(data.id);
        break;
      case "deleted":
        this.#removedMessages.add(data.id);
        this.chat.delete(data.id);
        this.held.delete(data.id);
        break;
      case "settings":
        if (data.settings) this.chatSettings = data.settings;
        break;
      case "sanction":
        if (data.sanction) this.sanctions.set(data.sanction.account, data.sanction);
        break;
      case "lifted":
        this.sanctions.delete(data.account);
        break;
      default:
        return;
    }
    this.#changed("chat");
  }

  /** Marks a chat message gone (after a delete the caller made). */
  dropMessage(id) {
    this.#removedMessages.add(id);
    this.chat.delete(id);
    this.held.delete(id);
    this.#changed("chat");
  }
}

// ---- the page ----

const model = {
  lang: chooseLanguage(),
  meetingId: new URLSearchParams(globalThis.location.search).get("id") ?? "",
  sort: "votes",
  showClosed: false,
  media: null,
  endAsked: false,
  meetings: [],
  experts: null, // [{id, name}] the schedule form offers, once loaded
  scheduling: false,
};
const t = translator(TEXT, () => model.lang);
const session = new Session("meeting-console");
let room = null;
/** The schedule form's audience picker, once the units are loaded. */
let picker = null;

function el(tag, { className, testId, text, attrs } = {}, children = []) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (testId) element.dataset.testid = testId;
  if (text !== undefined) element.textContent = text;
  for (const [name, value] of Object.entries(attrs ?? {})) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

function button(testId, label, onClick, { danger = false, primary = false } = {}) {
  const b = el("button", {
    className: `${primary ? "primary-button" : "secondary-button"}${danger ? " danger" : ""} mc-small`,
    testId,
    text: label,
    attrs: { type: "button" },
  });
  b.addEventListener("click", onClick);
  return b;
}

function renderAll() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  const loggedIn = Boolean(session.data);
  showLoggedIn(loggedIn, session.account, t);
  $("list-view").hidden = !loggedIn || Boolean(model.meetingId);
  $("meeting-view").hidden = !loggedIn || !model.meetingId || !room;
  // The list view has no live connection: its badge says whether the hub answered.
  showPhase(room ? room.phase : !loggedIn ? "loggedOut" : model.meetingId ? "connecting" : "live", t);
  if (!model.meetingId) {
    picker?.renderText();
    updateScheduleButton();
    renderList();
    return;
  }
  renderMeeting();
  renderQuestions();
  renderChat();
  renderAttendance();
}

/** An expert's display name (the meeting lists them), or the account id. */
function expertName(accountId) {
  return room?.meeting?.expert_names?.[accountId] ?? accountId;
}

// ---- list view ----

function renderList() {
  const rows = model.meetings.map((meeting) => {
    const link = el("a", { testId: "open-meeting", text: t("open"), attrs: { href: `/meeting-console?id=${encodeURIComponent(meeting.id)}` } });
    const report = el("a", { text: t("report"), attrs: { href: `/meeting-report?id=${encodeURIComponent(meeting.id)}` } });
    const row = el("tr", { testId: `meeting-${meeting.id}` }, [
      el("td", { text: meeting.title }),
      el("td", { text: formatDateTime(meeting.starts_at, model.lang) }),
      el("td", { text: t(`status.${meeting.status}`) }),
      el("td", { text: formatCount(meeting.unit_count ?? 0, model.lang) }),
      el("td", { className: "mc-actions" }, [link, report]),
    ]);
    row.dataset.status = meeting.status;
    return row;
  });
  $("meeting-list").replaceChildren(...rows);
  $("no-meetings").hidden = rows.length > 0;
}

async function loadList() {
  try {
    model.meetings = await session.get("/api/v1/meetings");
    showNotice(null);
  } catch (error) {
    showNotice(describeError(error, t));
  }
  renderAll();
}

// ---- the schedule form ----

/** Loads what the schedule form offers, for those who schedule meetings: the org tree for
 * the audience and the expert accounts by name. */
async function loadScheduleForm() {
  const allowed = ["admin", "moderator"].includes(session.account?.role);
  $("schedule-section").hidden = !allowed;
  if (!allowed) return;
  try {
    const [units, experts] = await Promise.all([session.get("/api/v1/org/units"), session.get("/api/v1/meetings/experts")]);
    picker?.remove();
    picker = new UnitPicker($("picker"), {
      units: Array.isArray(units) ? units : [],
      t,
      lang: () => model.lang,
      onChange: updateScheduleButton,
    });
    model.experts = Array.isArray(experts) ? experts : [];
  } catch (error) {
    const status = $("schedule-status");
    status.dataset.kind = "error";
    status.textContent = t("formFailed", { reason: describeError(error, t) });
  }
  renderExperts();
  updateScheduleButton();
}

function renderExperts() {
  const experts = model.experts ?? [];
  $("expert-list").replaceChildren(
    ...experts.map((expert) =>
      el("label", { className: "chip" }, [
        el("input", { testId: `expert-${expert.id}`, attrs: { type: "checkbox", value: expert.id } }),
        el("span", { text: expert.name }),
      ]),
    ),
  );
  $("no-experts").hidden = model.experts?.length !== 0;
}

function updateScheduleButton() {
  $("schedule").disabled = model.scheduling || !picker || picker.count() === 0;
}

async function schedule(event) {
  event.preventDefault();
  const target = picker?.target();
  if (!target || model.scheduling) return;
  model.scheduling = true;
  updateScheduleButton();
  const status = $("schedule-status");
  const starts = new Date($("schedule-starts").value).getTime();
  const experts = [...$("expert-list").querySelectorAll("input:checked")].map((box) => box.value);
  try {
    const reply = await session.post("/api/v1/meetings", {
      title: $("schedule-title").value.trim(),
      agenda: $("schedule-agenda").value,
      starts_at: Number.isFinite(starts) ? starts : Date.now(),
      target,
      experts,
      qa_preapproval: $("schedule-preapproval").checked,
    });
    status.dataset.kind = "ok";
    status.textContent = t("scheduled", { n: formatCount(reply.meeting.unit_count ?? 0, model.lang) });
    $("schedule-form").reset();
    picker?.clear();
    model.meetings = [reply.meeting, ...model.meetings.filter((m) => m.id !== reply.meeting.id)];
    renderList();
  } catch (error) {
    status.dataset.kind = "error";
    status.textContent = t("scheduleFailed", { reason: describeError(error, t) });
  } finally {
    model.scheduling = false;
    updateScheduleButton();
  }
}

// ---- one meeting ----

function renderMeeting() {
  const meeting = room?.meeting;
  $("meeting-title").textContent = meeting?.title ?? "";
  const status = $("meeting-status");
  status.dataset.status = room?.status ?? "";
  status.textContent = room?.status ? t(`status.${room.status}`) : "";
  const units = meeting?.unit_count ?? 0;
  const approval = t(meeting?.qa_preapproval ? "approval.on" : "approval.off");
  let when = "";
  if (meeting && room.status === "live") when = t("whenLive", { time: formatDateTime(meeting.live_at, model.lang), units, approval });
  else if (meeting && room.status === "ended") when = t("whenEnded", { time: formatDateTime(meeting.ended_at, model.lang), units });
  else if (meeting) when = t("when", { starts: formatDateTime(meeting.starts_at, model.lang), units, approval });
  $("meeting-when").textContent = when;
  const ended = room?.status === "ended";
  const stream = $("stream");
  if (!stream.value && meeting) stream.value = meeting.stream ?? `meeting-${meeting.id}`;
  stream.disabled = ended;
  $("go-live").disabled = ended;
  $("go-live").textContent = t(room?.status === "live" ? "goLiveAgain" : "goLive");
  // Ending takes a second, deliberate click on a button that appears next to it.
  $("end").disabled = ended || model.endAsked;
  $("end-confirm-box").hidden = ended || !model.endAsked;
  const media = model.media;
  $("media").hidden = !media || ended;
  if (media) {
    $("whip-url").textContent = new URL(media.whip, globalThis.location.href).href;
    $("publish-token").textContent = media.token;
    $("publish-link").href = `/publish?stream=${encodeURIComponent(media.stream)}&token=${encodeURIComponent(media.token)}`;
  }
  const id = encodeURIComponent(model.meetingId);
  $("viewer-link").href = `/meeting?id=${id}`;
  $("report-link").href = `/meeting-report?id=${id}`;
  $("announce").disabled = ended;
  const last = room?.announcement;
  $("last-announcement").textContent = last ? t("lastAnnouncement", { time: formatDateTime(last.at, model.lang), body: last.body }) : "";
  const screen = room?.screen;
  $("screen").hidden = !screen;
  if (screen) {
    $("screen").dataset.question = screen.id;
    $("screen-body").textContent = screen.body;
  }
  $("remind").disabled = ended;
}

function askerText(question) {
  const asker = question.asker;
  if (!asker) return "";
  const name = asker.unit ? `${asker.name} · ${asker.unit}` : asker.name;
  return question.anonymous ? t("anonymousBy", { name }) : name;
}

async function act(statusId, action) {
  const status = $(statusId);
  try {
    const reply = await action();
    status.textContent = "";
    delete status.dataset.kind;
    return reply;
  } catch (error) {
    status.dataset.kind = "error";
    status.textContent = t("actionFailed", { reason: describeError(error, t) });
    return null;
  }
}

function questionAction(step, id) {
  return act("qa-status", async () => {
    const path = `/api/v1/questions/${encodeURIComponent(id)}`;
    const reply = step === "delete" ? await request("DELETE", path, { token: session.token }) : await session.post(`${path}/${step}`);
    if (reply?.question && reply.question.status !== "deleted") room.takeQuestion(reply.question);
  });
}

function questionItem(question) {
  const li = el("li", { className: "question mc-question", testId: `cq-${question.id}` });
  li.dataset.status = question.status;
  const onScreen = room.screen?.id === question.id;
  li.toggleAttribute("data-on-screen", onScreen);
  const votes = el("span", { className: "vote-button", testId: "votes", text: t("votes", { votes: question.votes }) });
  const body = el("p", { className: "question-body", testId: "question-body", text: question.body });
  const meta = [askerText(question), formatDateTime(question.asked_at, model.lang), t(`qstatus.${question.status}`)];
  if (question.assigned_to) meta.push(t("assignedTo", { expert: expertName(question.assigned_to) }));
  if (question.merged_into) meta.push(t("mergedInto"));
  if (onScreen) meta.push(t("onScreen"));
  const info = el("span", { className: "muted", testId: "question-meta", text: meta.filter(Boolean).join(" · ") });
  const answers = el(
    "ul",
    { className: "answers" },
    (question.answers ?? []).map((answer) => {
      const item = el("li", { testId: "answer" }, [
        el("strong", { text: `${answer.author?.name ?? ""}${answer.private ? ` (${t("privateAnswer")})` : ""}: ` }),
        el("span", { text: answer.body }),
      ]);
      item.toggleAttribute("data-private", answer.private);
      return item;
    }),
  );
  const actions = el("div", { className: "mc-actions" });
  const ended = room.status === "ended";
  const status = question.status;
  if (status === "pending") {
    actions.append(button("approve", t("approve"), () => questionAction("approve", question.id), { primary: true }));
  }
  if (["pending", "open"].includes(status)) actions.append(button("reject", t("reject"), () => questionAction("reject", question.id)));
  if (["open", "answered"].includes(status) && !ended) {
    actions.append(
      button("screen", t(onScreen ? "fromScreen" : "toScreen"), () =>
        act("qa-status", () => session.post(room.path("/screen"), { question: onScreen ? null : question.id })),
      ),
    );
  }
  if (status === "open") actions.append(button("answered", t("markAnswered"), () => questionAction("answered", question.id)));
  if (["open", "answered"].includes(status)) actions.append(button("archive", t("archive"), () => questionAction("archive", question.id)));
  actions.append(button("delete", t("delete"), () => questionAction("delete", question.id), { danger: true }));
  if (["open", "answered"].includes(status)) {
    const experts = room.meeting?.experts ?? [];
    if (experts.length > 0) {
      const select = el("select", { testId: "assign-select" }, [
        el("option", { text: t("unassigned"), attrs: { value: "" } }),
        ...experts.map((expert) => el("option", { text: expertName(expert), attrs: { value: expert } })),
      ]);
      select.value = question.assigned_to ?? "";
      actions.append(
        select,
        button("assign", t("assign"), () =>
          act("qa-status", async () => {
            const reply = await session.post(`/api/v1/questions/${encodeURIComponent(question.id)}/assign`, { expert: select.value || null });
            if (reply?.question) room.takeQuestion(reply.question);
          }),
        ),
      );
    }
    const others = [...room.questions.values()].filter((q) => q.id !== question.id && ["open", "answered"].includes(q.status));
    if (others.length > 0) {
      const select = el(
        "select",
        { testId: "merge-select" },
        others.map((q) => el("option", { text: q.body.slice(0, 60), attrs: { value: q.id } })),
      );
      actions.append(
        select,
        button("merge", t("merge"), () =>
          act("qa-status", async () => {
            const reply = await session.post(`/api/v1/questions/${encodeURIComponent(question.id)}/merge`, { into: select.value });
            if (reply?.question) room.takeQuestion(reply.question);
            if (reply?.into) room.takeQuestion(reply.into);
          }),
        ),
      );
    }
  }
  li.append(votes, body, info, answers, actions);
  return li;
}

function renderQuestions() {
  if (!room) return;
  const all = sortQuestions(room.questions.values(), model.sort);
  const pending = all.filter((q) => q.status === "pending");
  const closed = new Set(["rejected", "merged", "archived"]);
  const rest = all.filter((q) => q.status !== "pending" && (model.showClosed || !closed.has(q.status)));
  $("pending-questions").replaceChildren(...pending.map(questionItem));
  $("no-pending").hidden = pending.length > 0;
  $("console-questions").replaceChildren(...rest.map(questionItem));
  $("no-questions").hidden = rest.length > 0;
}

function sanction(kind, account) {
  const seconds = Number($("timeout-seconds").value) || 300;
  return act("chat-status", async () => {
    const reply = await session.post(room.path(`/chat/${kind}`), kind === "timeout" ? { account, seconds } : { account });
    if (reply?.sanction) room.sanctions.set(reply.sanction.account, reply.sanction);
    renderChat();
  });
}

function renderChat() {
  if (!room) return;
  const me = session.account?.id;
  const settings = room.chatSettings;
  const closed = settings?.enabled === false;
  const toggle = $("chat-toggle");
  toggle.textContent = t(closed ? "chatClosedButton" : "chatOpen");
  toggle.dataset.enabled = String(!closed);
  toggle.disabled = room.status === "ended";
  const lines = [];
  if (closed) lines.push(t("chatIsClosed"));
  lines.push(settings?.slow_mode_seconds > 0 ? t("slowModeOn", { seconds: settings.slow_mode_seconds }) : t("slowModeOff"));
  $("chat-settings").textContent = lines.join(" ");
  const slow = $("slow-seconds");
  if (document.activeElement !== slow) slow.value = String(settings?.slow_mode_seconds ?? 0);

  const held = [...room.held.values()].sort((a, b) => a.id - b.id);
  $("held-messages").replaceChildren(
    ...held.map((message) =>
      el("li", { className: "chat-message", testId: `held-${message.id}` }, [
        el("strong", { text: `${message.name ?? ""} ` }),
        el("span", { className: "chat-text", text: message.text }),
        el("span", { className: "muted", text: ` · ${t("heldWord", { word: message.held_word ?? "" })} ` }),
        el("span", { className: "mc-actions" }, [
          button("held-approve", t("approve"), () =>
            act("chat-status", async () => {
              await session.post(room.path("/chat/approve"), { message: message.id });
            }), { primary: true }),
          button("held-reject", t("reject"), () =>
            act("chat-status", async () => {
              await session.post(room.path("/chat/reject"), { message: message.id });
              room.held.delete(message.id);
              renderChat();
            })),
        ]),
      ]),
    ),
  );
  $("no-held").hidden = held.length > 0;

  const messages = [...room.chat.values()].sort((a, b) => a.id - b.id);
  const list = $("console-chat");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
  list.replaceChildren(
    ...messages.map((message) => {
      const actions = [
        button("chat-delete", t("delete"), () =>
          act("chat-status", async () => {
            await session.post(room.path("/chat/delete"), { message: message.id });
            room.dropMessage(message.id);
          }), { danger: true }),
      ];
      if (message.account !== me) {
        actions.push(button("chat-timeout", t("timeout"), () => sanction("timeout", message.account)));
        actions.push(button("chat-ban", t("ban"), () => sanction("ban", message.account), { danger: true }));
      }
      const li = el("li", { className: "chat-message", testId: `cchat-${message.id}` }, [
        el("strong", { text: `${message.name ?? ""}${message.unit ? ` · ${message.unit}` : ""} ` }),
        el("span", { className: "chat-text", text: message.text }),
        el("span", { className: "mc-actions" }, actions),
      ]);
      li.dataset.account = message.account ?? "";
      return li;
    }),
  );
  if (atBottom) list.scrollTop = list.scrollHeight;

  const sanctions = [...room.sanctions.values()];
  // Names of the accounts the console has seen in the chat (a sanction names an account id).
  const names = new Map([...room.chat.values(), ...room.held.values()].map((m) => [m.account, m.name]));
  $("sanctions").replaceChildren(
    ...sanctions.map((s) => {
      const li = el("li", { className: "chat-message", testId: `sanction-${s.account}` }, [
        el("span", {
          text: t(`sanction.${s.kind}`, { account: names.get(s.account) ?? s.account, until: formatDateTime(s.until, model.lang) }),
        }),
        " ",
        button("lift", t("lift"), () =>
          act("chat-status", async () => {
            await session.post(room.path("/chat/unban"), { account: s.account });
            room.sanctions.delete(s.account);
            renderChat();
          })),
      ]);
      li.dataset.kind = s.kind;
      return li;
    }),
  );
  $("no-sanctions").hidden = sanctions.length > 0;
}

function renderAttendance() {
  const data = room?.attendance;
  if (!data) return;
  const headcount = (data.units ?? []).reduce((sum, u) => sum + (u.headcount ?? 0), 0);
  const totals = $("attendance-totals");
  totals.textContent = t("totals", {
    connected: formatCount(data.connected_units, model.lang),
    targeted: formatCount(data.targeted_units, model.lang),
    connections: formatCount(data.connections, model.lang),
    others: formatCount(data.connections_without_unit, model.lang),
    headcount: formatCount(headcount, model.lang),
  });
  totals.dataset.connectedUnits = String(data.connected_units);
  totals.dataset.connections = String(data.connections);
  const units = [...(data.units ?? [])].sort((a, b) => b.connections - a.connections || a.path.localeCompare(b.path));
  $("attendance-units").replaceChildren(
    ...units.map((unit) => {
      const row = el("tr", { testId: `att-${unit.unit}` }, [
        el("td", { text: unit.name || unit.unit }),
        el("td", { testId: "connections", text: formatCount(unit.connections, model.lang) }),
        el("td", { testId: "headcount", text: unit.headcount == null ? "—" : formatCount(unit.headcount, model.lang) }),
      ]);
      row.dataset.connections = String(unit.connections);
      row.dataset.headcount = unit.headcount == null ? "" : String(unit.headcount);
      row.toggleAttribute("data-connected", unit.connections > 0);
      return row;
    }),
  );
  const depth = (path) => path.split("/").filter(Boolean).length;
  $("attendance-subtrees").replaceChildren(
    ...(data.by_subtree ?? [])
      .filter((s) => s.targeted_units > 1 || depth(s.path) < Math.max(...(data.by_subtree ?? []).map((x) => depth(x.path))))
      .map((s) => {
        const row = el("tr", { testId: `sub-${s.unit}` }, [
          el("td", { className: `mc-depth-${Math.min(depth(s.path), 4)}`, text: s.name || s.unit }),
          el("td", { text: `${formatCount(s.connected_units, model.lang)} / ${formatCount(s.targeted_units, model.lang)}` }),
          el("td", { text: formatCount(s.connections, model.lang) }),
          el("td", { text: formatCount(s.headcount, model.lang) }),
        ]);
        row.dataset.connectedUnits = String(s.connected_units);
        return row;
      }),
  );
  const names = new Map((data.units ?? []).map((u) => [u.unit, u.name || u.unit]));
  const missing = data.not_connected ?? [];
  $("not-connected").replaceChildren(
    ...(missing.length > 0
      ? missing.map((id) => el("li", { className: "chip", testId: `missing-${id}`, text: names.get(id) ?? id }))
      : [el("li", { className: "muted", text: t("allConnected") })]),
  );
}

// ---- actions ----

async function goLive(event) {
  event.preventDefault();
  const stream = $("stream").value.trim();
  await act("announce-status", async () => {
    const reply = await session.post(room.path("/live"), stream ? { stream } : {});
    model.media = reply.media;
    room.meeting = reply.meeting;
    room.status = reply.meeting.status;
    renderMeeting();
  });
}

function askToEnd(asked) {
  model.endAsked = asked;
  renderMeeting();
}

async function endMeeting() {
  model.endAsked = false;
  await act("announce-status", async () => {
    const reply = await session.post(room.path("/end"));
    room.meeting = reply.meeting;
    room.status = reply.meeting.status;
  });
  renderAll();
}

async function announce(event) {
  event.preventDefault();
  const body = $("announce-body").value.trim();
  if (!body) return;
  const reply = await act("announce-status", () => session.post(room.path("/announcements"), { body, level: $("announce-level").value }));
  if (reply) {
    $("announce-body").value = "";
    const status = $("announce-status");
    status.dataset.kind = "ok";
    status.textContent = t("announced");
  }
}

async function remind() {
  const reply = await act("remind-status", () => session.post(room.path("/remind")));
  if (reply) {
    const status = $("remind-status");
    status.dataset.kind = "ok";
    status.dataset.count = String(reply.reminded.length);
    status.textContent = t("reminded", { count: reply.reminded.length });
  }
}

async function changeChat(settings) {
  await act("chat-status", async () => {
    const reply = await session.post(room.path("/chat/settings"), settings);
    if (reply?.settings) room.chatSettings = reply.settings;
    renderChat();
  });
}

// ---- session ----

async function enter() {
  showNotice(null);
  if (!model.meetingId) {
    renderAll();
    await Promise.all([loadList(), loadScheduleForm()]);
    return;
  }
  const next = new ConsoleRoom(session, model.meetingId);
  try {
    await next.start();
  } catch (error) {
    next.stop();
    if (error instanceof ApiError && error.status === 401) return;
    showNotice(error instanceof ApiError && error.status === 403 ? t("notModerator") : t("loadFailed", { reason: describeError(error, t) }));
    return;
  }
  room = next;
  globalThis.rootcastConsole.room = room;
  room.addEventListener("change", ({ detail }) => {
    if (detail.what === "phase") showPhase(room.phase, t);
    else if (detail.what === "error") showNotice(describeError(room.error, t));
    else if (detail.what === "questions") renderQuestions();
    else if (detail.what === "screen") {
      renderMeeting();
      renderQuestions();
    }
    else if (detail.what === "chat") renderChat();
    else if (detail.what === "attendance") renderAttendance();
    else {
      if (detail.what === "all") showNotice(null);
      renderAll();
    }
  });
  renderAll();
}

function leave() {
  room?.stop();
  room = null;
  model.media = null;
  picker?.remove();
  picker = null;
  model.experts = null;
  renderExperts();
  renderAll();
}

function start() {
  globalThis.rootcastConsole = { model, session, room: null };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    renderAll();
  });
  bindSession({ session, t, onLogin: enter, onLogout: leave });
  $("list-refresh").addEventListener("click", loadList);
  $("schedule-form").addEventListener("submit", schedule);
  $("live-form").addEventListener("submit", goLive);
  $("end").addEventListener("click", () => askToEnd(true));
  $("end-cancel").addEventListener("click", () => askToEnd(false));
  $("end-confirm").addEventListener("click", endMeeting);
  $("announce-form").addEventListener("submit", announce);
  $("screen-clear").addEventListener("click", () => act("qa-status", () => session.post(room.path("/screen"), { question: null })));
  $("qa-sort").addEventListener("change", () => {
    model.sort = $("qa-sort").value;
    renderQuestions();
  });
  $("show-closed").addEventListener("change", () => {
    model.showClosed = $("show-closed").checked;
    renderQuestions();
  });
  $("chat-toggle").addEventListener("click", () => changeChat({ enabled: room?.chatSettings?.enabled === false }));
  $("slow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    changeChat({ slow_mode_seconds: Math.max(0, Math.floor(Number($("slow-seconds").value) || 0)) });
  });
  $("remind").addEventListener("click", remind);
  renderAll();
  if (session.data) enter();
}

start();
