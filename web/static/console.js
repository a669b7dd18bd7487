// console.js — the moderator console at `/console`: log in, compose a directive (Markdown
// with a safe preview), pick its target on the org tree (unit-picker.js), send it, and
// follow its live acknowledgement map.
//
// REST (api.js): POST /api/v1/login, GET /api/v1/org/units, GET/POST /api/v1/directives,
// GET /api/v1/directives/{id}/dashboard, POST …/{id}/correct and …/{id}/retract.
// Live: the login token connects to the hub; the dashboard's `channel` (`ack:<id>@<root>`)
// is subscribed with its `channel_token`, and each publication
// `{"type":"state","state":{unit_id, stage, …}}` updates one unit; every count is worked
// out again here from the unit states (org-tree.js `rollup`, the hub's rule).

import { RootcastClient, State, websocketUrl } from "./rootcast-client.js";
import { applyText, chooseLanguage, formatCount, formatDateTime, formatDuration, formatPercent, nextLanguage, saveLanguage } from "./i18n.js";
import { Session } from "./api.js";
import { describeError, mergeText, translator } from "./directive-text.js";
import { bindSession, showLoggedIn, showNotice, showPhase } from "./session-ui.js";
import { renderMarkdown } from "./markdown.js";
import { LEVELS, STAGES, ackFraction, heatLevel, indexUnits, isOverdue, pathIds, rollup, stageOf } from "./org-tree.js";
import { PICKER_TEXT, UnitPicker } from "./unit-picker.js";

const TEXT = mergeText(PICKER_TEXT, {
  en: {
    documentTitle: "rootcast — directive console",
    pageTitle: "directive console",
    composeTitle: "New directive",
    titleLabel: "Title",
    bodyLabel: "Text (Markdown)",
    previewLabel: "Preview",
    priorityLabel: "Priority",
    targetLabel: "Send to",
    targetCount: "{n} units will receive it",
    targetNone: "Tick the parts of the organisation to send to.",
    send: "Send",
    sending: "Sending…",
    sentTo: "Sent to {n} units.",
    sendFailed: "Not sent: {reason}",
    sentTitle: "Directives",
    noDirectives: "No directives yet.",
    mapTitle: "Acknowledgement map",
    correct: "Correct",
    retract: "Retract",
    correctTitle: "Correct the directive",
    noteLabel: "What changed and why",
    sendCorrection: "Send correction",
    retractTitle: "Retract the directive",
    reasonLabel: "Reason",
    cancel: "Cancel",
    corrected: "Correction sent.",
    retractedDone: "Directive retracted.",
    actionFailed: "Failed: {reason}",
    targeted: "Targeted",
    overdue: "Overdue",
    medianAck: "Median time to acknowledge",
    levelColumn: "Level",
    notAcked: "Not yet acknowledged",
    andMore: "… and {n} more",
    allAcked: "Every unit has acknowledged.",
    noAckNeeded: "This directive asks for no acknowledgement.",
    direct: "{name} (direct)",
    sentAt: "sent {time}",
    dashboardFailed: "Cannot load the acknowledgement map: {reason}",
    loadFailed: "Cannot load: {reason}",
    notModerator: "This console is for moderators and administrators. Unit officers use the inbox at /inbox.",
    footer: "Directives are kept by the hub; units that were offline catch up when they reconnect.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 指令台",
    pageTitle: "指令台",
    composeTitle: "新建指令",
    titleLabel: "标题",
    bodyLabel: "正文（Markdown）",
    previewLabel: "预览",
    priorityLabel: "优先级",
    targetLabel: "发送对象",
    targetCount: "将发送至 {n} 个单位",
    targetNone: "请勾选要发送的组织范围。",
    send: "发送",
    sending: "正在发送…",
    sentTo: "已发送至 {n} 个单位。",
    sendFailed: "未发送：{reason}",
    sentTitle: "指令列表",
    noDirectives: "暂无指令。",
    mapTitle: "确认热力图",
    correct: "更正",
    retract: "撤回",
    correctTitle: "更正指令",
    noteLabel: "更正说明",
    sendCorrection: "发送更正",
    retractTitle: "撤回指令",
    reasonLabel: "撤回原因",
    cancel: "取消",
    corrected: "更正已发送。",
    retractedDone: "指令已撤回。",
    actionFailed: "操作失败：{reason}",
    targeted: "发送单位",
    overdue: "已逾期",
    medianAck: "确认用时中位数",
    levelColumn: "层级",
    notAcked: "尚未确认",
    andMore: "……另有 {n} 个",
    allAcked: "所有单位均已确认。",
    noAckNeeded: "此指令无需确认。",
    direct: "{name}本级及直属",
    sentAt: "发送于 {time}",
    dashboardFailed: "无法加载确认热力图：{reason}",
    loadFailed: "加载失败：{reason}",
    notModerator: "指令台仅供主持人和管理员使用。单位负责人请使用收件箱 /inbox。",
    footer: "指令由服务器保存；离线的单位重新连接后会自动补收。",
  },
});

