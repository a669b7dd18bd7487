// watch.js — the page at `/watch?stream=NAME`: WHEP playback with live figures.
//
// An `RTCPeerConnection` with recvonly audio and video transceivers, the complete offer
// POSTed to `/whep/NAME` (see whip-client.js), the tracks into `<video autoplay muted
// playsinline>` (muted so autoplay is allowed; a button unmutes). When the relay refuses
// (no publisher yet, 404) or the connection fails, the page tries again after a growing
// delay. Figures come from `getStats()` once a second.

import { WhipError, backoffMs, isValidStreamName, startSession, whepUrl } from "./whip-client.js";
import { applyText, chooseLanguage, format, formatCount, formatRate, nextLanguage, saveLanguage } from "./i18n.js";

const TEXT = {
  en: {
    documentTitle: "rootcast — watch",
    pageTitle: "watch",
    "state.connecting": "Connecting",
    "state.live": "Live",
    "state.reconnecting": "Reconnecting",
    "state.error": "Failed",
    languageName: "中文",
    languageTag: "zh-CN",
    switchLanguageLabel: "切换到中文",
    streamLabel: "Stream",
    unmute: "Unmute",
    mute: "Mute",
    statsLabel: "Receiving",
    bitrate: "Video bitrate",
    framesDecoded: "Frames decoded",
    packetsLost: "Packets lost",
    rtt: "Round trip",
    kbps: "{n} kbit/s",
    ms: "{n} ms",
    footerProtocol: "WHEP",
    noStream: "No stream name: open this page as /watch?stream=NAME (1–64 of A-Z a-z 0-9 - _ .).",
    retrying: "{reason} Trying again in {seconds} s.",
    refused: "The relay refused ({status}): {reason}.",
    failed: "The connection to the relay failed: {reason}.",
    lost: "The connection to the relay was lost.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 观看",
    pageTitle: "观看",
    "state.connecting": "连接中",
    "state.live": "直播中",
    "state.reconnecting": "重新连接中",
    "state.error": "失败",
    languageName: "English",
    languageTag: "en",
    switchLanguageLabel: "Switch to English",
    streamLabel: "流",
    unmute: "取消静音",
    mute: "静音",
    statsLabel: "接收",
    bitrate: "视频码率",
    framesDecoded: "已解码帧",
    packetsLost: "丢包数",
    rtt: "往返时延",
    kbps: "{n} kbit/s",
    ms: "{n} 毫秒",
    footerProtocol: "WHEP",
    noStream: "没有流名称：请以 /watch?stream=名称 打开本页（1–64 个 A-Z a-z 0-9 - _ . 字符）。",
    retrying: "{reason}{seconds} 秒后重试。",
    refused: "中继拒绝了请求（{status}）：{reason}。",
    failed: "与中继的连接失败：{reason}。",
    lost: "与中继的连接已断开。",
  },
};

const params = new URLSearchParams(globalThis.location.search);
const model = {
  lang: chooseLanguage(),
  stream: params.get("stream") ?? "",
  token: params.get("token") || "anonymous",
  phase: "connecting",
  notice: null,
  stats: null,
  attempt: 0,
  connects: 0,
};
let session = null;
let retryTimer = null;
let previous = null;

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

function text(key, values) {
  return format(TEXT[model.lang][key] ?? TEXT.en[key] ?? key, values);
}

function render() {
  const dictionary = TEXT[model.lang];
  document.documentElement.lang = model.lang;
  document.title = dictionary.documentTitle;
  applyText(document, dictionary);
  const toggle = $("language");
  toggle.textContent = dictionary.languageName;
  toggle.lang = dictionary.languageTag;
  $("unmute").textContent = text($("video").muted ? "unmute" : "mute");
  renderState();
  renderStats();
}

function noticeText(notice) {
  if (!notice) return "";
  const reason = text(notice.key, notice.params);
  return notice.retryIn == null ? reason : text("retrying", { reason, seconds: notice.retryIn });
}

function renderState() {
  $("state").dataset.state = model.phase;
  $("state-text").textContent = text(`state.${model.phase}`);
  const notice = $("notice");
  notice.hidden = !model.notice;
  notice.textContent = noticeText(model.notice);
}

