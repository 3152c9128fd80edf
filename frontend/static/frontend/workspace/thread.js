// The conversation widget: a thread and its composer, for a CRM record or for one conversation.
//
//   import { mountConversation } from "/static/frontend/workspace/thread.js";
//
//   const widget = mountConversation(rootEl, {
//     recordType: "lead", recordId: 12,   // a record's texts (the record page) …
//     conversationId: 7,                  // … or one conversation (the inbox's right pane); one of the two
//     compact: false,                     // true: tighter layout for side panels (also automatic < 420 px)
//     onConversation: (conversation) => {},  // the conversation shown changed (null: none yet)
//   });
//   widget.conversationId;   // the conversation shown (null before the first text)
//   widget.reload();         // refetch the context and the newest messages (a REST snapshot)
//   widget.focusComposer();  // put the cursor in the message box
//   widget.destroy();        // stop listening and empty rootEl
//
// Needs thread.css on the page. Everything comes from the REST API (GET /api/v1/texting, GET
// /api/v1/conversations/{id}/messages) and the live events of /ws/ ("message.created", "message.status",
// "conversation.updated", "consent.changed"); a message is rendered from the one shape both give. After a
// reconnect the widget refetches its snapshot. The record page mounts it from a container's data
// attributes (record.js).

import { api } from "./api.js";
import { mountComposer } from "./composer.js";
import { bytes, dayKey, dayLabel, el, fullTime, icon, initials, setTimeZone, sourceName, time } from "./format.js";
import { live } from "./live.js";
import { Presence } from "./presence.js";

const PAGE_SIZE = 30;
const STATUS_WORDS = {
  pending: ["Sending", "pending"],
  accepted: ["Sending", "pending"],
  scheduled: ["Scheduled", "pending"],
  queued: ["Sending", "pending"],
  sending: ["Sending", "pending"],
  sent: ["Sent", "sent"],
  partially_delivered: ["Partly delivered", "sent"],
  delivered: ["Delivered", "delivered"],
  read: ["Read", "delivered"],
  undelivered: ["Not delivered", "failed"],
  failed: ["Failed", "failed"],
  canceled: ["Canceled", "failed"],
};
// "Automation: Welcome" for a text an automation or campaign sent; the source alone for the others.
function senderOf(m) {
  return sourceName(m.source, m.source_label);
}

function byTime(a, b) {
  return a.created_at === b.created_at ? a.id - b.id : a.created_at < b.created_at ? -1 : 1;
}

class ConversationWidget {
  constructor(root, options) {
    this.root = root;
    this.options = options;
    this.context = null;
    this.conversation = null;
    this.messages = new Map();
    this.sessions = [];
    this.olderCursor = null;
    this.loadingOlder = false;
    this.dismissedRevocations = new Set();
    this.offs = [];
    this.build();
    this.listen();
    this.reload();
  }

  get conversationId() {
    return this.conversation ? this.conversation.id : null;
  }

  build() {
    this.root.classList.add("qs-conv");
    if (this.options.compact) this.root.classList.add("qs-compact");
    this.root.replaceChildren();
    this.header = el("header", { class: "qs-conv-head" });
    this.notices = el("div", { class: "qs-conv-notices" });
    this.older = el("p", { class: "qs-older", hidden: true });
    this.list = el("ol", { class: "qs-thread", "aria-label": "Messages" });
    // The thread is redrawn as a whole, so it is not itself a live region (it would be read out again on
    // every change); new texts and failures are announced on their own.
    this.scroller = el(
      "div",
      { class: "qs-scroll", role: "region", "aria-label": "Text messages", tabindex: "0" },
      this.older,
      this.list,
    );
    this.announcer = el("p", { class: "qs-visually-hidden", "aria-live": "polite" });
    this.status = el("p", { class: "qs-live-status", role: "status" });
    // Who else has this conversation open, who is typing (presence.js); not a live region: it changes often.
    this.presenceLine = el("p", { class: "qs-presence", "data-testid": "presence", hidden: true });
    this.presence = new Presence(this.presenceLine);
    this.offs.push(() => this.presence.destroy());
    this.composerHost = el("div", { class: "qs-composer-host" });
    this.root.append(
      this.header, this.notices, this.scroller, this.presenceLine, this.status, this.announcer, this.composerHost,
    );
    this.scroller.addEventListener("scroll", () => {
      if (this.scroller.scrollTop < 80) this.loadOlder();
    });
    this.composer = mountComposer(this.composerHost, {
      widget: this,
      onSent: (message) => this.afterSend(message),
    });
    const resize = new ResizeObserver(() => {
      this.root.classList.toggle("qs-narrow", this.root.clientWidth < 420);
    });
    resize.observe(this.root);
    this.offs.push(() => resize.disconnect());
  }