/** Most names listed under "not yet acknowledged". */
const NOT_ACKED_SHOWN = 100;

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

const model = {
  lang: chooseLanguage(),
  phase: "loggedOut",
  everLive: false,
  index: null, // the org tree, for the acknowledgement map
  directives: [],
  current: null, // the open acknowledgement map, see openDashboard()
  sending: false,
};
const t = translator(TEXT, () => model.lang);
const session = new Session("console");
let client = null;
/** The target picker, once the units are loaded. */
let picker = null;

// ---- language ----

function renderText() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  showPhase(model.phase, t);
  showLoggedIn(Boolean(session.data), session.account, t);
  picker?.renderText();
  updateSendButton();
  renderList();
  if (model.current) renderDashboard();
}

// ---- compose and send ----

function updateSendButton() {
  $("send").disabled = model.sending || !picker || picker.count() === 0 || $("title").value.trim() === "";
}

/** `datetime-local` value → ms since the epoch, or null. */
function deadlineFrom(input) {
  if (!input.value) return null;
  const ms = new Date(input.value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/** ms since the epoch → a `datetime-local` value in local time. */
function deadlineValue(ms) {
  if (ms == null) return "";
  const date = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return date.toISOString().slice(0, 16);
}

async function send(event) {
  event.preventDefault();
  const target = picker?.target();
  if (!target || model.sending) return;
  model.sending = true;
  updateSendButton();
  const status = $("status");
  status.textContent = t("sending");
  try {
    const reply = await session.post("/api/v1/directives", {
      title: $("title").value.trim(),
      body: $("body").value,
      priority: $("priority").value,
      target,
      ack_required: $("ack-required").checked,
      deadline: deadlineFrom($("deadline")),
    });
    const directive = reply.directive ?? reply.scheduled;
    status.textContent = t("sentTo", { n: formatCount(reply.targeted ?? 0, model.lang) });
    status.dataset.kind = "ok";
    $("title").value = "";
    $("body").value = "";
    renderMarkdown($("preview"), "");
    if (directive) {
      model.directives = [directive, ...model.directives.filter((d) => d.id !== directive.id)];
      renderList();
      if (reply.directive) openDashboard(directive.id);
    }
  } catch (error) {
    status.textContent = t("sendFailed", { reason: describeError(error, t) });
    status.dataset.kind = "error";
  } finally {
    model.sending = false;
    updateSendButton();
  }
}

// ---- the list of directives ----

async function loadDirectives() {
  const list = await session.get("/api/v1/directives");
  model.directives = Array.isArray(list) ? list : [];
  renderList();
}

function renderList() {
  const list = $("directives");
  $("no-directives").hidden = model.directives.length > 0;
  list.replaceChildren(
    ...model.directives.map((directive) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "directive-item";
      button.dataset.testid = `directive-${directive.id}`;
      button.dataset.priority = directive.priority;
      if (directive.retracted_at != null) button.dataset.retracted = "";
      if (model.current?.id === directive.id) button.setAttribute("aria-current", "true");
      const tag = priorityTag(directive.priority);
      const title = document.createElement("span");
      title.className = "directive-title";
      title.textContent = directive.title;
      const time = document.createElement("span");
      time.className = "muted";
      time.textContent = formatDateTime(directive.created_at, model.lang);
      button.append(tag, title, time);
      button.addEventListener("click", () => openDashboard(directive.id));
      item.append(button);
      return item;
    }),
  );
}

function priorityTag(priority) {
  const tag = document.createElement("span");
  tag.className = "priority-tag";
  tag.dataset.priority = priority;
  tag.textContent = t(`priority.${priority}`);
  return tag;
}

// ---- the acknowledgement map ----

async function openDashboard(id) {
  closeDashboard();
  const current = { id, directive: null, root: null, states: new Map(), channel: "", subscription: null, map: null };
  model.current = current;
  renderList();
  let dashboard;
  try {
    dashboard = await session.get(`/api/v1/directives/${encodeURIComponent(id)}/dashboard`);
  } catch (error) {
    if (model.current === current) showNotice(t("dashboardFailed", { reason: describeError(error, t) }));
    return;
  }
  if (model.current !== current) return;
  current.directive = dashboard.directive;
  current.root = dashboard.root;
  current.channel = dashboard.channel;
  mergeStates(current, dashboard.units);
  current.map = buildMap(current);
  $("dashboard").hidden = false;
  renderDashboard();
  if (client && dashboard.channel) {
    const subscription = client.subscribe(dashboard.channel, { token: dashboard.channel_token });
    current.subscription = subscription;
    subscription.addEventListener("publication", ({ detail }) => {
      if (model.current !== current) return;
      const type = detail.data?.type;
      if (type === "state") {
        mergeStates(current, [detail.data.state]);
        scheduleRender();
      } else if (type === "corrected" || type === "retracted") {
        // A new version starts every unit again, a retraction stops the map: read both
        // from the hub, and the list's entry too.
        refreshDashboard(current);
        loadDirectives().catch(() => {});
      }
    });
    // Changes between the dashboard call and the subscription are read again once
    // subscribed; merging keeps the furthest stage, so order does not matter.
    subscription.addEventListener("subscribed", () => refreshDashboard(current));
    subscription.addEventListener("unsubscribed", ({ detail }) => {
      if (model.current === current && detail.code !== 0) {
        showNotice(t("dashboardFailed", { reason: `${detail.reason} (${detail.code})` }));
      }
    });
  }
}

async function refreshDashboard(current) {
  try {
    const dashboard = await session.get(`/api/v1/directives/${encodeURIComponent(current.id)}/dashboard`);
    if (model.current !== current) return;
    current.directive = dashboard.directive;
    mergeStates(current, dashboard.units);
    scheduleRender();
  } catch (error) {
    if (model.current === current) showNotice(t("dashboardFailed", { reason: describeError(error, t) }));
  }
}

function closeDashboard() {
  const current = model.current;
  if (current?.subscription) current.subscription.unsubscribe();
  model.current = null;
  $("dashboard").hidden = true;
}

/** Takes in unit states, keeping per unit whichever has come furthest. */
function mergeStates(current, rows) {
  for (const row of rows ?? []) {
    const unitId = row.unit_id ?? row.id;
    if (!unitId) continue;
    if (row.directive_id && row.directive_id !== current.id) continue;
    const known = current.states.get(unitId);
    const incoming = { ...row, unit_id: unitId };
    if (!known) {
      // Pushes for units outside the map's root are not ours to show.
      if (current.map) continue;
      current.states.set(unitId, incoming);
      continue;
    }
    // A state is for one version: a correction starts every unit again.
    const knownVersion = known.version ?? 0;
    if (incoming.version != null && incoming.version < knownVersion) continue;
    if (incoming.version != null && incoming.version > knownVersion) {
      current.states.set(unitId, { ...known, ...incoming, stage: stageOf(incoming) });
      continue;
    }
    const merged = { ...known };
    for (const key of ["delivered_at", "read_at", "acked_at", "acked_by"]) {
      if (merged[key] == null && incoming[key] != null) merged[key] = incoming[key];
    }
    merged.stage = stageOf(merged);
    current.states.set(unitId, merged);
  }
}

/**
 * The map's structure: one row per child of the root, in each row one cell per child
 * that has units below it (counties) plus one cell for the row's own unit and the
 * grassroots units directly under it; a dot per targeted unit. Units directly under the
 * root (and the root itself) form a row of their own.
 */
function buildMap(current) {
  const index = model.index;
  const root = index.byId.get(current.root.id) ?? current.root;
  const depth = pathIds(root.path).length;
  const rows = new Map(); // row id → {id, cells: Map(cell id → {id, members: []}), members: []}
  const hasChildren = (id) => (index.children.get(id) ?? []).length > 0;
  const placeOf = (unit) => {
    const ids = pathIds(unit.path);
    if (ids.length <= depth || !hasChildren(ids[depth])) return [root.id, root.id];
    const rowId = ids[depth];
    if (ids.length === depth + 1 || !hasChildren(ids[depth + 1])) return [rowId, rowId];
    return [rowId, ids[depth + 1]];
  };
  const ordered = [...current.states.keys()]
    .map((id) => index.byId.get(id) ?? { id, path: `${root.path}${id}/`, name: id })
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const unit of ordered) {
    const [rowId, cellId] = placeOf(unit);
    if (!rows.has(rowId)) rows.set(rowId, { id: rowId, cells: new Map(), members: [] });
    const row = rows.get(rowId);
    if (!row.cells.has(cellId)) row.cells.set(cellId, { id: cellId, members: [] });
    row.cells.get(cellId).members.push(unit.id);
    row.members.push(unit.id);
  }
  // The root's own row first, then the others in path order.
  const rowOrder = [...rows.values()].sort((a, b) => {
    if (a.id === root.id) return -1;
    if (b.id === root.id) return 1;
    return (index.byId.get(a.id)?.path ?? "") < (index.byId.get(b.id)?.path ?? "") ? -1 : 1;
  });

  const container = $("ack-map");
  const dots = new Map();
  const rowElements = [];
  for (const row of rowOrder) {
    const rowElement = document.createElement("div");
    rowElement.className = "ack-row";
    rowElement.dataset.testid = `row-${row.id}`;
    const head = document.createElement("div");
    head.className = "ack-row-head";
    const name = document.createElement("span");
    name.className = "ack-row-name";
    name.textContent = index.byId.get(row.id)?.name ?? row.id;
    const figure = document.createElement("output");
    figure.dataset.testid = `row-pct-${row.id}`;
    const tally = document.createElement("span");
    tally.className = "muted";
    head.append(name, figure, tally);
    const cells = document.createElement("div");
    cells.className = "ack-cells";
    const cellElements = [];
    for (const cell of row.cells.values()) {
      const cellElement = document.createElement("div");
      cellElement.className = "ack-cell";
      cellElement.dataset.testid = `cell-${cell.id}`;
      const cellHead = document.createElement("div");
      cellHead.className = "ack-cell-head";
      const cellName = document.createElement("span");
      cellName.className = "ack-cell-name";
      const cellFigure = document.createElement("span");
      cellFigure.className = "ack-cell-figure";
      cellHead.append(cellName, cellFigure);
      const dotBox = document.createElement("div");
      dotBox.className = "ack-dots";
      for (const id of cell.members) {
        const dot = document.createElement("span");
        dot.className = "ack-dot";
        dot.dataset.unit = id;
        dotBox.append(dot);
        dots.set(id, dot);
      }
      cellElement.append(cellHead, dotBox);
      cells.append(cellElement);
      cellElements.push({ cell, element: cellElement, name: cellName, figure: cellFigure, rowId: row.id });
    }
    rowElement.append(head, cells);
    container.append(rowElement);
    rowElements.push({ row, element: rowElement, figure, tally, cells: cellElements });
  }
  container.replaceChildren(...rowElements.map((r) => r.element));
  return { dots, rows: rowElements };
}