function renderStats() {
  const s = model.stats;
  $("bitrate").textContent = s?.kbps == null ? "—" : text("kbps", { n: formatRate(s.kbps, model.lang) });
  $("frames-decoded").textContent = s?.framesDecoded == null ? "—" : formatCount(s.framesDecoded, model.lang);
  $("packets-lost").textContent = s?.packetsLost == null ? "—" : formatCount(s.packetsLost, model.lang);
  $("rtt").textContent = s?.rttMs == null ? "—" : text("ms", { n: formatCount(s.rttMs, model.lang) });
}

function setPhase(phase, notice = null) {
  model.phase = phase;
  model.notice = notice;
  renderState();
}

/** Reads the figures from `getStats()`: video bitrate, frames decoded, packets lost, RTT. */
async function pollStats() {
  const pc = session?.pc;
  if (!pc) return;
  const report = await pc.getStats();
  const now = performance.now();
  const next = { packetsLost: 0 };
  let rttFromRemote;
  for (const entry of report.values()) {
    if (entry.type === "inbound-rtp") {
      next.packetsLost += Math.max(0, entry.packetsLost ?? 0);
      if (entry.kind === "video") {
        next.bytesReceived = (next.bytesReceived ?? 0) + entry.bytesReceived;
        next.framesDecoded = (next.framesDecoded ?? 0) + (entry.framesDecoded ?? 0);
      }
    } else if (entry.type === "candidate-pair" && entry.nominated && entry.currentRoundTripTime !== undefined) {
      next.rttMs = Math.round(entry.currentRoundTripTime * 1000);
    } else if (entry.type === "remote-outbound-rtp" && entry.roundTripTime !== undefined) {
      rttFromRemote = Math.round(entry.roundTripTime * 1000);
    }
  }
  next.rttMs ??= rttFromRemote;
  if (previous && next.bytesReceived !== undefined) {
    next.kbps = ((next.bytesReceived - previous.bytesReceived) * 8) / (now - previous.at);
  }
  previous = next.bytesReceived === undefined ? null : { bytesReceived: next.bytesReceived, at: now };
  model.stats = next;
  renderStats();
}

function scheduleRetry(notice) {
  const delay = backoffMs(model.attempt);
  model.attempt += 1;
  setPhase(model.connects > 0 ? "reconnecting" : "connecting", { ...notice, retryIn: Math.round(delay / 1000) });
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

function dropSession() {
  const current = session;
  session = null;
  previous = null;
  current?.stop();
}

async function connect() {
  retryTimer = null;
  const pc = new RTCPeerConnection();
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addTransceiver("video", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.addEventListener("track", ({ track }) => {
    stream.addTrack(track);
    const video = $("video");
    if (video.srcObject !== stream) video.srcObject = stream;
  });
  const current = { pc, stop: () => pc.close() };
  session = current;
  pc.addEventListener("connectionstatechange", () => {
    if (session !== current) return;
    if (pc.connectionState === "connected") {
      model.attempt = 0;
      model.connects += 1;
      setPhase("live");
    } else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
      dropSession();
      scheduleRetry({ key: "lost" });
    }
  });
  try {
    const whep = await startSession(pc, whepUrl(model.stream), model.token);
    if (session !== current) {
      await whep.stop();
      return;
    }
    current.stop = () => whep.stop();
  } catch (error) {
    if (session !== current) return;
    dropSession();
    const notice =
      error instanceof WhipError && error.status > 0
        ? { key: "refused", params: { status: error.status, reason: error.message } }
        : { key: "failed", params: { reason: error.message } };
    scheduleRetry(notice);
  }
}

function init() {
  $("stream").textContent = model.stream || "—";
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    render();
  });
  $("unmute").addEventListener("click", () => {
    const video = $("video");
    video.muted = !video.muted;
    if (!video.muted) video.play().catch(() => {});
    render();
  });
  // For debugging from the console and for browser tests.
  globalThis.rootcastWatch = { model, session: () => session };
  if (!isValidStreamName(model.stream)) {
    setPhase("error", { key: "noStream" });
    render();
    return;
  }
  $("endpoint").textContent = whepUrl(model.stream);
  globalThis.addEventListener("pagehide", () => session?.stop());
  setInterval(() => pollStats().catch(() => {}), 1000);
  render();
  connect();
}

init();
