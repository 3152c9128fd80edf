// The bell in the top bar: the live unread count (also in the tab title), the notifications panel with each
// notification's actions (Accept / Dismiss / Block, Assign to me, Open), and, when the member asked for it
// in their preferences, a desktop notification and a sound for each new one.
import { live } from "../../frontend/workspace/live.js";
import { api, ask, avatar, errorText, formatNumber, h, icon, shortTime, toast } from "../../frontend/ui.js";

const root = document.querySelector("[data-bell]");
const button = root.querySelector("[data-bell-button]");
const panel = root.querySelector("[data-bell-panel]");
const list = root.querySelector("[data-bell-list]");
const empty = root.querySelector("[data-bell-empty]");
const countBadge = root.querySelector("[data-bell-count]");
const baseTitle = document.title.replace(/^\(\d+\)\s+/, "");
let wantsDesktop = false;
let wantsSound = false;
// The member's sound and desktop preferences come with the first summary; a text heard before it arrives
// waits for them instead of being treated as "no desktop notification, no sound".
let preferencesKnown = false;
let heardEarly = [];
let notifications = new Map();
let loaded = false;

const TITLES = {
  request: (n) => `New texter ${formatNumber(n.customer_number)}`,
  message: (n) => (n.count > 1 ? `${n.count} new texts from ${formatNumber(n.customer_number)}` : `New text from ${formatNumber(n.customer_number)}`),
  idle: (n) => `${formatNumber(n.customer_number)} is waiting: the owner is away`,
  assigned: (n) => `${formatNumber(n.customer_number)} was assigned to you`,
  automation: () => "From an automation",
};
const ACTION_LABELS = { accept: "Accept", dismiss: "Dismiss", block: "Block", assign: "Assign to me", view: "Open" };

export function setUnread(total) {
  const n = Math.max(0, Number(total) || 0);
  countBadge.textContent = n > 99 ? "99+" : String(n);
  countBadge.hidden = n === 0;
  document.title = n ? `(${n}) ${baseTitle}` : baseTitle;
  // The home page's "unread texts" follows the bell.
  const homeCount = document.querySelector("[data-unread-total]");
  if (homeCount) homeCount.textContent = String(n);
}

function render() {
  list.replaceChildren(
    ...[...notifications.values()]
      .sort((a, b) => (b.updated_at || "").localeCompare(a.updated_at || ""))
      .map((n) => renderOne(n)),
  );
  empty.hidden = notifications.size > 0;
}

function inboxLink(n) {
  return `${root.dataset.inboxUrl}conversations/${n.conversation_id}`;
}

function renderOne(n) {
  const title = (TITLES[n.kind] || TITLES.message)(n);
  const actions = n.actions.map((action) => {
    if (action === "view") {
      return h("a", { class: "button small", href: n.link, onclick: () => markRead(n) }, ACTION_LABELS.view);
    }
    return h(
      "button",
      {
        type: "button",
        class: `small ${action === "accept" || action === "assign" ? "primary" : ""} ${action === "block" ? "danger" : ""}`.trim(),
        onclick: () => act(n, action),
      },
      ACTION_LABELS[action] || action,
    );
  });
  if (!n.actions.includes("view")) {
    actions.push(h("a", { class: "button small", href: inboxLink(n), onclick: () => markRead(n) }, "Open"));
  }
  return h(
    "li",
    { class: `notif ${n.is_read ? "" : "unread"}`, dataset: { notificationId: n.id, testid: "notification" } },
    avatar(n.customer_number, "sm"),
    h(
      "div",
      {},
      h("div", { class: "notif-title" }, title),
      h("div", { class: "notif-preview" }, n.preview || ""),
      h("div", { class: "hint" }, shortTime(n.updated_at || n.created_at)),
      h("div", { class: "notif-actions" }, actions),
    ),
  );
}

async function load() {
  const { ok, data } = await api("notifications");
  if (!ok) return;
  notifications = new Map((data.results || data).map((n) => [n.id, n]));
  loaded = true;
  render();
}

