// The inbox page: the conversation list (tabs, filters, number picker, search, infinite scroll with the API's
// keyset cursor, bulk actions), live updates over the WebSocket, the selected conversation's header and
// actions (Accept / Dismiss / Block, Assign to me, Reassign, Create a record, Archive / Reopen), the shared
// thread-and-composer, "New text", and keyboard shortcuts. Everything goes through /api/v1.
import { sourceName, UNATTENDED_SOURCES } from "../../frontend/workspace/format.js";
import { live } from "../../frontend/workspace/live.js";
import { api, ask, avatar, errorText, formatNumber, fullTime, h, icon, shortTime, toast } from "../../frontend/ui.js";
import { mountConversation } from "./thread_mount.js";

const root = document.querySelector("[data-inbox]");
const listEl = root.querySelector("[data-list]");
const listEnd = root.querySelector("[data-list-end]");
const listEmpty = root.querySelector("[data-list-empty]");
const emptyText = root.querySelector("[data-empty-text]");
const searchInput = root.querySelector("[data-search]");
const filterSelect = root.querySelector("[data-filter]");
const numberSelect = root.querySelector("[data-number]");
const bulkBar = root.querySelector("[data-bulk]");
const selectAll = root.querySelector("[data-select-all]");
const pane = {
  empty: root.querySelector("[data-pane-empty]"),
  view: root.querySelector("[data-conv-view]"),
  avatar: root.querySelector("[data-conv-avatar]"),
  name: root.querySelector("[data-conv-name]"),
  sub: root.querySelector("[data-conv-sub]"),
  facts: root.querySelector("[data-conv-facts]"),
  actions: root.querySelector("[data-conv-actions]"),
  banner: root.querySelector("[data-request-banner]"),
  mount: root.querySelector("[data-thread-mount]"),
};
const USER_ID = Number(root.dataset.userId);

// "You" for a text sent from QuickSend by hand; "Automation: Open house" for one an automation sent.
function previewSender(last) {
  return UNATTENDED_SOURCES.has(last.source) ? sourceName(last.source, last.source_label) : "You";
}
const INBOX_URL = root.dataset.inboxUrl;
const RECORD_URLS = JSON.parse(document.getElementById("inbox-record-urls").textContent);
const RECORD_FIELDS = JSON.parse(document.getElementById("inbox-record-fields").textContent);
const TABS = [...root.querySelectorAll("[data-tab]")].map((b) => b.dataset.tab);
const FAILED = new Set(["failed", "undelivered"]);
const EMPTY_TEXT = {
  open: "When a customer texts one of your numbers, the conversation shows up here.",
  unread: "Nothing unread. New texts show up here and on the bell.",
  awaiting: "Nobody is waiting for a reply.",
  failed: "No conversation's last message failed.",
  archived: "Archived conversations show up here. Archive one with the Archive button or the e key.",
};

const state = {
  tab: "all",
  filter: "open",
  number: "",
  q: "",
  items: [], // conversations in list order (API shape)
  next: null,
  loading: false,
  generation: 0,
  selected: root.dataset.conversationId ? Number(root.dataset.conversationId) : null,
  checked: new Set(),
  current: null, // the selected conversation (API shape)
  widget: null, // the mounted thread-and-composer
  // Conversations I dismissed here, with the time of their newest message then: an answer or event that
  // left before the dismiss must not put them back; a text from them after it does.
  dismissedAt: new Map(),
};

// --- query string ⇄ state ---------------------------------------------------------------------------
function readQuery() {
  const params = new URLSearchParams(location.search);
  state.tab = TABS.includes(params.get("tab")) ? params.get("tab") : TABS.includes("all") ? "all" : TABS[0];
  state.filter = EMPTY_TEXT[params.get("filter")] ? params.get("filter") : "open";
  state.number = params.get("number") || "";
  state.q = params.get("q") || "";
  searchInput.value = state.q;
  filterSelect.value = state.filter;
  numberSelect.value = state.number;
  for (const button of root.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === state.tab));
  }
}

