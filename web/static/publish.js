// publish.js — the page at `/publish?stream=NAME`: camera and microphone → WHIP.
//
// `getUserMedia` → an `RTCPeerConnection` with two sendonly transceivers → the complete
// offer POSTed to `/whip/NAME` (see whip-client.js) → the answer. Stop DELETEs the
// session. `?token=` sets the bearer token (the relay accepts any non-empty one for now).

import { WhipError, isValidStreamName, startSession, whipUrl } from "./whip-client.js";
import { applyText, chooseLanguage, format, formatCount, formatRate, nextLanguage, saveLanguage } from "./i18n.js";

const TEXT = {
  en: {
    documentTitle: "rootcast — publish",
    pageTitle: "publish",
    "state.idle": "Stopped",
    "state.connecting": "Connecting",
    "state.live": "Live",
    "state.reconnecting": "Reconnecting",
    "state.error": "Failed",
    languageName: "中文",
    languageTag: "zh-CN",
    switchLanguageLabel: "切换到中文",
    streamLabel: "Stream",
    start: "Start",
    stop: "Stop",
    watchLink: "Open the watch page",
    statsLabel: "Sending",
    bitrate: "Video bitrate",
    framesSent: "Frames sent",
    resolution: "Resolution",
    layers: "Simulcast layers",
    rtt: "Round trip",
    kbps: "{n} kbit/s",
    ms: "{n} ms",
    footerProtocol: "WHIP",
    noStream: "No stream name: open this page as /publish?stream=NAME (1–64 of A-Z a-z 0-9 - _ .).",
    noCamera: "Cannot use the camera and microphone: {reason}. The page needs HTTPS (or localhost) and permission.",
    refused: "The relay refused the stream ({status}): {reason}",
    failed: "The connection to the relay failed: {reason}",
    lost: "The connection to the relay was lost. Press Start to publish again.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 推流",
    pageTitle: "推流",
    "state.idle": "已停止",
    "state.connecting": "连接中",
    "state.live": "直播中",
    "state.reconnecting": "重新连接中",
    "state.error": "失败",
    languageName: "English",
    languageTag: "en",
    switchLanguageLabel: "Switch to English",
    streamLabel: "流",
    start: "开始",
    stop: "停止",
    watchLink: "打开观看页面",
    statsLabel: "发送",
    bitrate: "视频码率",
    framesSent: "已发送帧",
    resolution: "分辨率",
    layers: "联播层",
    rtt: "往返时延",
    kbps: "{n} kbit/s",
    ms: "{n} 毫秒",
    footerProtocol: "WHIP",
    noStream: "没有流名称：请以 /publish?stream=名称 打开本页（1–64 个 A-Z a-z 0-9 - _ . 字符）。",
    noCamera: "无法使用摄像头和麦克风：{reason}。本页需要 HTTPS（或 localhost）以及授权。",
    refused: "中继拒绝了该流（{status}）：{reason}",
    failed: "与中继的连接失败：{reason}",
    lost: "与中继的连接已断开。按“开始”重新推流。",
  },
};

/**
 * The simulcast encodings (RIDs q/h/f: a quarter, half and full resolution). The relay ranks
 * q < h < f. Browsers drop the upper encodings by themselves when the picture is too small
 * or the uplink too slow. `?simulcast=0` sends one encoding instead.
 */
export const SIMULCAST = Object.freeze([
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
]);

const params = new URLSearchParams(globalThis.location.search);
const model = {
  lang: chooseLanguage(),
  stream: params.get("stream") ?? "",
  token: params.get("token") || "anonymous",
  single: params.get("simulcast") === "0",
  phase: "idle",
  notice: null,
  stats: null,
};
let media = null;
let session = null;
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
  renderState();
  renderStats();
}

function renderState() {
  $("state").dataset.state = model.phase;
  $("state-text").textContent = text(`state.${model.phase}`);
  const notice = $("notice");
  notice.hidden = !model.notice;
  notice.textContent = model.notice ? text(model.notice.key, model.notice.params) : "";
  const valid = isValidStreamName(model.stream);
  $("start").disabled = !valid || model.phase === "connecting" || model.phase === "live";
  $("stop").disabled = model.phase !== "connecting" && model.phase !== "live";
}