async function refreshCount() {
  const { ok, data } = await api("notifications/summary");
  if (!ok) return;
  setUnread(data.unread_total);
  wantsDesktop = data.desktop_notifications;
  wantsSound = data.notification_sound;
  preferencesKnown = true;
  const early = heardEarly;
  heardEarly = [];
  for (const n of early) announce(n);
}

function announce(n) {
  if (!preferencesKnown) {
    if (heardEarly.length < 20) heardEarly.push(n);
    return;
  }
  if (wantsSound) chime();
  if (wantsDesktop && document.visibilityState !== "visible") desktop(n);
}

function markRead(n) {
  if (!n.is_read) api(`notifications/${n.id}/read`, { method: "POST" });
}

async function act(n, action, confirm = false) {
  if (action === "block") {
    const sure = await ask(`Block ${formatNumber(n.customer_number)} for the whole organization? Their texts will no longer notify anyone.`, { confirmLabel: "Block", danger: true });
    if (!sure) return;
  }
  const body = action === "assign" ? { confirm } : undefined;
  const { ok, status, data } = await api(`conversations/${n.conversation_id}/${action}`, { method: "POST", body });
  if (status === 409 && data && data.needs_confirmation) {
    if (await ask(data.detail, { confirmLabel: "Assign to me" })) act(n, action, true);
    return;
  }
  if (!ok) {
    toast(errorText(data), "error");
    return;
  }
  toast({ accept: "Accepted: the conversation is yours.", dismiss: "Dismissed.", block: "Number blocked.", assign: "Assigned to you." }[action] || "Done.");
  notifications.delete(n.id);
  render();
  if (action === "accept" || action === "assign") location.assign(inboxLink(n));
}

function open() {
  panel.hidden = false;
  button.setAttribute("aria-expanded", "true");
  if (!loaded) load();
}

function close() {
  panel.hidden = true;
  button.setAttribute("aria-expanded", "false");
}

button.addEventListener("click", () => (panel.hidden ? open() : close()));
document.addEventListener("click", (event) => {
  if (!panel.hidden && !root.contains(event.target)) close();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel.hidden) {
    close();
    button.focus();
  }
});
root.querySelector("[data-bell-read-all]").addEventListener("click", async () => {
  const { ok } = await api("notifications/read-all", { method: "POST" });
  if (!ok) return;
  for (const n of notifications.values()) n.is_read = true;
  render();
});

function chime() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.35);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.35);
  } catch {
    // No audio (autoplay rules before the first click): the bell still counts.
  }
}

function desktop(n) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const shown = new Notification((TITLES[n.kind] || TITLES.message)(n), { body: n.preview || "", tag: `qs-${n.id}` });
  shown.addEventListener("click", () => {
    window.focus();
    location.assign(n.link);
  });
}

let recount = null;
live.on("notification.created", (event) => {
  const n = event.notification;
  notifications.set(n.id, n);
  if (loaded) render();
  setUnread(event.unread_total);
  announce(n);
});
live.on("notification.cleared", (event) => {
  for (const id of event.notification_ids) notifications.delete(id);
  if (loaded) render();
  setUnread(event.unread_total);
});
live.on("conversation.updated", (event) => {
  // Your own copy (the thread's has no counts) carries your total: a read elsewhere (another tab, the
  // inbox) changes it without a notification event. Never a fetch per event: 20 open pages would ask
  // the server 20 times for every text.
  if (event.unread === null || event.unread === undefined) return;
  if (typeof event.unread_total === "number") {
    clearTimeout(recount);
    setUnread(event.unread_total);
    return;
  }
  clearTimeout(recount);
  recount = setTimeout(refreshCount, 250);
});
live.onReconnect(() => {
  refreshCount();
  if (loaded) load();
});
// Pages (and their tests) can tell when the live feed is connected.
live.on("hello", () => {
  document.body.dataset.live = "connected";
});
live.on("live.closed", () => {
  document.body.dataset.live = "disconnected";
});

refreshCount();