function queryString() {
  const params = new URLSearchParams();
  if (state.tab !== "all") params.set("tab", state.tab);
  if (state.filter !== "open") params.set("filter", state.filter);
  if (state.number) params.set("number", state.number);
  if (state.q) params.set("q", state.q);
  const text = params.toString();
  return text ? `?${text}` : "";
}

function pagePath() {
  return (state.selected ? `${INBOX_URL}conversations/${state.selected}` : INBOX_URL) + queryString();
}

function apiParams(cursor) {
  const params = new URLSearchParams({ page_size: "30" });
  if (state.tab === "mine") params.set("owner", "me");
  else if (state.tab === "team") params.set("mine", "true");
  else if (state.tab === "unassigned") params.set("owner", "none");
  const filters = {
    open: { status: "open" },
    unread: { status: "open", unread: "true" },
    awaiting: { status: "open", awaiting: "true" },
    failed: { status: "all", failed: "true" },
    archived: { status: "archived" },
  }[state.filter];
  for (const [key, value] of Object.entries(filters)) params.set(key, value);
  if (state.number) params.set("number", state.number);
  if (state.q) params.set("q", state.q);
  if (cursor) params.set("cursor", cursor);
  return params.toString();
}

// Does a conversation (as an event brings it) belong in the list as filtered now?
function matches(c) {
  const f = state.filter;
  if (f === "archived" ? c.status !== "archived" : f !== "failed" && c.status !== "open") return false;
  if (f === "unread" && !c.unread) return false;
  if (f === "awaiting" && c.last_message.direction !== "inbound") return false;
  if (f === "failed" && !FAILED.has(c.last_message.status)) return false;
  if (state.number && String(c.phone_number.id) !== state.number) return false;
  if (state.tab === "mine" && (!c.owner || c.owner.id !== USER_ID)) return false;
  if (state.tab === "unassigned" && c.owner) return false;
  return !c.dismissed && !dismissedHere(c);
}

function dismissedHere(c) {
  if (!state.dismissedAt.has(c.id)) return false;
  const newer = c.last_message.direction === "inbound" && (c.last_message.at || "") > state.dismissedAt.get(c.id);
  if (newer) state.dismissedAt.delete(c.id);
  return !newer;
}

// --- the list ---------------------------------------------------------------------------------------
function displayName(c) {
  return c.record_name || c.regarding_name || formatNumber(c.customer_number);
}

function renderRow(c) {
  const name = displayName(c);
  const failed = FAILED.has(c.last_message.status);
  const outbound = c.last_message.direction === "outbound";
  const owner = c.owner ? c.owner.name : c.team ? `Team ${c.team.name}` : "Unassigned";
  const check = h("input", {
    type: "checkbox",
    class: "conv-check",
    "aria-label": `Select ${name}`,
    onchange: (event) => toggleChecked(c.id, event.target.checked),
  });
  check.checked = state.checked.has(c.id);
  return h(
    "li",
    { class: `conv-item ${c.unread ? "unread" : ""}`, dataset: { id: c.id, testid: "conversation-row" } },
    check,
    h(
      "a",
      {
        class: "conv-row",
        href: `${INBOX_URL}conversations/${c.id}${queryString()}`,
        "aria-current": c.id === state.selected ? "true" : null,
        onclick: (event) => {
          if (event.metaKey || event.ctrlKey || event.shiftKey) return;
          event.preventDefault();
          select(c.id);
        },
      },
      avatar(name),
      h(
        "div",
        { class: "conv-main" },
        h(
          "div",
          { class: "conv-top" },
          h("span", { class: "conv-name" }, name),
          h("time", { class: "conv-time", datetime: c.last_message.at, title: fullTime(c.last_message.at) }, shortTime(c.last_message.at)),
        ),
        h(
          "div",
          { class: "conv-bottom" },
          h("span", { class: "conv-preview", dataset: { testid: "conversation-preview" } }, outbound ? `${previewSender(c.last_message)}: ` : "", c.last_message.preview || "(media)"),
          failed ? h("span", { class: "chip danger", title: "The last message was not delivered" }, icon("alert", "sm"), "Failed") : null,
          c.unread ? h("span", { class: "unread-badge", "aria-label": `${c.unread} unread` }, c.unread > 99 ? "99+" : c.unread) : null,
        ),
        h("div", { class: "conv-meta" }, `${c.phone_number.label || formatNumber(c.phone_number.phone_number)} · ${owner}${c.status === "archived" ? " · Archived" : ""}`),
      ),
    ),
  );
}

