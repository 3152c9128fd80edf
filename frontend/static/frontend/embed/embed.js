// The embed page (docs/embed.md): exchange the launch token once for an embed session, then mount the
// record widget. The token comes from the URL fragment (or, for Salesforce Canvas, from the page) and is
// removed from the address bar before anything else happens. The session is a partitioned cookie when the
// browser keeps it; otherwise its key stays in this module's memory only (Authorization header for the API,
// a WebSocket subprotocol for live events), never in storage or a URL.

import { api, apiSettings, ApiError } from "../workspace/api.js";
import { live } from "../workspace/live.js";
import { mountConversation } from "../workspace/thread.js";

const root = document.querySelector("[data-embed]");
const origins = JSON.parse(root.dataset.origins || "[]");

function originAllowed(origin) {
  return origins.some((allowed) => {
    if (allowed === origin) return true;
    const star = allowed.indexOf("://*.");
    if (star < 0) return false;
    const scheme = allowed.slice(0, star + 3);
    const suffix = allowed.slice(star + 4); // ".example.com"
    return origin.startsWith(scheme) && origin.endsWith(suffix) && !origin.slice(scheme.length).includes("/");
  });
}

// The CRM page framing us, when the browser tells (Chromium, Safari) and it is one of the allowed origins.
function parentOrigin() {
  const ancestors = window.location.ancestorOrigins;
  if (ancestors && ancestors.length && originAllowed(ancestors[0])) return ancestors[0];
  return null;
}

function tellParent(message) {
  if (window.parent === window) return;
  const known = parentOrigin();
  // Never "*": the browser delivers a message only to a parent of the named origin.
  for (const origin of known ? [known] : origins.filter((o) => !o.includes("*"))) {
    window.parent.postMessage({ source: "quicksend", ...message }, origin);
  }
}

function show(state) {
  for (const section of root.querySelectorAll("[data-when]")) section.hidden = section.dataset.when !== state;
  root.dataset.state = state;
  tellParent({ type: "quicksend.state", state });
}

function takeLaunchToken() {
  const fromPage = root.dataset.launch || "";
  delete root.dataset.launch;
  root.removeAttribute("data-launch");
  const match = window.location.hash.match(/(?:^#|&)launch=([^&]+)/);
  if (match || window.location.hash) {
    // Out of the address bar (and so out of history, bookmarks and any Referer) at once.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return fromPage || (match ? decodeURIComponent(match[1]) : "");
}

async function exchange(token) {
  const { org, recordType, externalId, phone } = root.dataset;
  const response = await fetch("/api/v1/embed/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-QuickSend-Embed": "1" },
    body: JSON.stringify({ token, org, record_type: recordType, external_id: externalId, phone }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new ApiError(response.status, body.detail || "Not allowed."), { body });
  return body;
}

// Does the browser send our partitioned cookie back? If not, the key is used from memory.
async function useSession(key) {
  apiSettings.headers["X-QuickSend-Embed"] = "1";
  try {
    const context = await api("/api/v1/embed/context");
    document.body.dataset.embedAuth = "cookie";
    live.configure({ path: "/ws/embed/", protocols: ["qs-embed"] });
    return context;
  } catch (error) {
    if (error.status !== 401 && error.status !== 403) throw error;
  }
  apiSettings.headers.Authorization = `Embed ${key}`;
  live.configure({ path: "/ws/embed/", protocols: ["qs-embed", `qs-embed-key.${key}`] });
  document.body.dataset.embedAuth = "memory";
  return api("/api/v1/embed/context");
}

let widget = null;

function mountWidget(context) {
  show("ready");
  const host = root.querySelector("#sms-widget");
  widget = mountConversation(host, { recordType: context.record.type, recordId: context.record.id, compact: true });
}

function showMissing(context) {
  show("missing");
  const section = root.querySelector('[data-when="missing"]');
  const what = context.name || context.phone || context.external_id;
  section.querySelector("[data-missing-text]").textContent = `QuickSend has no record for ${what} yet.`;
  const button = section.querySelector("[data-create]");
  button.hidden = !context.can_create;
  section.querySelector("[data-cannot-create]").hidden = context.can_create;
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      mountWidget(await api("/api/v1/embed/record", { method: "POST", json: {} }));
    } catch (error) {
      button.disabled = false;
      refuse(error.detail);
    }
  });
}

function refuse(reason) {
  root.querySelector("[data-reason]").textContent = reason || "Open the record again in your CRM.";
  show("refused");
}

function unmapped(body) {
  const section = root.querySelector('[data-when="unmapped"]');
  section.querySelector("[data-crm]").textContent = body.crm || "";
  section.querySelector("[data-crm-user]").textContent = body.crm_user_id || "—";
  section.querySelector("[data-email]").textContent = body.email || "—";
  show("unmapped");
}

window.addEventListener("message", (event) => {
  if (event.source !== window.parent || !originAllowed(event.origin)) return;
  const data = event.data || {};
  if (data.type === "quicksend.focus" && widget) widget.focusComposer();
});

async function start() {
  if (root.dataset.state === "unsaved") {
    show("unsaved");
    return;
  }
  const token = takeLaunchToken();
  if (!token) {
    refuse("This panel needs a fresh link from your CRM. Open the record again.");
    return;
  }
  let session;
  try {
    session = await exchange(token);
  } catch (error) {
    if (error.body && error.body.code === "unmapped") unmapped(error.body);
    else refuse(error.detail);
    return;
  }
  const context = await useSession(session.key);
  if (context.state === "ready") mountWidget(context);
  else showMissing(context);
}

start().catch((error) => refuse(error.detail || "QuickSend could not be reached. Try again."));
