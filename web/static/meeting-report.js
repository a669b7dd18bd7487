// meeting-report.js — a meeting's attendance report at `/meeting-report?id=<meeting>`, for
// its moderators: per targeted unit the first time it joined, the minutes it watched while
// the meeting was live, the headcount its room reported and the questions it asked
// (`GET /api/v1/meetings/{id}/report`), and the same as a CSV file
// (`GET …/report.csv`, fetched with the login's token and offered as a download). zh-CN
// and English.

import { applyText, chooseLanguage, formatCount, formatDateTime, formatRate, nextLanguage, saveLanguage } from "./i18n.js";
import { ApiError, Session } from "./api.js";
import { describeError, mergeText, translator } from "./directive-text.js";
import { bindSession, showLoggedIn, showNotice, showPhase } from "./session-ui.js";

const TEXT = mergeText({
  en: {
    documentTitle: "rootcast — attendance report",
    pageTitle: "attendance report",
    reportTitle: "Attendance per unit",
    refresh: "Refresh",
    csv: "Download CSV",
    consoleLink: "Meeting console",
    "col.unit": "Unit",
    "col.joined": "Joined at",
    "col.minutes": "Minutes watched",
    "col.headcount": "Headcount",
    "col.questions": "Questions asked",
    "status.scheduled": "not started",
    "status.live": "live (minutes still counting)",
    "status.ended": "ended",
    summary: "{joined} of {targeted} units joined · {minutes} minutes watched in all · headcount {headcount} · {questions} questions · {status}",
    never: "did not join",
    noMeeting: "No meeting: open this page as /meeting-report?id=MEETING.",
    loadFailed: "Cannot load the report: {reason}",
    footer: "Minutes watched count each unit's connections while the meeting was live; two screens of one unit at once count once.",
  },
  "zh-CN": {
    documentTitle: "rootcast — 参会报告",
    pageTitle: "参会报告",
    reportTitle: "各单位参会情况",
    refresh: "刷新",
    csv: "下载 CSV",
    consoleLink: "会议控制台",
    "col.unit": "单位",
    "col.joined": "加入时间",
    "col.minutes": "观看分钟数",
    "col.headcount": "到场人数",
    "col.questions": "提问数",
    "status.scheduled": "未开始",
    "status.live": "直播中（分钟数仍在累计）",
    "status.ended": "已结束",
    summary: "{targeted} 个单位中 {joined} 个加入 · 共观看 {minutes} 分钟 · 到场 {headcount} 人 · {questions} 个提问 · {status}",
    never: "未加入",
    noMeeting: "没有会议：请以 /meeting-report?id=会议 打开本页。",
    loadFailed: "无法加载报告：{reason}",
    footer: "观看分钟数按各单位在直播期间的连接计算；同一单位的两块屏幕同时观看只计一次。",
  },
});

const $ = (testId) => document.querySelector(`[data-testid="${testId}"]`);

const model = {
  lang: chooseLanguage(),
  meetingId: new URLSearchParams(globalThis.location.search).get("id") ?? "",
  report: null,
  csvUrl: null,
};
const t = translator(TEXT, () => model.lang);
const session = new Session("meeting-report");

function cell(text, testId) {
  const td = document.createElement("td");
  td.textContent = text;
  if (testId) td.dataset.testid = testId;
  return td;
}

function render() {
  document.documentElement.lang = model.lang;
  document.title = t("documentTitle");
  applyText(document, TEXT[model.lang]);
  const toggle = $("language");
  toggle.textContent = t("languageName");
  toggle.lang = t("languageTag");
  showLoggedIn(Boolean(session.data), session.account, t);
  showPhase(session.data ? "live" : "loggedOut", t);
  $("console-link").href = `/meeting-console?id=${encodeURIComponent(model.meetingId)}`;
  const report = model.report;
  $("meeting-title").textContent = report?.title ?? "";
  const csv = $("csv-download");
  csv.hidden = !model.csvUrl;
  if (model.csvUrl) {
    csv.href = model.csvUrl;
    csv.download = `attendance-${model.meetingId}.csv`;
  }
  if (!report) {
    $("report-summary").textContent = "";
    $("report-units").replaceChildren();
    return;
  }
  const units = report.units ?? [];
  const sum = (key) => units.reduce((total, u) => total + (u[key] ?? 0), 0);
  const summary = $("report-summary");
  summary.textContent = t("summary", {
    joined: formatCount(report.joined_units, model.lang),
    targeted: formatCount(report.targeted_units, model.lang),
    minutes: formatRate(sum("minutes_watched"), model.lang),
    headcount: formatCount(sum("headcount"), model.lang),
    questions: formatCount(sum("questions_asked"), model.lang),
    status: t(`status.${report.status}`),
  });
  summary.dataset.status = report.status;
  const sorted = [...units].sort((a, b) => (a.joined_at == null) - (b.joined_at == null) || (a.path ?? "").localeCompare(b.path ?? ""));
  $("report-units").replaceChildren(
    ...sorted.map((unit) => {
      const row = document.createElement("tr");
      row.dataset.testid = `rep-${unit.unit}`;
      row.dataset.joinedAt = unit.joined_at == null ? "" : String(unit.joined_at);
      row.dataset.seconds = String(unit.seconds_watched);
      row.dataset.minutes = String(unit.minutes_watched);
      row.dataset.headcount = unit.headcount == null ? "" : String(unit.headcount);
      row.dataset.questions = String(unit.questions_asked);
      row.toggleAttribute("data-connected", unit.joined_at != null);
      row.append(
        cell(unit.name || unit.unit, "unit"),
        cell(unit.joined_at == null ? t("never") : formatDateTime(unit.joined_at, model.lang), "joined"),
        cell(unit.minutes_watched.toFixed(2), "minutes"),
        cell(unit.headcount == null ? "—" : formatCount(unit.headcount, model.lang), "headcount"),
        cell(formatCount(unit.questions_asked, model.lang), "questions"),
      );
      return row;
    }),
  );
}

async function load() {
  if (!model.meetingId) {
    showNotice(t("noMeeting"));
    return;
  }
  const path = `/api/v1/meetings/${encodeURIComponent(model.meetingId)}`;
  try {
    const [report, csv] = await Promise.all([session.get(`${path}/report`), fetchCsv(`${path}/report.csv`)]);
    model.report = report;
    if (model.csvUrl) URL.revokeObjectURL(model.csvUrl);
    model.csvUrl = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
    showNotice(null);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) showNotice(t("loadFailed", { reason: describeError(error, t) }));
  }
  render();
}

/** The CSV text (a link cannot carry the bearer token, so it is fetched here). */
async function fetchCsv(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, signal: AbortSignal.timeout(15_000) });
  } catch (error) {
    throw new ApiError(0, "network", error?.message ?? String(error));
  }
  const text = await response.text();
  if (!response.ok) {
    let error = null;
    try {
      error = JSON.parse(text)?.error ?? null;
    } catch {
      error = null;
    }
    throw new ApiError(response.status, error?.code ?? "", error?.message ?? text.slice(0, 200));
  }
  return text;
}

function start() {
  globalThis.rootcastReport = { model, session, load };
  $("language").addEventListener("click", () => {
    model.lang = nextLanguage(model.lang);
    saveLanguage(model.lang);
    render();
  });
  bindSession({
    session,
    t,
    onLogin: load,
    onLogout: () => {
      model.report = null;
      render();
    },
  });
  $("refresh").addEventListener("click", load);
  render();
  if (session.data) load();
}

start();