function renderList() {
  listEl.replaceChildren(...state.items.map(renderRow));
  listEl.setAttribute("aria-busy", String(state.loading));
  const none = !state.loading && state.items.length === 0;
  listEmpty.hidden = !none;
  emptyText.textContent = state.q ? `Nothing matches “${state.q}”. Try a number, a name or a word from a text.` : EMPTY_TEXT[state.filter];
  listEnd.textContent = state.loading ? "Loading…" : state.next ? "" : state.items.length > 8 ? "That's all." : "";
  renderBulk();
}

async function load({ reset = false } = {}) {
  if (state.loading && !reset) return;
  if (reset) {
    state.generation += 1;
    state.items = [];
    state.next = null;
  }
  const generation = state.generation;
  state.loading = true;
  renderList();
  const { ok, data } = await api(`conversations?${apiParams(reset ? null : state.next)}`);
  if (generation !== state.generation) return; // filters changed meanwhile
  state.loading = false;
  if (!ok) {
    listEnd.textContent = errorText(data, "Could not load conversations.");
    return;
  }
  const known = new Set(state.items.map((c) => c.id));
  state.items.push(...data.results.filter((c) => !known.has(c.id) && !dismissedHere(c)));
  state.next = data.next;
  renderList();
  // The page did not fill the list: fetch the next one (the end of the list is already in view).
  const scroller = listEl.parentElement;
  const box = scroller.scrollHeight > scroller.clientHeight ? scroller.getBoundingClientRect() : { bottom: window.innerHeight };
  if (state.next && listEnd.getBoundingClientRect().top < box.bottom + 200) load();
}

// The first page again, merged in (a conversation we did not have appeared, or after a reconnect).
let refreshTimer = null;
function refreshTop() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    const generation = state.generation;
    const { ok, data } = await api(`conversations?${apiParams(null)}`);
    if (!ok || generation !== state.generation) return;
    const results = data.results.filter((c) => !dismissedHere(c));
    const fresh = new Map(results.map((c) => [c.id, c]));
    const rest = state.items.filter((c) => !fresh.has(c.id));
    state.items = [...results, ...rest].sort(byActivity);
    renderList();
  }, 150);
}

function byActivity(a, b) {
  return (b.last_message.at || "").localeCompare(a.last_message.at || "") || b.id - a.id;
}

new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && state.next && !state.loading) load();
}, { rootMargin: "0px 0px 300px 0px" }).observe(listEnd);

