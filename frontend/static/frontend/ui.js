// Shared functions of the agent pages: the REST API with the session's CSRF token, element building, times in
// the organization's time zone, initials avatars, icons from the sprite and a small question dialog.

import { dayKey, timeZone } from "./workspace/format.js";

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

// fetch JSON from /api/v1; resolves to {ok, status, data} (data is the parsed body or null).
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(/^(\/|https?:)/.test(path) ? path : `/api/v1/${path}`, init);
  } catch {
    return { ok: false, status: 0, data: { detail: "No connection. Check your network and try again." } };
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  return { ok: response.ok, status: response.status, data };
}

// The first readable message of an error answer ({"detail": ...} or {"field": ["..."]}).
export function errorText(data, fallback = "That did not work. Try again.") {
  if (!data) return fallback;
  if (typeof data.detail === "string") return data.detail;
  for (const [field, value] of Object.entries(data)) {
    const text = Array.isArray(value) ? value.join(" ") : typeof value === "string" ? value : "";
    if (text) return field === "non_field_errors" ? text : `${field.replace(/_/g, " ")}: ${text}`;
  }
  return fallback;
}

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

export function icon(name, size = "") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", `icon ${size}`.trim());
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", `${document.body.dataset.static || "/static/"}frontend/icons.svg#${name}`);
  svg.append(use);
  return svg;
}

export function initials(name) {
  const words = String(name || "").replace(/[@.]/g, " ").split(/\s+/).filter((w) => /^[\p{L}\p{N}]/u.test(w));
  if (!words.length) return "#";
  if (words.length === 1) return words[0].slice(0, 2);
  return words[0][0] + words[words.length - 1][0];
}

function crc(text) {
  let hash = 0;
  for (const ch of String(text || "")) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 6;
}

export function avatar(name, size = "") {
  const shade = crc(name);
  const isNumber = /^[+\d][\d\s()-]*$/.test(String(name || "").trim());
  return h("span", { class: `avatar ${size} ${shade ? `c${shade}` : ""}`.trim(), "aria-hidden": "true" }, isNumber ? icon("user", "sm") : initials(name));
}

// "+14155550134" → "+1 415 555 0134" for North American numbers; others are shown as stored.
export function formatNumber(e164) {
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(e164 || "");
  return m ? `+1 ${m[1]} ${m[2]} ${m[3]}` : e164 || "";
}

// Short times for lists: "14:05" today, "Yesterday", "Mon", "3 Dec", "3 Dec 2025" (the organization's time
// zone, format.js).
export function shortTime(iso) {
  if (!iso) return "";
  const zone = timeZone();
  const when = new Date(iso);
  const [y, m, d] = dayKey(iso).split("-").map(Number);
  const [ty, tm, td] = dayKey(new Date().toISOString()).split("-").map(Number);
  const days = Math.round((Date.UTC(ty, tm - 1, td) - Date.UTC(y, m - 1, d)) / 86400000);
  if (days === 0) return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZone: zone });
  if (days === 1) return "Yesterday";
  if (days < 7) return when.toLocaleDateString([], { weekday: "short", timeZone: zone });
  if (y === ty) return when.toLocaleDateString([], { day: "numeric", month: "short", timeZone: zone });
  return when.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric", timeZone: zone });
}

export function fullTime(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short", timeZone: timeZone() }) : "";
}

// A yes/no question in a real <dialog> (confirm() is not used: it blocks the page and cannot be styled).
export function ask(message, { confirmLabel = "Yes", cancelLabel = "Cancel", danger = false } = {}) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "ask", "aria-label": message },
      h(
        "form",
        { method: "dialog", class: "dialog-body" },
        h("p", {}, message),
        h(
          "div",
          { class: "dialog-actions" },
          h("button", { value: "cancel", type: "submit" }, cancelLabel),
          h("button", { value: "ok", type: "submit", class: danger ? "danger" : "primary" }, confirmLabel),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector("button[value=ok]").focus();
  });
}

// A short message in the corner ("Archived", errors), read by screen readers.
export function toast(text, kind = "info") {
  let region = document.getElementById("toasts");
  if (!region) {
    region = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  const item = h("div", { class: `toast toast-${kind}` }, text);
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
