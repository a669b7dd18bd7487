// live-state.js — the page at `/`: subscribes to `sys:stats` and shows the hub's counters.
//
// The hub publishes one snapshot a second on `sys:stats`:
//   {node, version, uptime_secs, connections, users, channels, subscriptions,
//    messages_in, messages_out}            (messages_* are running totals since start)
// Rates are worked out here from consecutive snapshots, over the hub's own uptime, so
// network jitter does not show up as rate jitter.

import { RootcastClient, State, websocketUrl } from "./rootcast-client.js";
import {
  applyText,
  chooseLanguage,
  format,
  formatCount,
  formatDuration,
  formatRate,
  nextLanguage,
  saveLanguage,
} from "./i18n.js";

const CHANNEL = "sys:stats";
/** Seconds of rate history drawn in the sparklines. */
const SERIES_LENGTH = 60;
/** Sparklines are drawn on a frame of at least this many points. */
const MIN_SPARK_POINTS = 20;
/** A snapshot older than this many seconds is flagged as stale. */
const STALE_AFTER_SECS = 5;

const TEXT = {
  en: {
    documentTitle: "rootcast — live state",
    pageTitle: "live state",
    "state.connecting": "Connecting",
    "state.live": "Live",
    "state.reconnecting": "Reconnecting",
    "state.disconnected": "Disconnected",
    "state.error": "No data",
    languageName: "中文",
    languageTag: "zh-CN",
    switchLanguageLabel: "切换到中文",
    countersLabel: "Counters",
    ratesLabel: "Message rates",
    nodeLabel: "Node",
    connections: "Connections",
    users: "Users",
    channels: "Channels",
    subscriptions: "Subscriptions",
    messagesIn: "Messages in",
    messagesOut: "Messages out",
    perSecond: "per second",
    total: "total",
    node: "Node",
    version: "Version",
    uptime: "Uptime",
    updated: "Updated",
    justNow: "just now",
    secondsAgo: "{n} s ago",
    waiting: "waiting…",
    footerChannel: "channel",
    clientId: "client {id}",
    subscribeFailed: "Cannot subscribe to {channel}: {reason}. Check that the sys namespace allows anonymous subscribers.",
    disconnectedNotice: "The hub closed the connection: {reason}. Reload the page to try again.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 实时状态",
    pageTitle: "实时状态",
    "state.connecting": "连接中",
    "state.live": "实时",
    "state.reconnecting": "重新连接中",
    "state.disconnected": "已断开",
    "state.error": "无数据",
    languageName: "English",
    languageTag: "en",
    switchLanguageLabel: "Switch to English",
    countersLabel: "计数",
    ratesLabel: "消息速率",
    nodeLabel: "节点",
    connections: "连接数",
    users: "用户数",
    channels: "频道数",
    subscriptions: "订阅数",
    messagesIn: "入站消息",
    messagesOut: "出站消息",
    perSecond: "每秒",
    total: "累计",
    node: "节点",
    version: "版本",
    uptime: "运行时间",
    updated: "更新于",
    justNow: "刚刚",
    secondsAgo: "{n} 秒前",
    waiting: "等待中…",
    footerChannel: "频道",
    clientId: "客户端 {id}",
    subscribeFailed: "无法订阅 {channel}：{reason}。请确认 sys 命名空间允许匿名订阅。",
    disconnectedNotice: "服务器关闭了连接：{reason}。请刷新页面重试。",
  },
};

const COUNTERS = ["connections", "users", "channels", "subscriptions"];
const NUMBER_FIELDS = [...COUNTERS, "uptime_secs", "messages_in", "messages_out"];

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

/** Everything the page shows, kept apart from the DOM so `render()` can redraw it all. */
const model = {
  lang: chooseLanguage(),
  phase: "connecting", // connecting | live | reconnecting | disconnected | error
  everLive: false,
  notice: null, // {key, params}
  clientId: "",
  latest: null, // the last snapshot
  latestAt: 0, // performance.now() when it arrived
  base: null, // the snapshot rates are measured from
  rateIn: [], // messages/s, newest last
  rateOut: [],
};

/** Takes in one snapshot; returns false when it does not have the expected shape. */
function takeSnapshot(stats) {
  if (!stats || typeof stats !== "object" || !NUMBER_FIELDS.every((f) => Number.isFinite(stats[f]))) {
    return false;
  }
  const base = model.base;
  const restarted =
    base && (stats.node !== base.node || stats.uptime_secs < base.uptime_secs || stats.messages_in < base.messages_in);
  if (!base || restarted) {
    model.base = stats;
    model.rateIn = [];
    model.rateOut = [];
  } else if (stats.uptime_secs > base.uptime_secs) {
    // Two snapshots within one second of uptime are folded into the next interval.
    const seconds = stats.uptime_secs - base.uptime_secs;
    pushRate(model.rateIn, (stats.messages_in - base.messages_in) / seconds);
    pushRate(model.rateOut, Math.max(0, stats.messages_out - base.messages_out) / seconds);
    model.base = stats;
  }
  model.latest = stats;
  model.latestAt = performance.now();
  return true;
}

function pushRate(series, value) {
  series.push(value);
  if (series.length > SERIES_LENGTH) series.splice(0, series.length - SERIES_LENGTH);
}

// ---- rendering ----

function text(key, params) {
  return format(TEXT[model.lang][key] ?? TEXT.en[key] ?? key, params);
}