// --- selection and the conversation pane -------------------------------------------------------------
async function select(id, { push = true, focusThread = false } = {}) {
  state.selected = id;
  root.classList.toggle("has-selection", Boolean(id));
  if (push) history.pushState({ selected: id }, "", pagePath());
  for (const row of listEl.querySelectorAll(".conv-row")) {
    if (Number(row.closest("li").dataset.id) === id) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
  if (state.widget) {
    state.widget.destroy();
    state.widget = null;
  }
  if (!id) {
    pane.view.hidden = true;
    pane.empty.hidden = false;
    state.current = null;
    return;
  }
  pane.empty.hidden = true;
  pane.view.hidden = false;
  const { ok, data } = await api(`conversations/${id}`);
  if (state.selected !== id) return;
  if (!ok) {
    state.current = null;
    pane.name.textContent = "Conversation not found";
    pane.sub.textContent = "It may have been reassigned to someone else.";
    pane.actions.replaceChildren();
    pane.facts.replaceChildren();
    pane.banner.hidden = true;
    pane.mount.replaceChildren();
    return;
  }
  showConversation(data);
  live.subscribe("conv", id);
  state.widget = mountConversation(pane.mount, data, { focus: focusThread });
  if (data.unread) markRead(id);
}

function recordLink(type, id, name) {
  if (!type || !id || !RECORD_URLS[type]) return null;
  return h("a", { class: "chip info", href: RECORD_URLS[type].replace("/0/", `/${id}/`) }, icon("link", "sm"), name || `${type} ${id}`);
}

function showConversation(c) {
  state.current = c;
  const name = displayName(c);
  pane.avatar.replaceChildren(avatar(name));
  pane.name.textContent = name;
  const via = c.phone_number.label || formatNumber(c.phone_number.phone_number);
  pane.sub.textContent = name === formatNumber(c.customer_number) ? `via ${via}` : `${formatNumber(c.customer_number)} · via ${via}`;
  const owner = c.owner ? `Owner: ${c.owner.id === USER_ID ? "you" : c.owner.name}` : "Unassigned";
  const facts = [
    h("span", { class: `chip ${c.owner ? "" : "warn"}`, dataset: { testid: "conversation-owner" } }, icon("user", "sm"), owner),
    c.team ? h("span", { class: "chip" }, icon("users", "sm"), `Team ${c.team.name}`) : null,
    h("span", { class: `chip chip-${c.status}` }, c.status === "archived" ? "Archived" : "Open"),
    recordLink(c.record_type, c.record_id, c.record_name),
    recordLink(c.regarding_type, c.regarding_id, c.regarding_name),
  ];
  pane.facts.replaceChildren(...facts.filter(Boolean));
  const first = !c.owner && !c.team && c.status === "open";
  pane.banner.hidden = !first;
  const buttons = [];
  if (c.owner?.id !== USER_ID && !first) {
    buttons.push(actionButton("Assign to me", "user-plus", () => act("assign")));
  }
  buttons.push(actionButton("Reassign", "users", openReassign));
  if (!c.record_id && !c.regarding_id && Object.keys(RECORD_FIELDS).length) {
    buttons.push(actionButton("Create record", "user-plus", openCreateRecord));
  }
  if (c.status === "archived") buttons.push(actionButton("Reopen", "reopen", () => act("reopen")));
  else buttons.push(actionButton("Archive", "archive", () => act("archive"), "e"));
  pane.actions.replaceChildren(...buttons);
}

function actionButton(label, iconName, handler, key) {
  return h("button", { type: "button", class: "small", onclick: handler, title: key ? `${label} (${key})` : null }, icon(iconName, "sm"), label);
}

async function markRead(id) {
  const { ok, data } = await api(`conversations/${id}/read`, { method: "POST" });
  if (ok && data) upsert(data);
}

function upsert(c, { unread } = {}) {
  const index = state.items.findIndex((x) => x.id === c.id);
  const previous = index >= 0 ? state.items[index] : null;
  const merged = { ...(previous || {}), ...c };
  if (unread !== undefined && unread !== null) merged.unread = unread;
  else if (previous && c.unread === undefined) merged.unread = previous.unread;
  if (merged.unread === undefined) merged.unread = 0;
  if (merged.dismissed === undefined) merged.dismissed = false;
  if (merged.record_name === undefined) merged.record_name = "";
  if (merged.regarding_name === undefined) merged.regarding_name = "";
  if (index >= 0) state.items.splice(index, 1);
  if (matches(merged)) {
    state.items.push(merged);
    state.items.sort(byActivity);
  } else if (index < 0) {
    return;
  }
  renderList();
  if (state.current && state.current.id === merged.id) showConversation({ ...state.current, ...merged });
}

const DONE = { accept: "Accepted: the conversation is yours.", dismiss: "Dismissed until they text again.", block: "Number blocked for everyone.", archive: "Archived.", reopen: "Reopened.", assign: "Assigned to you." };

async function act(action, { id = state.selected, confirm = false } = {}) {
  if (!id) return;
  if (action === "block") {
    const c = state.current;
    const sure = await ask(`Block ${formatNumber(c?.customer_number)} for the whole organization? Their texts will no longer notify anyone.`, { confirmLabel: "Block", danger: true });
    if (!sure) return;
  }
  const body = action === "assign" ? { confirm } : undefined;
  // Where to go if the row leaves the list: decided now, as the live event may remove it before the answer.
  const following = state.selected === id ? neighbour(1) || neighbour(-1) : null;
  if (action === "dismiss") {
    const c = state.items.find((x) => x.id === id) || (state.current?.id === id ? state.current : null);
    state.dismissedAt.set(id, c?.last_message?.at || "");
  }
  const { ok, status, data } = await api(`conversations/${id}/${action}`, { method: "POST", body });
  if (!ok && action === "dismiss") state.dismissedAt.delete(id);
  if (status === 409 && data?.needs_confirmation) {
    if (await ask(data.detail, { confirmLabel: "Assign to me" })) act(action, { id, confirm: true });
    return;
  }
  if (!ok) {
    toast(errorText(data), "error");
    return;
  }
  toast(DONE[action] || "Done.");
  if (status === 204 || !data) {
    // No longer visible to me (e.g. dismissed): leave it.
    state.items = state.items.filter((c) => c.id !== id);
    renderList();
    if (state.selected === id) select(null);
    return;
  }
  if (action === "dismiss") data.dismissed = true;
  upsert(data);
  if (state.selected === id) {
    if ((action === "archive" || action === "reopen") && !matches(data)) {
      state.items = state.items.filter((c) => c.id !== id);
      select(following || null);
    } else {
      showConversation({ ...state.current, ...data });
    }
  }
}

// --- bulk ---------------------------------------------------------------------------------------------
function toggleChecked(id, on) {
  if (on) state.checked.add(id);
  else state.checked.delete(id);
  renderBulk();
}

function renderBulk() {
  const n = state.checked.size;
  bulkBar.hidden = n === 0;
  root.classList.toggle("selecting", n > 0);
  root.querySelector("[data-bulk-count]").textContent = `${n} selected`;
  selectAll.checked = n > 0 && n === state.items.length;
  selectAll.indeterminate = n > 0 && n < state.items.length;
}

selectAll.addEventListener("change", () => {
  state.checked = selectAll.checked ? new Set(state.items.map((c) => c.id)) : new Set();
  renderList();
});

root.querySelector("[data-bulk-assignee]").addEventListener("change", async (event) => {
  const value = event.target.value;
  if (!value) return;
  const [kind, id] = value.split(":");
  const ids = [...state.checked];
  const { ok, data } = await api("conversations/bulk-reassign", { method: "POST", body: { ids, [kind]: Number(id) } });
  event.target.value = "";
  if (!ok) {
    toast(errorText(data), "error");
    return;
  }
  toast(`${data.changed} conversation(s) reassigned.`);
  state.checked.clear();
  load({ reset: true });
});

for (const button of root.querySelectorAll("[data-bulk-action]")) {
  button.addEventListener("click", async () => {
    const action = button.dataset.bulkAction;
    const ids = [...state.checked];
    const results = await Promise.all(ids.map((id) => api(`conversations/${id}/${action}`, { method: "POST" })));
    const failed = results.filter((r) => !r.ok);
    toast(failed.length ? `${ids.length - failed.length} done; ${failed.length} failed: ${errorText(failed[0].data)}` : `${ids.length} conversation(s) ${action === "read" ? "marked read" : "archived"}.`, failed.length ? "error" : "info");
    state.checked.clear();
    load({ reset: true });
  });
}

// --- dialogs ------------------------------------------------------------------------------------------
function wireDialog(dialog) {
  for (const close of dialog.querySelectorAll("[data-close]")) close.addEventListener("click", () => dialog.close());
}
const composeDialog = document.getElementById("compose-dialog");
const reassignDialog = document.getElementById("reassign-dialog");
const createDialog = document.getElementById("create-record-dialog");
const shortcutsDialog = document.getElementById("shortcuts-dialog");
[composeDialog, reassignDialog, createDialog, shortcutsDialog].forEach(wireDialog);

function openCompose() {
  composeDialog.querySelector("[data-compose-error]").textContent = "";
  composeDialog.showModal();
  composeDialog.querySelector("[data-compose-to]").focus();
}
for (const b of document.querySelectorAll("[data-open-compose]")) b.addEventListener("click", openCompose);

composeDialog.querySelector("[data-compose-form]").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const submit = form.querySelector("button[type=submit]");
  const error = form.querySelector("[data-compose-error]");
  submit.disabled = true;
  const body = { to: form.to.value.trim(), body: form.body.value };
  if (form.from.value) body.from = form.from.value;
  const key = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  const { ok, data } = await api("messages", { method: "POST", body, headers: { "Idempotency-Key": key } });
  submit.disabled = false;
  if (!ok) {
    error.textContent = errorText(data, "Could not send.");
    return;
  }
  form.reset();
  composeDialog.close();
  toast("Sent.");
  const conversationId = data.conversation;
  if (conversationId) {
    refreshTop();
    select(conversationId);
  }
});