  listen() {
    this.offs.push(
      live.on("message.created", (event) => {
        if (event.conversation_id !== this.conversationId) return;
        const isNew = !this.messages.has(event.message.id);
        // Painted from the frame itself, never a fetch: a new newest text is added at the end (the thread is
        // not redrawn), anything else redraws the thread.
        if (!(isNew && this.appendNewest(event.message))) {
          this.upsert([event.message]);
          this.render({ stick: true });
        }
        if (isNew && event.message.direction === "inbound") {
          this.announcer.textContent = `New text from ${this.customerName()}: ${event.message.body}`;
        }
      }),
      live.on("consent.changed", (event) => {
        // A STOP or START, or someone's mark: ask the server again whether they may be texted.
        if (this.context && event.phone_number === this.context.customer_number) this.refreshContext();
      }),
      live.on("message.status", (event) => {
        const message = this.messages.get(event.message_id);
        if (!message) return;
        Object.assign(message, {
          status: event.status,
          error_code: event.error_code,
          error_message: event.error_message,
        });
        this.render({});
        if (event.status === "failed" || event.status === "undelivered") {
          this.announcer.textContent = `A text was not delivered: ${event.error_message || event.status}`;
        }
      }),
      live.on("conversation.updated", (event) => {
        const conversation = event.conversation;
        if (!this.context) return;
        const ours =
          conversation.customer_number === this.context.customer_number ||
          (this.context.record &&
            conversation.record_type === this.context.record.type &&
            conversation.record_id === this.context.record.id);
        if (!ours) return;
        // A conversation with this person that the widget does not know yet (their first text, or a text
        // from another of our numbers): reload, which shows it when none was shown.
        if (!this.context.conversations.some((c) => c.id === conversation.id)) this.reload();
        else if (conversation.id === this.conversationId) this.conversation = { ...this.conversation, ...conversation };
      }),
      live.on("live.closed", () => {
        this.status.textContent = "Reconnecting… new texts will appear when the connection is back.";
      }),
      live.on("live.open", () => {
        this.status.textContent = "";
      }),
      live.onReconnect(() => this.reload()),
    );
  }

  contextUrl(withMessages) {
    // On (re)load the first page of the conversation to show rides along with the context (one request
    // less before the thread is drawn); it is the thread API's first page, same items.
    const { recordType, recordId, conversationId } = this.options;
    const first = withMessages ? `&messages=${PAGE_SIZE}` : "";
    if (conversationId) return `/api/v1/texting?conversation=${encodeURIComponent(conversationId)}${first}`;
    return `/api/v1/texting?record_type=${encodeURIComponent(recordType)}&record_id=${encodeURIComponent(recordId)}${first}`;
  }

  async refreshContext(withMessages = false) {
    try {
      this.context = await api(this.contextUrl(withMessages));
      setTimeZone(this.context.time_zone);
    } catch (error) {
      this.showError(error.detail || "The texts could not be loaded.");
      return null;
    }
    this.renderHeader();
    this.renderNotices();
    this.composer.update(this.context, this.conversation);
    return this.context;
  }

  async reload() {
    const context = await this.refreshContext(true);
    if (!context) return;
    const wanted = this.conversationId || this.options.conversationId || context.conversation_id;
    const conversation = context.conversations.find((c) => c.id === wanted) || context.conversations[0] || null;
    await this.show(conversation, { keep: conversation && conversation.id === this.conversationId });
  }

  async show(conversation, { keep = false } = {}) {
    const changed = (conversation ? conversation.id : null) !== this.conversationId;
    this.conversation = conversation;
    if (changed || !keep) {
      this.messages.clear();
      this.olderCursor = null;
      this.sessions = [];
    }
    if (changed && this.options.onConversation) this.options.onConversation(conversation);
    this.renderHeader();
    this.composer.update(this.context, conversation);
    if (!conversation) {
      this.presence.watch(null);
      this.render({ stick: true });
      return;
    }
    live.subscribe("conv", conversation.id);
    this.presence.watch(conversation.id);
    const bundled = this.context && this.context.conversation_id === conversation.id && this.context.messages;
    const sessionsLoaded = api(`/api/v1/conversations/${conversation.id}/sessions`).catch(() => []);
    if (bundled) {
      // Draw the newest texts now; the session lines follow when their list arrives.
      this.context.messages = null;
      this.merge(bundled);
      this.render({ stick: true });
      this.renderNotices();
      const sessions = await sessionsLoaded;
      if (conversation.id !== this.conversationId) return;
      this.sessions = sessions;
      this.render({});
      return;
    }
    const [page, sessions] = await Promise.all([
      api(`/api/v1/conversations/${conversation.id}/messages?page_size=${PAGE_SIZE}`),
      sessionsLoaded,
    ]);
    if (conversation.id !== this.conversationId) return;
    this.sessions = sessions;
    this.merge(page);
    this.render({ stick: true });
    this.renderNotices();
  }