function renderStats() {
  const s = model.stats;
  $("bitrate").textContent = s?.kbps == null ? "—" : text("kbps", { n: formatRate(s.kbps, model.lang) });
  $("frames-sent").textContent = s?.framesSent == null ? "—" : formatCount(s.framesSent, model.lang);
  $("resolution").textContent = s?.width ? `${s.width}×${s.height}` : "—";
  const layers = [...(s?.layers ?? [])].sort((a, b) => a.width - b.width);
  $("layers").textContent = layers.length ? layers.map((l) => `${l.rid} ${l.width}×${l.height}`.trim()).join(" · ") : "—";
  $("rtt").textContent = s?.rttMs == null ? "—" : text("ms", { n: formatCount(s.rttMs, model.lang) });
}

function setPhase(phase, notice = null) {
  model.phase = phase;
  model.notice = notice;
  renderState();
}

async function pollStats() {
  const pc = session?.pc;
  if (!pc) return;
  const report = await pc.getStats();
  const now = performance.now();
  const next = {};
  for (const entry of report.values()) {
    if (entry.type === "outbound-rtp" && entry.kind === "video") {
      // With simulcast there is one entry per encoding (RID): bytes add up, frames and
      // resolution are those of the largest encoding, and each active one is listed.
      next.bytesSent = (next.bytesSent ?? 0) + entry.bytesSent;
      next.framesSent = Math.max(next.framesSent ?? 0, entry.framesSent ?? 0);
      if (entry.frameWidth && entry.frameWidth > (next.width ?? 0)) {
        next.width = entry.frameWidth;
        next.height = entry.frameHeight;
      }
      if (entry.frameWidth) (next.layers ??= []).push({ rid: entry.rid ?? "", width: entry.frameWidth, height: entry.frameHeight });
    } else if (entry.type === "candidate-pair" && entry.nominated && entry.currentRoundTripTime !== undefined) {
      next.rttMs = Math.round(entry.currentRoundTripTime * 1000);
    }
  }
  if (previous && next.bytesSent !== undefined) {
    next.kbps = ((next.bytesSent - previous.bytesSent) * 8) / (now - previous.at);
  }
  previous = next.bytesSent === undefined ? null : { bytesSent: next.bytesSent, at: now };
  model.stats = next;
  renderStats();
}

async function start() {
  setPhase("connecting");
  previous = null;
  model.stats = null;
  renderStats();
  try {
    media ??= await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    });
  } catch (error) {
    setPhase("error", { key: "noCamera", params: { reason: error.message || error.name } });
    return;
  }
  $("preview").srcObject = media;

  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const init = { direction: "sendonly", streams: [media] };
    // Video goes out as three simulcast encodings; the relay forwards one per viewer.
    if (track.kind === "video" && !model.single) init.sendEncodings = SIMULCAST;
    pc.addTransceiver(track, init);
  }
  pc.addEventListener("connectionstatechange", () => {
    if (session?.pc !== pc) return;
    if (pc.connectionState === "connected") setPhase("live");
    else if (pc.connectionState === "disconnected") setPhase("reconnecting");
    else if (pc.connectionState === "failed") {
      session.stop();
      session = null;
      setPhase("error", { key: "lost" });
    }
  });
  const current = { pc, stop: () => pc.close() };
  session = current;
  try {
    const whip = await startSession(pc, whipUrl(model.stream), model.token);
    if (session !== current) {
      // Stopped while the offer was on its way.
      await whip.stop();
      return;
    }
    current.stop = () => whip.stop();
    if (pc.connectionState === "connected") setPhase("live");
  } catch (error) {
    pc.close();
    if (session === current) session = null;
    const notice =
      error instanceof WhipError && error.status > 0
        ? { key: "refused", params: { status: error.status, reason: error.message } }
        : { key: "failed", params: { reason: error.message } };
    setPhase("error", notice);
  }
}

async function stop() {
  const current = session;
  session = null;
  // The DELETE first, so a Start right after does not meet the old session (409).
  if (current) await current.stop();
  setPhase("idle");
  for (const track of media?.getTracks() ?? []) track.stop();
  media = null;
  $("preview").srcObject = null;
}

function init() {
  $("stream").textContent = model.stream || "—";
  $("endpoint").textContent = isValidStreamName(model.stream) ? whipUrl(model.stream) : "";
  const watch = new URL("/watch", globalThis.location.href);
  watch.searchParams.set("stream", model.stream);
  $("watch-link").href = watch.pathname + watch.search;
  if (!isValidStreamName(model.stream)) model.notice = { key: "noStream" };

  $("start").addEventListener("click", start);
  $("stop").addEventListener("click", stop);
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    render();
  });
  globalThis.addEventListener("pagehide", () => session?.stop());
  setInterval(() => pollStats().catch(() => {}), 1000);
  render();
  // For debugging from the console and for browser tests.
  globalThis.rootcastPublish = { model, start, stop, session: () => session };
}

init();