document.querySelector("[data-open-shortcuts]").addEventListener("click", () => shortcutsDialog.showModal());

function openReassign() {
  const form = reassignDialog.querySelector("form");
  form.user.value = state.current?.owner?.id ?? "";
  form.team.value = state.current?.team?.id ?? "";
  form.querySelector("[data-reassign-error]").textContent = "";
  reassignDialog.showModal();
}

reassignDialog.querySelector("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {};
  if (form.user.value) body.user = Number(form.user.value);
  if (form.team.value) body.team = Number(form.team.value);
  const { ok, status, data } = await api(`conversations/${state.selected}/reassign`, { method: "POST", body });
  if (!ok) {
    form.querySelector("[data-reassign-error]").textContent = errorText(data);
    return;
  }
  reassignDialog.close();
  toast("Reassigned.");
  if (status === 204) {
    state.items = state.items.filter((c) => c.id !== state.selected);
    renderList();
    select(null);
  } else {
    upsert(data);
  }
});

function openCreateRecord() {
  const form = createDialog.querySelector("form");
  form.reset();
  createDialog.querySelector("[data-create-number]").textContent = formatNumber(state.current?.customer_number);
  form.querySelector("[data-create-error]").textContent = "";
  showRecordFields();
  createDialog.showModal();
}

