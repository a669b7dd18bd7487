// inbox.js — a unit's inbox at `/inbox`: the directives sent to the unit, newest first,
// with a banner when one arrives, receipts and read marks sent on their own, and the
// officers' Acknowledge button.
//
// Log in with a username and password, or open `/inbox?credential=…` on a meeting-room
// screen: the page logs in with the unit credential and removes it from the address bar.
//
// REST (api.js): GET /api/v1/me, GET /api/v1/inbox?unit=&after=<seq>,
// POST /api/v1/directives/{id}/receipt|read|ack, POST /api/v1/feedback.
// Live: the login token connects to the hub, which subscribes the connection to
// `unit:<unit id>` itself. Publications there are `{"type":"entry","entry":{seq, kind,
// directive, state}}` (kind sent | corrected | retracted) and `{"type":"state","state":…}`.
// Entries are kept by `seq`, so a push and a catch-up never show one twice; on every
// (re)connect, and when a pushed `seq` skips one, the page asks for everything after the
// last `seq` it has.

import { RootcastClient, State, websocketUrl } from "./rootcast-client.js";
import { applyText, chooseLanguage, formatDateTime, nextLanguage, saveLanguage } from "./i18n.js";
import { ApiError, Session } from "./api.js";
import { describeError, mergeText, translator } from "./directive-text.js";
import { bindSession, showLoggedIn, showNotice, showPhase } from "./session-ui.js";
import { renderMarkdown } from "./markdown.js";
import { stageOf } from "./org-tree.js";

const TEXT = mergeText({
  en: {
    documentTitle: "rootcast — inbox",
    pageTitle: "inbox",
    newDirective: "New directive",
    newCorrection: "Corrected directive",
    open: "Open",
    dismiss: "Dismiss",
    inboxTitle: "Directives",
    noEntries: "Nothing here yet.",
    whatChanged: "What changed",
    "change.title": "Title: “{before}” → “{after}”",
    "change.priority": "Priority: {before} → {after}",
    "change.deadline": "Deadline: {before} → {after}",
    "change.ack_required": "Acknowledgement required: {before} → {after}",
    "change.body": "The text was changed.",
    "change.note": "Note: {note}",
    yes: "yes",
    no: "no",
    acknowledge: "Acknowledge",
    acknowledging: "Acknowledging…",
    ackedBy: "Acknowledged by {who} at {time}",
    ackOfficersOnly: "Waiting for an officer of the unit to acknowledge.",
    noAckNeeded: "No acknowledgement is asked for.",
    retractedNote: "This directive was retracted{reason}.",
    sentAt: "Sent {time}",
    feedbackTitle: "Reply or report a problem",
    kindReply: "Reply",
    kindProblem: "Problem",
    sendFeedback: "Send",
    feedbackSent: "Sent.",
    feedbackFailed: "Not sent: {reason}",
    ackFailed: "Not acknowledged: {reason}",
    loadFailed: "Cannot load the inbox: {reason}",
    noUnit: "This account belongs to no unit, so it has no inbox.",
    footer: "New directives arrive live; after a break in the connection the page fetches what it missed.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 收件箱",
    pageTitle: "收件箱",
    newDirective: "新指令",
    newCorrection: "指令已更正",
    open: "查看",
    dismiss: "关闭",
    inboxTitle: "指令",
    noEntries: "暂无指令。",
    whatChanged: "更正内容",
    "change.title": "标题：“{before}” → “{after}”",
    "change.priority": "优先级：{before} → {after}",
    "change.deadline": "截止时间：{before} → {after}",
    "change.ack_required": "需要确认：{before} → {after}",
    "change.body": "正文已修改。",
    "change.note": "说明：{note}",
    yes: "是",
    no: "否",
    acknowledge: "确认收到",
    acknowledging: "正在确认…",
    ackedBy: "{who} 已于 {time} 确认",
    ackOfficersOnly: "等待本单位负责人确认。",
    noAckNeeded: "此指令无需确认。",
    retractedNote: "此指令已撤回{reason}。",
    sentAt: "发送于 {time}",
    feedbackTitle: "回复或反映问题",
    kindReply: "回复",
    kindProblem: "问题",
    sendFeedback: "发送",
    feedbackSent: "已发送。",
    feedbackFailed: "未发送：{reason}",
    ackFailed: "确认失败：{reason}",
    loadFailed: "无法加载收件箱：{reason}",
    noUnit: "此账号不属于任何单位，没有收件箱。",
    footer: "新指令实时送达；连接中断后页面会自动补收遗漏的指令。",
  },
});

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

/** Longest feedback subject the hub takes. */
const SUBJECT_MAX_CHARS = 200;