  // A newest page (from the thread API or the context) into what is shown.
  merge(page) {
    const known = [...this.messages.values()].sort(byTime);
    const oldestNew = page.results[page.results.length - 1];
    const gap =
      known.length && page.before && oldestNew && !this.messages.has(oldestNew.id) &&
      byTime(oldestNew, known[known.length - 1]) > 0;
    if (gap) {
      // More arrived while away than one page holds: start again from the newest page rather than show a
      // thread with a hole in it.
      this.messages.clear();
      this.olderCursor = page.before;
    } else if (!known.length) {
      this.olderCursor = page.before;
    }
    this.upsert(page.results);
  }

  async loadOlder() {
    if (!this.olderCursor || this.loadingOlder || !this.conversation) return;
    this.loadingOlder = true;
    const id = this.conversation.id;
    this.older.hidden = false;
    this.older.textContent = "Loading earlier texts…";
    try {
      const page = await api(
        `/api/v1/conversations/${id}/messages?page_size=${PAGE_SIZE}&before=${encodeURIComponent(this.olderCursor)}`,
      );
      if (id !== this.conversationId) return;
      this.olderCursor = page.before;
      const height = this.scroller.scrollHeight;
      this.upsert(page.results);
      this.render({});
      this.scroller.scrollTop += this.scroller.scrollHeight - height;
    } catch (error) {
      this.older.textContent = error.detail || "Earlier texts could not be loaded.";
      return;
    } finally {
      this.loadingOlder = false;
    }
    this.older.hidden = !this.olderCursor;
    this.older.textContent = this.olderCursor ? "Scroll up for earlier texts" : "";
  }

  upsert(messages) {
    for (const message of messages) {
      const known = this.messages.get(message.id);
      this.messages.set(message.id, known ? { ...known, ...message } : message);
    }
  }

  async afterSend(sent) {
    // The send answer names the message and its conversation; what is shown comes from the thread API and
    // the live events (one message shape).
    if (sent.conversation !== this.conversationId) {
      await this.reload();
      const conversation = this.context.conversations.find((c) => c.id === sent.conversation);
      if (conversation && conversation.id !== this.conversationId) await this.show(conversation);
      if (!conversation) {
        // Sent into a conversation the inbox's visibility rules keep from this member (someone else's).
        this.showError("Sent. Its conversation belongs to someone else, so its thread is not shown to you.");
      }
      return;
    }
    const page = await api(`/api/v1/conversations/${sent.conversation}/messages?page_size=${PAGE_SIZE}`);
    if (sent.conversation !== this.conversationId) return;
    this.upsert(page.results);
    this.render({ stick: true });
  }

  numberLabel() {
    const number = this.conversation && this.conversation.phone_number;
    return number ? number.label || number.phone_number : "";
  }

  customerName() {
    const c = this.context;
    if (!c) return "";
    if (c.record) return c.record.name;
    if (this.conversation && this.conversation.record_name) return this.conversation.record_name;
    return c.customer_number_display || c.customer_number;
  }

  renderHeader() {
    const c = this.context;
    if (!c) return;
    const name = this.customerName();
    const chips = [];
    if (c.consent.opted_out) chips.push(el("span", { class: "qs-chip qs-chip-failed", text: "Opted out" }));
    if (c.consent.do_not_contact) chips.push(el("span", { class: "qs-chip qs-chip-failed", text: "Do not contact" }));
    if (c.consent.blocked) chips.push(el("span", { class: "qs-chip qs-chip-failed", text: "Blocked" }));
    const number = c.customer_number
      ? el("span", { class: "qs-number", "data-testid": "texting-number", text: c.customer_number_display })
      : el("span", { class: "qs-number qs-muted", text: "No number to text" });
    const switcher = this.renderSwitcher();
    this.header.replaceChildren(
      el("span", { class: "qs-avatar", "aria-hidden": "true", text: initials(name) }),
      el(
        "div",
        { class: "qs-who" },
        el("h2", { class: "qs-name", text: this.options.recordType ? "Texts" : name }),
        el("p", { class: "qs-sub" }, number, ...chips),
      ),
      switcher || "",
    );
  }