let renderTimer = undefined;
/** Coalesces bursts of pushes into one redraw (a timer, not animation frames: a
 * background tab on a meeting-room wall must still update). */
function scheduleRender() {
  if (renderTimer !== undefined) return;
  renderTimer = setTimeout(() => {
    renderTimer = undefined;
    if (model.current?.map) renderDashboard();
  }, 60);
}

function renderDashboard() {
  const current = model.current;
  if (!current?.directive || !current.map) return;
  const { directive } = current;
  const index = model.index;
  const now = Date.now();
  const states = [...current.states.values()];
  const summary = rollup(index, states, directive, now);

  const priority = $("dash-priority");
  priority.dataset.priority = directive.priority;
  priority.textContent = t(`priority.${directive.priority}`);
  $("dash-title").textContent = directive.title;
  const meta = [t("sentAt", { time: formatDateTime(directive.created_at, model.lang) })];
  meta.push(directive.deadline != null ? `${t("deadline")} ${formatDateTime(directive.deadline, model.lang)}` : t("noDeadline"));
  if (directive.version > 1) meta.push(t("corrected", { version: directive.version }));
  if (directive.retracted_at != null) meta.push(t("retracted"));
  $("dash-meta").textContent = meta.join(" · ");
  $("dashboard").toggleAttribute("data-retracted", directive.retracted_at != null);
  $("retract").disabled = directive.retracted_at != null;
  $("correct").disabled = directive.retracted_at != null;

  const total = summary.total;
  setFigure("total-targeted", total.targeted, formatCount(total.targeted, model.lang));
  setFigure("total-delivered", total.delivered, formatCount(total.delivered, model.lang));
  setFigure("total-read", total.read, formatCount(total.read, model.lang));
  setFigure(
    "total-acknowledged",
    total.acknowledged,
    `${formatCount(total.acknowledged, model.lang)} · ${formatPercent(ackFraction(total), model.lang)}`,
  );
  setFigure("total-overdue", total.overdue, formatCount(total.overdue, model.lang));
  setFigure(
    "median-ack",
    total.median_ack_ms ?? "",
    total.median_ack_ms == null ? "—" : formatDuration(total.median_ack_ms / 1000, model.lang),
  );

  const body = $("by-level").querySelector("tbody");
  body.replaceChildren(
    ...LEVELS.filter((level) => summary.byLevel.has(level)).map((level) => {
      const counts = summary.byLevel.get(level);
      const row = document.createElement("tr");
      row.dataset.level = level;
      const cells = [
        t(`level.${level}`),
        formatCount(counts.targeted, model.lang),
        formatCount(counts.delivered, model.lang),
        formatCount(counts.read, model.lang),
        `${formatCount(counts.acknowledged, model.lang)} (${formatPercent(ackFraction(counts), model.lang)})`,
        formatCount(counts.overdue, model.lang),
      ];
      row.append(
        ...cells.map((text, i) => {
          const cell = document.createElement(i === 0 ? "th" : "td");
          cell.textContent = text;
          return cell;
        }),
      );
      return row;
    }),
  );

  for (const [id, dot] of current.map.dots) {
    const state = current.states.get(id);
    const stage = stageOf(state);
    if (dot.dataset.stage !== stage) dot.dataset.stage = stage;
    dot.toggleAttribute("data-overdue", isOverdue(directive, state, now));
    const name = index.byId.get(id)?.name ?? id;
    dot.title = `${name} — ${t(`stage.${stage}`)}`;
  }
  for (const row of current.map.rows) {
    const counts = countsOf(row.row.members, current.states);
    const fraction = ackFraction(counts);
    row.element.dataset.heat = String(heatLevel(fraction));
    row.figure.textContent = formatPercent(fraction, model.lang);
    row.figure.dataset.value = String(counts.acknowledged);
    row.tally.textContent = `${formatCount(counts.acknowledged, model.lang)} / ${formatCount(counts.targeted, model.lang)}`;
    for (const cell of row.cells) {
      const cellCounts = countsOf(cell.cell.members, current.states);
      const cellFraction = ackFraction(cellCounts);
      cell.element.dataset.heat = String(heatLevel(cellFraction));
      const unitName = index.byId.get(cell.cell.id)?.name ?? cell.cell.id;
      const isDirect = cell.cell.id === cell.rowId && (index.children.get(cell.cell.id) ?? []).length > 0;
      cell.name.textContent = isDirect ? t("direct", { name: unitName }) : unitName;
      cell.figure.textContent = formatPercent(cellFraction, model.lang);
      cell.element.title = `${cell.name.textContent}: ${formatCount(cellCounts.acknowledged, model.lang)} / ${formatCount(cellCounts.targeted, model.lang)}`;
    }
  }

  const notAcked = $("not-acked");
  const count = $("not-acked-count");
  count.dataset.value = String(summary.notAcknowledged.length);
  count.textContent = directive.ack_required ? formatCount(summary.notAcknowledged.length, model.lang) : "";
  const items = summary.notAcknowledged.slice(0, NOT_ACKED_SHOWN).map((id) => {
    const unit = index.byId.get(id);
    const item = document.createElement("li");
    item.dataset.unit = id;
    const parent = unit?.parent ? index.byId.get(unit.parent)?.name : "";
    item.textContent = parent ? `${unit?.name ?? id} · ${parent}` : (unit?.name ?? id);
    if (isOverdue(directive, current.states.get(id), now)) item.dataset.overdue = "";
    return item;
  });
  if (summary.notAcknowledged.length > NOT_ACKED_SHOWN) {
    const more = document.createElement("li");
    more.className = "muted";
    more.textContent = t("andMore", { n: formatCount(summary.notAcknowledged.length - NOT_ACKED_SHOWN, model.lang) });
    items.push(more);
  }
  if (items.length === 0) {
    const none = document.createElement("li");
    none.className = "muted";
    none.textContent = directive.ack_required ? t("allAcked") : t("noAckNeeded");
    items.push(none);
  }
  notAcked.replaceChildren(...items);
}