const model = {
  lang: chooseLanguage(),
  phase: "loggedOut",
  everLive: false,
  unit: null, // {id, name, …} from /api/v1/me
  unitId: "",
  seen: new Set(), // seqs taken in
  lastSeq: 0,
  items: new Map(), // directive id → item, see takeEntry()
  openId: null,
  bannerId: null,
  loaded: false,
};
const t = translator(TEXT, () => model.lang);
const session = new Session("inbox");
let client = null;
/** Steps already reported, "receipt:<id>@<version>" / "read:<id>@<version>", so each goes
 * once per version (a correction asks for them again). */
const reported = new Set();

// ---- entries ----

/**
 * Takes in one inbox entry: the item of its directive gets the newest version (a
 * correction keeps the one before, to show what changed), the state of the newest entry,
 * and a retraction mark. Returns the item, or null for an entry already taken in.
 */
function takeEntry(entry) {
  if (!entry?.directive?.id || typeof entry.seq !== "number") return null;
  if (model.seen.has(entry.seq)) return null;
  model.seen.add(entry.seq);
  model.lastSeq = Math.max(model.lastSeq, entry.seq);
  const directive = entry.directive;
  let item = model.items.get(directive.id);
  if (!item) {
    item = {
      id: directive.id,
      directive,
      previous: null,
      changes: null,
      state: entry.state ?? null,
      seq: entry.seq,
      kind: entry.kind,
      note: "",
      retracted: false,
      reason: "",
    };
    model.items.set(directive.id, item);
  } else if (entry.seq > item.seq) {
    if (entry.kind === "corrected" && (directive.version ?? 0) > (item.directive.version ?? 0)) item.previous = item.directive;
    item.directive = { ...item.directive, ...directive };
    item.state = entry.state ?? item.state;
    item.seq = entry.seq;
    item.kind = entry.kind;
  } else if (entry.kind === "sent" && (directive.version ?? 0) < (item.directive.version ?? 0)) {
    // An older entry caught up after a newer one: it is the version before.
    item.previous ??= directive;
  }
  if (entry.kind === "corrected" && entry.seq >= item.seq) {
    item.note = entry.note ?? directive.note ?? "";
    // The hub's own list of what changed ({field, before, after}), when it sends one.
    item.changes = Array.isArray(entry.changes) ? entry.changes : null;
  }
  if (entry.kind === "retracted" || item.directive.retracted_at != null) {
    item.retracted = true;
    item.reason = entry.reason ?? entry.note ?? directive.retraction_note ?? item.reason;
  }
  return item;
}

/** A colleague's step: fill in what the item's state lacks (states only move forward). */
function takeState(state) {
  const item = model.items.get(state?.directive_id);
  if (!item) return null;
  // A state is for one version; a correction starts the unit again.
  const knownVersion = item.state?.version ?? 0;
  if (state.version != null && state.version < knownVersion) return null;
  if (state.version != null && state.version > knownVersion) {
    item.state = { ...state, stage: stageOf(state) };
    return item;
  }
  const merged = { ...(item.state ?? {}) };
  for (const key of ["delivered_at", "read_at", "acked_at", "acked_by"]) {
    if (merged[key] == null && state[key] != null) merged[key] = state[key];
  }
  merged.stage = stageOf(merged);
  item.state = merged;
  return item;
}

function sortedItems() {
  return [...model.items.values()].sort((a, b) => b.seq - a.seq);
}

function isUnread(item) {
  return !item.retracted && item.state?.read_at == null;
}

// ---- catching up and live pushes ----

let catchingUp = null;
let catchUpAgain = false;

/** Fetches every entry after the last seq; runs once at a time (a request made meanwhile
 * runs again afterwards). */
function catchUp() {
  if (catchingUp) {
    catchUpAgain = true;
    return catchingUp;
  }
  catchingUp = (async () => {
    try {
      do {
        catchUpAgain = false;
        const after = model.lastSeq;
        const reply = await session.get(`/api/v1/inbox?unit=${encodeURIComponent(model.unitId)}&after=${after}`);
        const fresh = [];
        for (const entry of reply?.entries ?? []) {
          const item = takeEntry(entry);
          if (item) fresh.push(item);
        }
        const firstLoad = !model.loaded;
        model.loaded = true;
        if (fresh.length > 0 || firstLoad) {
          // The newest unread one is announced: on first load, and after a reconnect.
          const unread = sortedItems().find((item) => isUnread(item) && (firstLoad || fresh.includes(item)));
          if (unread) showBanner(unread);
          renderList();
          renderDetail();
          sendReceipts();
        }
      } while (catchUpAgain);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        showNotice(t("loadFailed", { reason: describeError(error, t) }));
      }
    } finally {
      catchingUp = null;
    }
  })();
  return catchingUp;
}

