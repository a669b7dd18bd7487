// watch.js — the page at `/watch?stream=NAME`: WHEP playback with live figures.
//
// An `RTCPeerConnection` with recvonly audio and video transceivers, the complete offer
// POSTed to `/whep/NAME` (see whip-client.js), the tracks into `<video autoplay muted
// playsinline>` (muted so autoplay is allowed; a button unmutes). When the relay refuses
// (no publisher yet, 404) or the connection fails, the page tries again after a growing
// delay. Figures come from `getStats()` once a second.
//
// The layer picker (automatic / low / medium / high / audio only) POSTs the choice to the
// session's layer URL (the WHEP layer extension, `Link: <…/layer>`); the relay then switches
// at the next keyframe of that layer (and asks the publisher for one). `?layer=` preselects.
// `model.timing` records, for each connection, `startAt` (offer creation), `postAt` (the WHEP
// POST), `answeredAt`, `connectedAt` (ICE and DTLS up) and `firstFrameAt` (first
// `framesDecoded > 0`, polled every 10 ms),
// all `performance.now()`: the join time is `firstFrameAt - postAt`.

import {
  WhipError,
  backoffMs,
  isValidStreamName,
  layerState,
  selectLayer,
  startSession,
  whepUrl,
} from "./whip-client.js";
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
    resolution: "Resolution",
    layerNow: "Layer received",
    layerLabel: "Quality",
    "layer.auto": "Automatic",
    "layer.low": "Low",
    "layer.medium": "Medium",
    "layer.high": "High",
    "layer.audio": "Audio only",
    layerFigure: "{layer}",
    layerWaiting: "{layer} → {target}",
    layerAuto: "auto: {layer}",
    "layerName.low": "low",
    "layerName.medium": "medium",
    "layerName.high": "high",
    "layerName.none": "no video",
    kbps: "{n} kbit/s",
    ms: "{n} ms",
    footerProtocol: "WHEP",
    layerRefused: "The relay refused the layer ({status}): {reason}.",
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
    resolution: "分辨率",
    layerNow: "接收的层",
    layerLabel: "画质",
    "layer.auto": "自动",
    "layer.low": "低",
    "layer.medium": "中",
    "layer.high": "高",
    "layer.audio": "仅音频",
    layerFigure: "{layer}",
    layerWaiting: "{layer} → {target}",
    layerAuto: "自动：{layer}",
    "layerName.low": "低",
    "layerName.medium": "中",
    "layerName.high": "高",
    "layerName.none": "无视频",
    kbps: "{n} kbit/s",
    ms: "{n} 毫秒",
    footerProtocol: "WHEP",
    layerRefused: "中继拒绝了所选画质（{status}）：{reason}。",
    noStream: "没有流名称：请以 /watch?stream=名称 打开本页（1–64 个 A-Z a-z 0-9 - _ . 字符）。",
    retrying: "{reason}{seconds} 秒后重试。",
    refused: "中继拒绝了请求（{status}）：{reason}。",
    failed: "与中继的连接失败：{reason}。",
    lost: "与中继的连接已断开。",
  },
};

/** The picker's choices, as the relay's layer route names them. */
const LAYERS = ["auto", "low", "medium", "high", "audio"];

const params = new URLSearchParams(globalThis.location.search);
const model = {
  lang: chooseLanguage(),
  stream: params.get("stream") ?? "",
  token: params.get("token") || "anonymous",
  layer: LAYERS.includes(params.get("layer")) ? params.get("layer") : "auto",
  relayLayer: null,
  timing: null,
  joins: [],
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
  $("resolution").textContent = s?.width ? `${s.width}×${s.height}` : "—";
  $("layer-now").textContent = layerText(model.relayLayer);
  $("rtt").textContent = s?.rttMs == null ? "—" : text("ms", { n: formatCount(s.rttMs, model.lang) });
}

/** The relay's layer state as a short text: "medium", "low → high", "auto: medium". */
function layerText(state) {
  if (!state) return "—";
  const name = (layer) => text(`layerName.${layer ?? "none"}`);
  if (state.preference === "audio") return name(null);
  const current = name(state.current);
  if (state.target && state.target !== state.current) {
    return text("layerWaiting", { layer: current, target: name(state.target) });
  }
  return state.preference === "auto" ? text("layerAuto", { layer: current }) : current;
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
  const next = { packetsLost: 0, audioPackets: 0 };
  let rttFromRemote;
  for (const entry of report.values()) {
    if (entry.type === "inbound-rtp") {
      next.packetsLost += Math.max(0, entry.packetsLost ?? 0);
      if (entry.kind === "video") {
        next.bytesReceived = (next.bytesReceived ?? 0) + entry.bytesReceived;
        next.framesDecoded = (next.framesDecoded ?? 0) + (entry.framesDecoded ?? 0);
        if (entry.frameWidth) {
          next.width = entry.frameWidth;
          next.height = entry.frameHeight;
        }
      } else if (entry.kind === "audio") {
        next.audioPackets += entry.packetsReceived ?? 0;
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
  const layerUrl = session?.layerUrl;
  if (layerUrl) model.relayLayer = await layerState(layerUrl, model.token).catch(() => model.relayLayer);
  renderStats();
}

/** Polls `getStats()` every 10 ms until the first decoded video frame; records its time. */
async function watchFirstFrame(pc, timing) {
  while (timing.firstFrameAt === undefined && performance.now() - timing.startAt < 30_000) {
    if (pc.connectionState === "closed") return;
    for (const entry of (await pc.getStats()).values()) {
      if (entry.type === "inbound-rtp" && entry.kind === "video" && entry.framesDecoded > 0) {
        timing.firstFrameAt = performance.now();
        model.joins.push({ ...timing });
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sends the picker's choice to the relay (when connected). */
async function applyLayer() {
  const current = session;
  if (!current?.layerUrl) return;
  try {
    model.relayLayer = await selectLayer(current.layerUrl, model.layer, model.token);
    if (model.notice?.key === "layerRefused") setPhase(model.phase);
  } catch (error) {
    if (session !== current) return;
    setPhase(model.phase, { key: "layerRefused", params: { status: error.status, reason: error.message } });
  }
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
  const current = { pc, stop: () => pc.close(), layerUrl: null };
  session = current;
  const timing = { startAt: performance.now() };
  model.timing = timing;
  model.relayLayer = null;
  pc.addEventListener("connectionstatechange", () => {
    if (session !== current) return;
    if (pc.connectionState === "connected") {
      timing.connectedAt ??= performance.now();
      model.attempt = 0;
      model.connects += 1;
      setPhase("live");
    } else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
      dropSession();
      scheduleRetry({ key: "lost" });
    }
  });
  try {
    const whep = await startSession(pc, whepUrl(model.stream), model.token, timing);
    if (session !== current) {
      await whep.stop();
      return;
    }
    current.stop = () => whep.stop();
    current.layerUrl = whep.layerUrl;
    watchFirstFrame(pc, timing).catch(() => {});
    // A choice made earlier (or ?layer=) applies to the new session too.
    if (model.layer !== "auto") applyLayer();
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
  const picker = $("layer");
  picker.value = model.layer;
  picker.addEventListener("change", () => {
    model.layer = picker.value;
    applyLayer();
  });
  $("unmute").addEventListener("click", () => {
    const video = $("video");
    video.muted = !video.muted;
    if (!video.muted) video.play().catch(() => {});
    render();
  });
  // For debugging from the console and for browser tests.
  globalThis.rootcastWatch = { model, session: () => session, applyLayer };
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
