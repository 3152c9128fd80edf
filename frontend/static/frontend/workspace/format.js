// Display functions: times in the organization's time zone, day labels, initials, sizes. Display only: every rule
// (segments, consent, limits) is decided by the server.

// Times are shown in the organization's time zone (set on the page's <body data-time-zone>, or by the
// texting context where the widget is mounted elsewhere), not the browser's.
let zone = (typeof document !== "undefined" && document.body && document.body.dataset.timeZone) || undefined;
const formats = new Map();

export function setTimeZone(name) {
  if (!name || name === zone) return;
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: name });
  } catch {
    return; // not a zone this browser knows: keep the current one
  }
  zone = name;
  formats.clear();
}

export function timeZone() {
  return zone;
}

function format(key, options) {
  if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat(undefined, { ...options, timeZone: zone }));
  return formats.get(key);
}

export function time(iso) {
  return format("time", { hour: "numeric", minute: "2-digit" }).format(new Date(iso));
}

export function fullTime(iso) {
  return format("full", { dateStyle: "full", timeStyle: "long" }).format(new Date(iso));
}

// "2026-12-04": the calendar day of a moment in the time zone shown.
export function dayKey(iso) {
  const parts = Object.fromEntries(
    format("day", { year: "numeric", month: "2-digit", day: "2-digit" })
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}`;
}

export function dayLabel(iso) {
  const key = dayKey(iso);
  const now = Date.now();
  if (key === dayKey(new Date(now).toISOString())) return "Today";
  // Yesterday: the day of a moment a day before the start of today, whatever the length of that day.
  if (key === dayKey(new Date(now - 86400000).toISOString())) return "Yesterday";
  return format("dayLabel", { weekday: "long", month: "long", day: "numeric", year: "numeric" }).format(new Date(iso));
}

// The moment a calendar day ("2026-12-04") starts in the time zone shown (for date filters).
export function startOfDay(dateText) {
  const [y, m, d] = dateText.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d);
  let at = wall;
  for (let i = 0; i < 3; i++) at = wall - offset(at); // converge across a change of offset
  return new Date(at);
}

// How far the time zone shown is ahead of UTC at a moment, in ms.
function offset(at) {
  const parts = Object.fromEntries(
    format("parts", {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(new Date(at))
      .map((p) => [p.type, p.value]),
  );
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
  return wall - Math.floor(at / 1000) * 1000;
}

// Who sent a text that no agent sent: "Automation: Open house", "Campaign: Spring", "Automatic reply", ….
const SOURCE_NAMES = {
  automation: "Automation",
  campaign: "Campaign",
  auto_reply: "Automatic reply",
  api: "API",
  sync: "Sent outside QuickSend",
  other_tool: "Another tool",
};

export function sourceName(source, label) {
  const name = SOURCE_NAMES[source] || "QuickSend";
  return label ? `${name}: ${label}` : name;
}

// Sources whose texts no agent wrote: the lists name them rather than say "You".
export const UNATTENDED_SOURCES = new Set(["automation", "campaign", "auto_reply", "sync", "other_tool"]);

export function initials(name) {
  const words = (name || "").replace(/[^\p{L}\p{N} ]/gu, " ").trim().split(/\s+/).filter(Boolean);
  if (!words.length) return "#";
  return (words[0][0] + (words.length > 1 ? words[words.length - 1][0] : "")).toUpperCase();
}

export function bytes(n) {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)} MB`;
  if (n >= 1000) return `${Math.round(n / 1000)} KB`;
  return `${n} bytes`;
}

// Build an element: el("p", {class: "x", text: "…"}, child, …). Text is always set as text (never HTML).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// Small line icons (24×24 paths, stroke only), hidden from assistive technology: the control names itself.
const ICONS = {
  paperclip: "M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9",
  template: "M4 5h16v14H4z M8 9h8 M8 13h5 M15 17l3-6",
  document: "M6 3h8l4 4v14H6z M14 3v4h4 M9 12h6 M9 16h6",
};

export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `qs-icon qs-icon-${name}`);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.8");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}