/** What changed in a correction and why, from the directive's versions (for entries that
 * do not carry them). */
async function loadChanges(item) {
  const version = item.directive.version;
  if (item.changes || item.changesFor === version || !(version > 1)) return;
  item.changesFor = version;
  try {
    const reply = await session.get(`/api/v1/directives/${encodeURIComponent(item.id)}/versions`);
    const record = (reply?.versions ?? []).find((v) => v.version === version);
    if (!record || item.directive.version !== version) return;
    item.changes = Array.isArray(record.changes) ? record.changes : null;
    item.note = record.note ?? item.note;
    if (model.openId === item.id) renderDetail();
  } catch (error) {
    item.changesFor = undefined;
    if (!(error instanceof ApiError && error.status === 401)) console.info("rootcast: versions not loaded: %s", error.message);
  }
}

function onPush(data) {
  if (data?.type === "entry") {
    const gap = data.entry?.seq > model.lastSeq + 1 && model.loaded;
    const item = takeEntry(data.entry);
    if (item) {
      if (data.entry.kind !== "retracted") showBanner(item);
      renderList();
      if (model.openId === item.id) {
        renderDetail();
        if (!item.retracted) loadChanges(item);
      }
      sendReceipts();
    }
    if (gap) catchUp();
  } else if (data?.type === "state") {
    const item = takeState(data.state);
    if (item) {
      renderList();
      if (model.openId === item.id) renderDetail();
    }
  }
}

/** A receipt for every directive shown that has not been marked delivered. */
function sendReceipts() {
  for (const item of model.items.values()) {
    const key = `receipt:${item.id}@${item.directive.version}`;
    if (item.retracted || item.state?.delivered_at != null || reported.has(key)) continue;
    reported.add(key);
    report(item, "receipt");
  }
}

async function report(item, step) {
  try {
    const reply = await session.post(`/api/v1/directives/${encodeURIComponent(item.id)}/${step}`, { unit: model.unitId });
    if (reply?.state) takeState(reply.state);
    renderList();
    if (model.openId === item.id) renderDetail();
  } catch (error) {
    // A receipt that fails is sent again with the next catch-up; nothing to show.
    reported.delete(`${step}:${item.id}@${item.directive.version}`);
    if (!(error instanceof ApiError && error.status === 401)) console.info("rootcast: %s not reported: %s", step, error.message);
  }
}

// ---- rendering ----

function renderText() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  showPhase(model.phase, t);
  showLoggedIn(Boolean(session.data), session.account, t);
  $("unit-name").textContent = model.unit?.name ?? "";
  renderBanner();
  renderList();
  renderDetail();
}

function priorityTag(element, priority) {
  element.dataset.priority = priority;
  element.textContent = t(`priority.${priority}`);
}

function renderList() {
  const items = sortedItems();
  $("no-entries").hidden = items.length > 0;
  $("entries").replaceChildren(
    ...items.map((item) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "directive-item";
      button.dataset.testid = `entry-${item.id}`;
      button.dataset.priority = item.directive.priority;
      button.dataset.stage = stageOf(item.state);
      button.toggleAttribute("data-retracted", item.retracted);
      button.toggleAttribute("data-unread", isUnread(item));
      if (model.openId === item.id) button.setAttribute("aria-current", "true");
      const tag = document.createElement("span");
      tag.className = "priority-tag";
      priorityTag(tag, item.directive.priority);
      const title = document.createElement("span");
      title.className = "directive-title";
      title.textContent = item.directive.title;
      const meta = document.createElement("span");
      meta.className = "muted";
      const parts = [formatDateTime(item.directive.created_at, model.lang)];
      if (item.retracted) parts.push(t("retracted"));
      else if ((item.directive.version ?? 1) > 1) parts.push(t("corrected", { version: item.directive.version }));
      parts.push(t(`stage.${stageOf(item.state)}`));
      meta.textContent = parts.join(" · ");
      button.append(tag, title, meta);
      button.addEventListener("click", () => openItem(item.id));
      li.append(button);
      return li;
    }),
  );
}

function showBanner(item) {
  model.bannerId = item.id;
  renderBanner();
  const banner = $("banner");
  // Urgent blinks once: restart the animation for each new arrival.
  banner.classList.remove("blink");
  if (item.directive.priority === "urgent") {
    void banner.offsetWidth;
    banner.classList.add("blink");
  }
}