function render() {
  const dictionary = TEXT[model.lang];
  document.documentElement.lang = model.lang;
  document.title = dictionary.documentTitle;
  applyText(document, dictionary);

  const toggle = $("language");
  toggle.textContent = dictionary.languageName;
  toggle.lang = dictionary.languageTag;

  renderState();
  renderSnapshot();
  renderAge();
}

function renderState() {
  const badge = $("state");
  badge.dataset.state = model.phase;
  const label = badge.querySelector(".state-text");
  label.dataset.i18n = `state.${model.phase}`;
  label.textContent = text(`state.${model.phase}`);

  const notice = $("notice");
  notice.hidden = !model.notice;
  notice.textContent = model.notice ? text(model.notice.key, model.notice.params) : "";

  $("client-id").textContent = model.clientId ? text("clientId", { id: model.clientId }) : "";
}

function setFigure(testId, value, shown) {
  const element = $(testId);
  const previous = element.dataset.value;
  element.dataset.value = String(value);
  element.textContent = shown;
  if (previous !== undefined && previous !== String(value)) flash(element);
}

function flash(element) {
  if (matchMedia("(prefers-reduced-motion: reduce)").matches || !element.animate) return;
  element.animate([{ opacity: 0.55 }, { opacity: 1 }], { duration: 400, easing: "ease-out" });
}

function renderSnapshot() {
  const stats = model.latest;
  document.querySelector("main").toggleAttribute("data-empty", !stats);
  if (!stats) return;
  for (const counter of COUNTERS) setFigure(counter, stats[counter], formatCount(stats[counter], model.lang));
  setFigure("messages-in-total", stats.messages_in, formatCount(stats.messages_in, model.lang));
  setFigure("messages-out-total", stats.messages_out, formatCount(stats.messages_out, model.lang));
  renderRate("messages-in", model.rateIn);
  renderRate("messages-out", model.rateOut);
  $("node").textContent = String(stats.node ?? "—");
  $("version").textContent = String(stats.version ?? "—");
  $("uptime").textContent = formatDuration(stats.uptime_secs, model.lang);
  $("uptime").dataset.value = String(stats.uptime_secs);
}

function renderRate(name, series) {
  const element = $(`${name}-rate`);
  if (series.length === 0) {
    element.textContent = text("waiting");
    delete element.dataset.value;
  } else {
    const rate = series[series.length - 1];
    element.dataset.value = String(rate);
    element.textContent = formatRate(rate, model.lang);
  }
  drawSparkline($(`${name}-spark`), series);
}

/**
 * Draws `series` into the 60×24 viewBox, newest point at the right edge. A short series
 * takes the right part of a 20-point frame; from 20 points on it spans the whole width.
 * The highest value sits at four fifths of the height.
 */
function drawSparkline(svg, series) {
  const line = svg.querySelector(".spark-line");
  const area = svg.querySelector(".spark-area");
  if (series.length < 2) {
    line.setAttribute("points", "");
    area.setAttribute("d", "");
    return;
  }
  const top = Math.max(...series) * 1.25 || 1;
  const step = 60 / (Math.max(series.length, MIN_SPARK_POINTS) - 1);
  const left = 60 - (series.length - 1) * step;
  const points = series.map(
    (value, i) => `${(left + i * step).toFixed(2)},${(24 - (value / top) * 24).toFixed(2)}`,
  );
  line.setAttribute("points", points.join(" "));
  area.setAttribute("d", `M${left.toFixed(2)},24 L${points.join(" L")} L60,24 Z`);
}

function renderAge() {
  const updated = $("updated");
  if (!model.latest) {
    updated.textContent = text("waiting");
    return;
  }
  const seconds = Math.floor((performance.now() - model.latestAt) / 1000);
  updated.textContent = seconds < 2 ? text("justNow") : text("secondsAgo", { n: seconds });
  updated.classList.toggle("stale", seconds >= STALE_AFTER_SECS);
}

// ---- wiring ----

function setPhase(phase, notice = null) {
  model.phase = phase;
  if (phase === "live") model.everLive = true;
  model.notice = notice;
  renderState();
}

function start() {
  const client = new RootcastClient(websocketUrl(), { name: "rootcast-web" });
  const stats = client.subscribe(CHANNEL);

  client.addEventListener("state", ({ detail }) => {
    if (detail.state === State.CONNECTING) setPhase(model.everLive ? "reconnecting" : "connecting");
  });
  client.addEventListener("connected", ({ detail }) => {
    model.clientId = detail.client ?? "";
    renderState();
  });
  client.addEventListener("disconnected", ({ detail }) => {
    model.clientId = "";
    setPhase("disconnected", {
      key: "disconnectedNotice",
      params: { reason: detail.reason ? `${detail.reason} (${detail.code})` : String(detail.code) },
    });
  });
  stats.addEventListener("subscribed", () => setPhase("live"));
  stats.addEventListener("unsubscribed", ({ detail }) => {
    // The hub refused the subscription (for example 103, permission denied).
    setPhase("error", {
      key: "subscribeFailed",
      params: { channel: CHANNEL, reason: detail.reason ? `${detail.reason} (${detail.code})` : String(detail.code) },
    });
  });
  stats.addEventListener("publication", ({ detail }) => {
    if (takeSnapshot(detail.data)) renderSnapshot();
    else console.warn("rootcast: unexpected sys:stats publication", detail.data);
    renderAge();
  });

  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    render();
  });

  setInterval(renderAge, 1000);
  render();
  client.connect();
  // For debugging from the console and for browser tests.
  globalThis.rootcast = { client, model };
}

start();