  renderSwitcher() {
    const conversations = this.context.conversations;
    if (conversations.length < 2) return null;
    const select = el("select", { class: "qs-switch", "aria-label": "Conversation" });
    for (const c of conversations) {
      const label = `With ${c.phone_number.label || c.phone_number.phone_number}${c.is_current ? "" : " (earlier)"}`;
      select.append(el("option", { value: c.id, text: label, selected: c.id === this.conversationId }));
    }
    select.addEventListener("change", () => {
      const chosen = conversations.find((c) => String(c.id) === select.value);
      this.show(chosen);
    });
    return select;
  }

  latestRevocation() {
    const inbound = [...this.messages.values()].filter((m) => m.direction === "inbound").sort(byTime);
    const last = inbound[inbound.length - 1];
    return last && last.consent_revocation && !this.dismissedRevocations.has(last.id) ? last : null;
  }

  renderNotices() {
    const c = this.context;
    if (!c) return;
    const notices = [];
    const revocation = !c.consent.opted_out && this.latestRevocation();
    if (revocation) {
      const mark = el("button", { type: "button", class: "qs-btn qs-btn-danger", text: "Mark as opted out" });
      const dismiss = el("button", { type: "button", class: "qs-btn qs-btn-quiet", text: "Not a request to stop" });
      const quote = revocation.body.length > 80 ? `${revocation.body.slice(0, 80)}…` : revocation.body;
      const banner = el(
        "div",
        { class: "qs-banner qs-banner-warn", role: "alert", "data-testid": "revocation-banner" },
        el("p", {}, el("strong", { text: "They may be asking you to stop texting. " }), `“${quote}”`),
        el("p", { class: "qs-banner-actions" }, mark, dismiss),
      );
      mark.addEventListener("click", async () => {
        mark.disabled = true;
        try {
          await api("/api/v1/consent", {
            method: "POST",
            json: {
              phone_number: c.customer_number,
              action: "opt_out",
              note: `Asked in words: “${revocation.body.slice(0, 250)}”`,
            },
          });
          await this.refreshContext();
        } catch (error) {
          mark.disabled = false;
          this.showError(error.detail);
        }
      });
      dismiss.addEventListener("click", () => {
        this.dismissedRevocations.add(revocation.id);
        this.renderNotices();
      });
      notices.push(banner);
    }
    this.notices.replaceChildren(...notices);
  }

  showError(text) {
    this.status.textContent = text;
  }