function renderBanner() {
  const banner = $("banner");
  const item = model.items.get(model.bannerId);
  banner.hidden = !item;
  if (!item) return;
  banner.dataset.priority = item.directive.priority;
  banner.dataset.directive = item.id;
  priorityTag($("banner-priority"), item.directive.priority);
  banner.querySelector(".banner-label").textContent = (item.directive.version ?? 1) > 1 ? t("newCorrection") : t("newDirective");
  $("banner-title").textContent = item.directive.title;
}

function openItem(id) {
  model.openId = id;
  const opened = model.items.get(id);
  if (opened && !opened.retracted) loadChanges(opened);
  if (model.bannerId === id) {
    model.bannerId = null;
    renderBanner();
  }
  renderList();
  renderDetail();
  const item = model.items.get(id);
  const key = `read:${id}@${item?.directive.version}`;
  if (item && !item.retracted && item.state?.read_at == null && !reported.has(key)) {
    reported.add(key);
    report(item, "read");
  }
  $("detail").scrollIntoView?.({ block: "nearest" });
}

function describeValue(field, value) {
  if (field === "priority") return t(`priority.${value}`);
  if (field === "deadline") return value == null ? t("noDeadline") : formatDateTime(value, model.lang);
  if (field === "ack_required") return value ? t("yes") : t("no");
  return String(value ?? "");
}

function renderDetail() {
  const detail = $("detail");
  const item = model.items.get(model.openId);
  detail.hidden = !item;
  if (!item) return;
  const { directive, state } = item;
  detail.dataset.directive = item.id;
  detail.dataset.priority = directive.priority;
  detail.toggleAttribute("data-retracted", item.retracted);
  priorityTag($("detail-priority"), directive.priority);
  $("detail-title").textContent = directive.title;
  const meta = [t("sentAt", { time: formatDateTime(directive.created_at, model.lang) })];
  meta.push(directive.deadline != null ? `${t("deadline")} ${formatDateTime(directive.deadline, model.lang)}` : t("noDeadline"));
  if ((directive.version ?? 1) > 1) meta.push(t("corrected", { version: directive.version }));
  $("detail-meta").textContent = meta.join(" · ");
  renderMarkdown($("detail-body"), directive.body ?? "");

  const retracted = $("detail-retracted");
  retracted.hidden = !item.retracted;
  retracted.textContent = item.retracted ? t("retractedNote", { reason: item.reason ? `: ${item.reason}` : "" }) : "";

  const changes = $("detail-changes");
  const lines = [];
  if (item.changes && !item.retracted) {
    for (const change of item.changes) {
      if (change.field === "body") lines.push(t("change.body"));
      else {
        const parse = (text) =>
          change.field === "deadline" ? (text === "none" ? null : Number(text)) : change.field === "ack_required" ? text === "true" : text;
        lines.push(
          t(`change.${change.field}`, {
            before: describeValue(change.field, parse(change.before)),
            after: describeValue(change.field, parse(change.after)),
          }),
        );
      }
    }
  } else if (item.previous && !item.retracted) {
    for (const field of ["title", "priority", "deadline", "ack_required"]) {
      if (item.previous[field] !== directive[field]) {
        lines.push(t(`change.${field}`, { before: describeValue(field, item.previous[field]), after: describeValue(field, directive[field]) }));
      }
    }
    if ((item.previous.body ?? "") !== (directive.body ?? "")) lines.push(t("change.body"));
  }
  if (item.note && !item.retracted) lines.push(t("change.note", { note: item.note }));
  changes.hidden = lines.length === 0;
  changes.querySelector("ul").replaceChildren(
    ...lines.map((line) => {
      const li = document.createElement("li");
      li.textContent = line;
      return li;
    }),
  );

  const account = session.account;
  const acked = state?.acked_at != null;
  const isOfficer = account?.role === "officer";
  const ack = $("ack");
  ack.hidden = item.retracted || acked || !directive.ack_required || !isOfficer;
  const ackedLine = $("acked");
  ackedLine.hidden = !acked;
  if (acked) {
    const who = state.acked_by === account?.id ? (account.display_name ?? account.username) : (state.acked_by ?? "");
    ackedLine.textContent = t("ackedBy", { who, time: formatDateTime(state.acked_at, model.lang) });
  }
  const note = $("ack-note");
  const noteText = item.retracted ? "" : !directive.ack_required ? t("noAckNeeded") : !acked && !isOfficer ? t("ackOfficersOnly") : "";
  note.hidden = !noteText;
  note.textContent = noteText;
  $("feedback-form").hidden = item.retracted;
}

// ---- acknowledge and feedback ----

