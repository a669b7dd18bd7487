// directive-text.js — text both directive pages (the moderator console and the unit
// inbox) show, in zh-CN and English: priorities, stages, levels, kinds, the login form,
// the connection badge and error messages. Each page merges this with its own
// dictionary through `mergeText`.

import { format } from "./i18n.js";

export const COMMON_TEXT = {
  en: {
    languageName: "中文",
    languageTag: "zh-CN",
    switchLanguageLabel: "切换到中文",
    "state.loggedOut": "Logged out",
    "state.connecting": "Connecting",
    "state.live": "Live",
    "state.reconnecting": "Reconnecting",
    "state.disconnected": "Disconnected",
    loginTitle: "Log in",
    username: "Username",
    password: "Password",
    loginButton: "Log in",
    loggingIn: "Logging in…",
    logout: "Log out",
    loginFailed: "Cannot log in: {reason}",
    sessionEnded: "Your session ended ({reason}). Log in again.",
    "priority.routine": "Routine",
    "priority.important": "Important",
    "priority.urgent": "Urgent",
    "stage.pending": "Not delivered",
    "stage.delivered": "Delivered",
    "stage.read": "Read",
    "stage.acknowledged": "Acknowledged",
    "level.headquarters": "Headquarters",
    "level.city": "Cities",
    "level.county": "Counties",
    "level.unit": "Units",
    "kind.headquarters": "Headquarters",
    "kind.city_office": "City office",
    "kind.county_office": "County office",
    "kind.university": "University",
    "kind.enterprise": "Enterprise",
    "kind.station": "Station",
    "kind.school": "School",
    "kind.community": "Community",
    "kind.agency": "Agency",
    "kind.other": "Other",
    "role.admin": "Administrator",
    "role.moderator": "Moderator",
    "role.expert": "Expert",
    "role.officer": "Officer",
    "role.member": "Member",
    deadline: "Deadline",
    noDeadline: "no deadline",
    ackRequired: "Acknowledgement required",
    retracted: "Retracted",
    corrected: "Corrected (version {version})",
    errorNetwork: "The hub cannot be reached: {reason}",
    errorUnsupported: "This hub does not offer that yet.",
    errorGeneric: "{reason} ({status})",
    disconnectedNotice: "The hub closed the live connection: {reason}. Reload the page to try again.",
  },
  "zh-CN": {
    languageName: "English",
    languageTag: "en",
    switchLanguageLabel: "Switch to English",
    "state.loggedOut": "未登录",
    "state.connecting": "连接中",
    "state.live": "实时",
    "state.reconnecting": "重新连接中",
    "state.disconnected": "已断开",
    loginTitle: "登录",
    username: "用户名",
    password: "密码",
    loginButton: "登录",
    loggingIn: "正在登录…",
    logout: "退出",
    loginFailed: "无法登录：{reason}",
    sessionEnded: "登录已失效（{reason}），请重新登录。",
    "priority.routine": "一般",
    "priority.important": "重要",
    "priority.urgent": "紧急",
    "stage.pending": "未送达",
    "stage.delivered": "已送达",
    "stage.read": "已阅读",
    "stage.acknowledged": "已确认",
    "level.headquarters": "总部",
    "level.city": "市级",
    "level.county": "县级",
    "level.unit": "基层单位",
    "kind.headquarters": "总部",
    "kind.city_office": "市级机关",
    "kind.county_office": "县级机关",
    "kind.university": "高校",
    "kind.enterprise": "企业",
    "kind.station": "青春驿站",
    "kind.school": "学校",
    "kind.community": "社区",
    "kind.agency": "机关单位",
    "kind.other": "其他",
    "role.admin": "管理员",
    "role.moderator": "主持人",
    "role.expert": "专家",
    "role.officer": "负责人",
    "role.member": "成员",
    deadline: "截止时间",
    noDeadline: "无截止时间",
    ackRequired: "需要确认",
    retracted: "已撤回",
    corrected: "已更正（第 {version} 版）",
    errorNetwork: "无法连接服务器：{reason}",
    errorUnsupported: "此服务器暂不支持该功能。",
    errorGeneric: "{reason}（{status}）",
    disconnectedNotice: "服务器关闭了实时连接：{reason}。请刷新页面重试。",
  },
};

/** The common text merged with a page's own (`{en: {…}, "zh-CN": {…}}`; several are merged
 * in order, a later one's keys winning). */
export function mergeText(...pageTexts) {
  const merged = {};
  for (const lang of Object.keys(COMMON_TEXT)) merged[lang] = Object.assign({ ...COMMON_TEXT[lang] }, ...pageTexts.map((text) => text[lang]));
  return merged;
}

/** A lookup `t(key, params)` in `dictionaries[getLang()]`, falling back to English and then
 * to the key itself. */
export function translator(dictionaries, getLang) {
  return (key, params) => format(dictionaries[getLang()]?.[key] ?? dictionaries.en[key] ?? key, params);
}

/** A message for an error from `api.js` (or anything thrown), in the page's language. */
export function describeError(error, t) {
  if (error?.name === "ApiError") {
    if (error.status === 0) return t("errorNetwork", { reason: error.message });
    if (error.unsupported) return t("errorUnsupported");
    return t("errorGeneric", { reason: error.message, status: error.status });
  }
  return String(error?.message ?? error);
}