  render({ stick = false }) {
    const atBottom = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 60;
    const messages = [...this.messages.values()].sort(byTime);
    const items = [];
    if (!messages.length) {
      const empty = this.conversation
        ? "No texts in this conversation yet."
        : this.context && this.context.can_text
          ? "No texts yet. Write the first one below."
          : "No texts yet.";
      items.push(el("li", { class: "qs-empty", text: empty }));
    }
    const sessions = this.sessions.map((s) => new Date(s.started_at).getTime()).sort((a, b) => a - b);
    let previous = null;
    for (const message of messages) {
      if (!previous || dayKey(previous.created_at) !== dayKey(message.created_at)) {
        items.push(el("li", { class: "qs-day", text: dayLabel(message.created_at) }));
      }
      if (previous && sessions.length) {
        const before = new Date(previous.created_at).getTime();
        const at = new Date(message.created_at).getTime();
        if (sessions.some((start) => start > before && start <= at)) {
          items.push(el("li", { class: "qs-session", text: "New session" }));
        }
      }
      items.push(this.renderMessage(message));
      previous = message;
    }
    this.list.replaceChildren(...items);
    if (this.olderCursor) {
      this.older.hidden = false;
      this.older.textContent = "Scroll up for earlier texts";
    } else {
      this.older.hidden = true;
    }
    if (stick || atBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    this.renderNotices();
  }

  // Add a text that is newer than every one shown, on the same day, at the end of the thread. False when
  // the thread must be redrawn instead (a new day, a session line, nothing shown yet, an older text).
  appendNewest(message) {
    const shown = [...this.messages.values()];
    if (!shown.length || this.list.querySelector(".qs-empty")) return false;
    const newest = shown.reduce((a, b) => (byTime(a, b) >= 0 ? a : b));
    if (byTime(message, newest) <= 0 || dayKey(message.created_at) !== dayKey(newest.created_at)) return false;
    const at = new Date(message.created_at).getTime();
    const before = new Date(newest.created_at).getTime();
    if (this.sessions.some((s) => {
      const start = new Date(s.started_at).getTime();
      return start > before && start <= at;
    })) return false;
    this.messages.set(message.id, message);
    this.list.append(this.renderMessage(message));
    this.scroller.scrollTop = this.scroller.scrollHeight;
    if (message.direction === "inbound") this.renderNotices();
    return true;
  }

  renderMessage(m) {
    const outbound = m.direction === "outbound";
    const who = outbound ? m.sender_name || senderOf(m) : this.customerName();
    const label = this.numberLabel();
    const via = label ? (outbound ? `Sent from ${label}` : `Replied to ${label}`) : "";
    const meta = el(
      "p",
      { class: "qs-meta" },
      el("span", { class: "qs-who-sent", text: who }),
      el("time", { datetime: m.created_at, title: fullTime(m.created_at), text: time(m.created_at) }),
    );
    const bubble = el("div", { class: "qs-bubble" });
    if (m.body) bubble.append(el("p", { class: "qs-body", dir: "auto", text: m.body }));
    for (const item of m.media || []) bubble.append(this.renderMedia(item));
    if (m.num_media > (m.media || []).length) {
      bubble.append(el("p", { class: "qs-muted", text: `${m.num_media - (m.media || []).length} attachment(s) not stored` }));
    }
    const foot = el("p", { class: "qs-foot" });
    if (via) foot.append(el("span", { class: "qs-via", text: via }));
    if (outbound) {
      const [words, tone] = STATUS_WORDS[m.status] || [m.status, "pending"];
      foot.append(el("span", { class: `qs-chip qs-chip-${tone}`, "data-testid": "message-status", text: words }));
    }
    const item = el(
      "li",
      {
        class: `qs-msg ${outbound ? "qs-out" : "qs-in"}`,
        dataset: { messageId: m.id, status: m.status },
      },
      outbound ? null : el("span", { class: "qs-avatar qs-avatar-sm", "aria-hidden": "true", text: initials(who) }),
      el("div", { class: "qs-msg-main" }, meta, bubble, foot),
    );
    if (outbound && (m.status === "failed" || m.status === "undelivered")) {
      const retry = el("button", { type: "button", class: "qs-btn qs-btn-quiet qs-retry", text: "Retry" });
      retry.addEventListener("click", () => this.composer.retry(m, retry));
      item.querySelector(".qs-msg-main").append(
        el(
          "p",
          { class: "qs-error", role: "note" },
          m.error_message || "Twilio could not deliver this text.",
          m.error_code ? el("span", { class: "qs-muted", text: ` (error ${m.error_code})` }) : null,
          " ",
          retry,
        ),
      );
    }
    return item;
  }

  renderMedia(item) {
    if (!item.url) {
      return el("p", { class: "qs-doc qs-muted", text: `${item.filename || "Attachment"}: ${item.error || "not stored"}` });
    }
    const type = item.content_type || "";
    if (type.startsWith("image/")) {
      return el(
        "a",
        { href: item.url, target: "_blank", rel: "noopener", class: "qs-media" },
        el("img", { src: item.url, alt: item.filename || "Picture", loading: "lazy" }),
      );
    }
    if (type.startsWith("video/")) {
      return el("video", { src: item.url, controls: true, preload: "metadata", class: "qs-media", "aria-label": item.filename || "Video" });
    }
    if (type.startsWith("audio/")) {
      return el("audio", { src: item.url, controls: true, preload: "metadata", class: "qs-audio", "aria-label": item.filename || "Audio" });
    }
    return el(
      "a",
      { href: item.url, class: "qs-doc", download: item.filename || true },
      icon("document"),
      el("span", { class: "qs-doc-name", text: item.filename || "Document" }),
      el("span", { class: "qs-muted", text: bytes(item.size) }),
    );
  }

  destroy() {
    for (const off of this.offs) off();
    this.root.replaceChildren();
    this.root.classList.remove("qs-conv", "qs-compact", "qs-narrow");
  }
}

export function mountConversation(rootEl, options = {}) {
  const widget = new ConversationWidget(rootEl, options);
  return {
    get conversationId() {
      return widget.conversationId;
    },
    reload: () => widget.reload(),
    focusComposer: () => widget.composer.focus(),
    destroy: () => widget.destroy(),
  };
}