function countsOf(members, states) {
  let acknowledged = 0;
  for (const id of members) if (stageOf(states.get(id)) === STAGES[3]) acknowledged += 1;
  return { targeted: members.length, acknowledged };
}

function setFigure(testId, value, shown) {
  const element = $(testId);
  element.dataset.value = String(value);
  element.textContent = shown;
}

// ---- correct and retract ----

function openCorrect() {
  const directive = model.current?.directive;
  if (!directive) return;
  const dialog = $("correct-dialog");
  $("correct-title").value = directive.title;
  $("correct-body").value = directive.body ?? "";
  $("correct-priority").value = directive.priority;
  $("correct-ack-required").checked = Boolean(directive.ack_required);
  $("correct-deadline").value = deadlineValue(directive.deadline);
  $("correct-note").value = "";
  dialog.returnValue = "";
  dialog.showModal();
}

async function afterCorrect() {
  const dialog = $("correct-dialog");
  const current = model.current;
  if (dialog.returnValue !== "confirm" || !current) return;
  await act(current, "correct", {
    title: $("correct-title").value.trim(),
    body: $("correct-body").value,
    priority: $("correct-priority").value,
    ack_required: $("correct-ack-required").checked,
    deadline: deadlineFrom($("correct-deadline")),
    note: $("correct-note").value.trim(),
  }, "corrected");
}