function showRecordFields() {
  const form = createDialog.querySelector("form");
  const spec = RECORD_FIELDS[form.record_type.value] || {};
  form.querySelector("[data-person-fields]").hidden = !spec.person;
  form.querySelector("[data-title-fields]").hidden = Boolean(spec.person);
  form.querySelector("[data-title-label]").textContent = spec.label || "Name";
}
createDialog.querySelector("[data-create-type]").addEventListener("change", showRecordFields);

createDialog.querySelector("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const type = form.record_type.value;
  const spec = RECORD_FIELDS[type] || {};
  const fields = spec.person
    ? { first_name: form.first_name.value.trim(), last_name: form.last_name.value.trim() }
    : spec.field
      ? { [spec.field]: form.title.value.trim() }
      : {};
  const { ok, data } = await api(`conversations/${state.selected}/create-record`, { method: "POST", body: { record_type: type, fields } });
  if (!ok) {
    form.querySelector("[data-create-error]").textContent = errorText(data);
    return;
  }
  createDialog.close();
  toast("Record created and linked.");
  const fresh = await api(`conversations/${state.selected}`);
  if (fresh.ok) upsert(fresh.data);
});

// --- filters ------------------------------------------------------------------------------------------
function changed() {
  history.replaceState({ selected: state.selected }, "", pagePath());
  state.checked.clear();
  load({ reset: true });
}
for (const button of root.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => {
    state.tab = button.dataset.tab;
    for (const b of root.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b === button));
    changed();
  });
}
filterSelect.addEventListener("change", () => {
  state.filter = filterSelect.value;
  changed();
});
numberSelect.addEventListener("change", () => {
  state.number = numberSelect.value;
  changed();
});
let searchTimer = null;
searchInput.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.q = searchInput.value.trim();
    changed();
  }, 250);
});
root.querySelector("[data-filters]").addEventListener("submit", (event) => event.preventDefault());
root.querySelector("[data-back]").addEventListener("click", (event) => {
  event.preventDefault();
  select(null);
});
for (const b of pane.banner.querySelectorAll("[data-act]")) b.addEventListener("click", () => act(b.dataset.act));

