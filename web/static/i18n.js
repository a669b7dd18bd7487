// i18n.js — language choice and formatting shared by rootcast's pages.
//
// A page keeps its text in a dictionary per language, marks elements with
// `data-i18n="key"` (text content) or `data-i18n-label="key"` (aria-label and title), and
// calls `applyText(document, dictionary)`. Placeholders in text look like `{name}`.

/** Languages with text, in the order the toggle cycles through them. */
export const LANGUAGES = Object.freeze(["en", "zh-CN"]);

const STORAGE_KEY = "rootcast.lang";

/** Maps a BCP 47 tag such as "zh-Hans-CN" or "en-GB" onto one of `LANGUAGES`. */
export function matchLanguage(tag) {
  const lower = String(tag ?? "").toLowerCase();
  if (lower.startsWith("zh")) return "zh-CN";
  if (lower.startsWith("en")) return "en";
  return undefined;
}

/**
 * The language to show: `?lang=` in the URL (handy for a kiosk TV), then the visitor's
 * earlier choice, then the browser's preferred languages, then English.
 */
export function chooseLanguage() {
  const fromUrl = matchLanguage(new URLSearchParams(globalThis.location?.search ?? "").get("lang"));
  if (fromUrl) return fromUrl;
  try {
    const saved = matchLanguage(globalThis.localStorage?.getItem(STORAGE_KEY));
    if (saved) return saved;
  } catch {
    // Storage can be disabled; fall through to the browser's languages.
  }
  const preferred = globalThis.navigator?.languages ?? [globalThis.navigator?.language];
  for (const tag of preferred) {
    const match = matchLanguage(tag);
    if (match) return match;
  }
  return "en";
}

/** Remembers the visitor's choice for the next visit. */
export function saveLanguage(lang) {
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, lang);
  } catch {
    // Not remembered; the choice still applies to this visit.
  }
}

/** The language after `lang` in `LANGUAGES`. */
export function nextLanguage(lang) {
  return LANGUAGES[(LANGUAGES.indexOf(lang) + 1) % LANGUAGES.length];
}

/** Fills `{name}` placeholders in `text` from `params`. */
export function format(text, params = {}) {
  return String(text).replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Writes the dictionary's text into every marked element below `root`. */
export function applyText(root, dictionary) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    const text = dictionary[element.dataset.i18n];
    if (text !== undefined) element.textContent = text;
  }
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    const text = dictionary[element.dataset.i18nLabel];
    if (text !== undefined) {
      element.setAttribute("aria-label", text);
      element.setAttribute("title", text);
    }
  }
}

/** An integer with the language's digit grouping: 12,345. */
export function formatCount(value, lang) {
  return new Intl.NumberFormat(lang, { maximumFractionDigits: 0 }).format(value);
}

/** A rate: one decimal below 10, whole numbers above, grouped: 0.5, 12, 3,400. */
export function formatRate(value, lang) {
  const digits = value < 10 && value !== 0 ? 1 : 0;
  return new Intl.NumberFormat(lang, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

const DURATION_UNITS = {
  en: { d: "d", h: "h", m: "m", s: "s", sep: " " },
  "zh-CN": { d: "天", h: "小时", m: "分", s: "秒", sep: " " },
};

/** A duration in its two largest units: "3d 4h", "5m 12s", "3天 4小时". */
export function formatDuration(totalSeconds, lang) {
  const units = DURATION_UNITS[lang] ?? DURATION_UNITS.en;
  let rest = Math.max(0, Math.floor(totalSeconds));
  const parts = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]]) {
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (amount > 0 || parts.length > 0 || unit === "s") parts.push(`${amount}${units[unit]}`);
  }
  return parts.slice(0, 2).join(units.sep);
}

/** A moment (ms since the epoch) as a short local date and time: "2026-11-29 08:15". */
export function formatDateTime(ms, lang) {
  if (ms == null || !Number.isFinite(ms)) return "—";
  return new Intl.DateTimeFormat(lang, {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(new Date(ms));
}

/** A share 0…1 as a whole percentage: "42%". */
export function formatPercent(fraction, lang) {
  return new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 }).format(fraction || 0);
}