async function acknowledge() {
  const item = model.items.get(model.openId);
  if (!item) return;
  const button = $("ack");
  button.disabled = true;
  button.textContent = t("acknowledging");
  try {
    // The version the officer read: the hub refuses (409) one corrected since.
    const body = { unit: model.unitId, version: item.directive.version ?? 1 };
    const reply = await session.post(`/api/v1/directives/${encodeURIComponent(item.id)}/ack`, body);
    if (reply?.state) takeState(reply.state);
    showNotice(null);
  } catch (error) {
    showNotice(t("ackFailed", { reason: describeError(error, t) }));
  } finally {
    button.disabled = false;
    button.textContent = t("acknowledge");
    renderList();
    renderDetail();
  }
}

async function sendFeedback(event) {
  event.preventDefault();
  const item = model.items.get(model.openId);
  const form = $("feedback-form");
  const body = $("feedback-body").value.trim();
  if (!body) return;
  const status = $("feedback-status");
  try {
    const kind = form.elements.kind.value;
    // The thread's subject: what it is about, in the page's language.
    const about = item?.directive.title ?? body.split("\n")[0];
    const subject = `${t(kind === "problem" ? "kindProblem" : "kindReply")}: ${about}`;
    await session.post("/api/v1/feedback", {
      unit: model.unitId,
      directive: item?.id,
      kind,
      subject: [...subject].slice(0, SUBJECT_MAX_CHARS).join(""),
      body,
    });
    $("feedback-body").value = "";
    status.dataset.kind = "ok";
    status.textContent = t("feedbackSent");
  } catch (error) {
    status.dataset.kind = "error";
    status.textContent = t("feedbackFailed", { reason: describeError(error, t) });
  }
}

// ---- session and connection ----

function setPhase(phase) {
  model.phase = phase;
  if (phase === "live") model.everLive = true;
  showPhase(phase, t);
}

async function enter() {
  showLoggedIn(true, session.account, t);
  model.unitId = session.account?.unit ?? "";
  if (!model.unitId) {
    showNotice(t("noUnit"));
    return;
  }
  try {
    const me = await session.get("/api/v1/me");
    model.unit = me?.unit ?? null;
    $("unit-name").textContent = model.unit?.name ?? model.unitId;
  } catch (error) {
    showNotice(t("loadFailed", { reason: describeError(error, t) }));
  }
  connect();
  await catchUp();
}

function connect() {
  client?.disconnect();
  model.everLive = false;
  const channel = `unit:${model.unitId}`;
  client = new RootcastClient(websocketUrl(), { token: session.token, name: "rootcast-inbox" });
  client.addEventListener("state", ({ detail }) => {
    if (detail.state === State.CONNECTING) setPhase(model.everLive ? "reconnecting" : "connecting");
  });
  client.addEventListener("connected", () => {
    setPhase("live");
    // Whatever was sent while this page was away (or between the first fetch and this
    // connection: catchUp() runs again after one in flight).
    catchUp();
  });
  client.addEventListener("publication", ({ detail }) => {
    if (detail.channel === channel) onPush(detail.data);
  });
  client.addEventListener("disconnected", ({ detail }) => {
    if (detail.code === 0) return;
    setPhase("disconnected");
    showNotice(t("disconnectedNotice", { reason: detail.reason ? `${detail.reason} (${detail.code})` : String(detail.code) }));
  });
  client.connect();
  globalThis.rootcast.client = client;
}

function leave() {
  client?.disconnect();
  client = null;
  model.items.clear();
  model.seen.clear();
  model.lastSeq = 0;
  model.loaded = false;
  model.openId = null;
  model.bannerId = null;
  model.unit = null;
  reported.clear();
  setPhase("loggedOut");
  showLoggedIn(false, null, t);
  renderText();
}

async function start() {
  globalThis.rootcast = { model, session, client: null };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    renderText();
  });
  bindSession({ session, t, onLogin: enter, onLogout: leave });
  $("ack").addEventListener("click", acknowledge);
  $("feedback-form").addEventListener("submit", sendFeedback);
  $("banner-open").addEventListener("click", () => model.bannerId && openItem(model.bannerId));
  $("banner-dismiss").addEventListener("click", () => {
    model.bannerId = null;
    renderBanner();
  });
  renderText();

  // A meeting-room screen: `?credential=…` logs in and leaves the address bar.
  const url = new URL(globalThis.location.href);
  const credential = url.searchParams.get("credential");
  if (credential) {
    url.searchParams.delete("credential");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    try {
      await session.loginCredential(credential);
    } catch (error) {
      showNotice(t("loginFailed", { reason: describeError(error, t) }));
    }
  }
  if (session.data) enter();
  else showLoggedIn(false, null, t);
}

start();