window.addEventListener("popstate", () => {
  const match = /\/conversations\/(\d+)/.exec(location.pathname);
  readQuery();
  load({ reset: true });
  select(match ? Number(match[1]) : null, { push: false });
});

// --- keyboard -----------------------------------------------------------------------------------------
function neighbour(step) {
  const index = state.items.findIndex((c) => c.id === state.selected);
  const target = state.items[index + step] || (index < 0 ? state.items[0] : null);
  return target ? target.id : null;
}

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable=true], dialog");
}

document.addEventListener("keydown", (event) => {
  if (event.metaKey || event.ctrlKey || event.altKey) return;
  if (event.key === "Escape" && typing(event.target) && !event.target.closest("dialog")) {
    event.target.blur();
    return;
  }
  if (typing(event.target) || document.querySelector("dialog[open]")) return;
  const key = event.key;
  const go = (step) => {
    const id = neighbour(step);
    if (id) {
      select(id);
      listEl.querySelector(`[data-id="${id}"]`)?.scrollIntoView({ block: "nearest" });
    }
  };
  if (key === "j" || key === "ArrowDown") go(1);
  else if (key === "k" || key === "ArrowUp") go(-1);
  else if (key === "e" && state.selected) {
    // The selected conversation, even while its pane is still loading (its row in the list knows its status).
    const c = state.current?.id === state.selected ? state.current : state.items.find((x) => x.id === state.selected);
    if (c) act(c.status === "archived" ? "reopen" : "archive");
  }
  else if (key === "r") state.widget?.focusComposer();
  else if (key === "a") pane.mount.querySelector("input[type=file]")?.click();
  else if (key === "x" && state.selected) {
    toggleChecked(state.selected, !state.checked.has(state.selected));
    renderList();
  } else if (key === "c") openCompose();
  else if (key === "/") searchInput.focus();
  else if (key === "?") shortcutsDialog.showModal();
  else return;
  event.preventDefault();
});

// --- live ---------------------------------------------------------------------------------------------
live.on("conversation.updated", (event) => {
  const c = event.conversation;
  const known = state.items.some((x) => x.id === c.id);
  if (known) upsert(c, { unread: event.unread });
  else if (event.unread !== null && matches({ ...c, unread: event.unread || 0, dismissed: false })) refreshTop();
  else if (state.current?.id === c.id) showConversation({ ...state.current, ...c });
  if (state.current?.id === c.id && event.unread) markRead(c.id);
});
live.onReconnect(() => {
  refreshTop();
  if (state.selected) select(state.selected, { push: false });
});

readQuery();
load({ reset: true });
if (state.selected) select(state.selected, { push: false });