function openRetract() {
  if (!model.current?.directive) return;
  const dialog = $("retract-dialog");
  $("retract-reason").value = "";
  dialog.returnValue = "";
  dialog.showModal();
}

async function afterRetract() {
  const dialog = $("retract-dialog");
  const current = model.current;
  if (dialog.returnValue !== "confirm" || !current) return;
  await act(current, "retract", { note: $("retract-reason").value.trim() }, "retractedDone");
}

async function act(current, action, body, doneKey) {
  try {
    await session.post(`/api/v1/directives/${encodeURIComponent(current.id)}/${action}`, body);
    showNotice(t(doneKey), "info");
    await loadDirectives();
    if (model.current === current) await openDashboard(current.id);
  } catch (error) {
    showNotice(t("actionFailed", { reason: describeError(error, t) }));
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
  if (!["admin", "moderator"].includes(session.account?.role)) {
    showNotice(t("notModerator"));
    return;
  }
  connect();
  try {
    const units = await session.get("/api/v1/org/units");
    const list = Array.isArray(units) ? units : [];
    model.index = indexUnits(list);
    picker?.remove();
    picker = new UnitPicker($("picker"), { units: list, t, lang: () => model.lang, onChange: updateSendButton });
    updateSendButton();
    await loadDirectives();
  } catch (error) {
    showNotice(t("loadFailed", { reason: describeError(error, t) }));
  }
}

function connect() {
  client?.disconnect();
  model.everLive = false;
  client = new RootcastClient(websocketUrl(), { token: session.token, name: "rootcast-console" });
  client.addEventListener("state", ({ detail }) => {
    if (detail.state === State.CONNECTING) setPhase(model.everLive ? "reconnecting" : "connecting");
  });
  client.addEventListener("connected", () => setPhase("live"));
  client.addEventListener("disconnected", ({ detail }) => {
    if (detail.code === 0) return; // we closed it
    setPhase("disconnected");
    showNotice(t("disconnectedNotice", { reason: detail.reason ? `${detail.reason} (${detail.code})` : String(detail.code) }));
  });
  client.connect();
  globalThis.rootcast.client = client;
}

function leave() {
  closeDashboard();
  client?.disconnect();
  client = null;
  model.directives = [];
  model.index = null;
  picker?.remove();
  picker = null;
  updateSendButton();
  setPhase("loggedOut");
  showLoggedIn(false, null, t);
}

function start() {
  globalThis.rootcast = { model, session, client: null };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    renderText();
  });
  bindSession({ session, t, onLogin: enter, onLogout: leave });
  $("compose-form").addEventListener("submit", send);
  $("title").addEventListener("input", updateSendButton);
  $("body").addEventListener("input", () => renderMarkdown($("preview"), $("body").value));
  $("correct").addEventListener("click", openCorrect);
  $("retract").addEventListener("click", openRetract);
  $("correct-dialog").addEventListener("close", afterCorrect);
  $("retract-dialog").addEventListener("close", afterRetract);
  // Overdue marks change with the clock.
  setInterval(() => {
    if (model.current?.directive?.deadline != null) scheduleRender();
  }, 30_000);
  renderText();
  if (session.data) enter();
  else showLoggedIn(false, null, t);
}

start();
