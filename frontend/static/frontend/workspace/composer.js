// The composer of the conversation widget (mounted by thread.js; not used on its own).
//
// Sender picker (the numbers GET /api/v1/texting says this member may use; the conversation's own number
// preselected, else the member's default), "/" for templates (rendered against the record by
// POST /api/v1/messages/preview), a segment counter from the same preview API (encoding, the characters that
// force UCS-2 and one click to replace them), attachments checked against the server's limits before upload,
// Enter or Ctrl+Enter to send (the member's setting), an Idempotency-Key per draft so a double click or a
// retry sends once, and the reason (with what to do) when this person cannot be texted.

import { api } from "./api.js";
import { bytes, el, icon } from "./format.js";

let uid = 0;

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

class Composer {
  constructor(host, { widget, onSent }) {
    this.host = host;
    this.widget = widget;
    this.onSent = onSent;
    this.context = null;
    this.conversation = null;
    this.files = [];
    this.key = newKey();
    this.previewSeq = 0;
    this.previewTimer = null;
    this.templates = null;
    this.sending = false;
    this.build();
  }

  build() {
    const id = `qs-c${++uid}`;
    this.refusal = el("div", { class: "qs-refusal", role: "status", hidden: true, "data-testid": "composer-refusal" });
    this.from = el("select", { id: `${id}-from`, class: "qs-from", name: "from" });
    this.text = el("textarea", {
      id: `${id}-text`,
      class: "qs-text",
      rows: "2",
      maxlength: "1600",
      placeholder: "Write a text… ( / for templates)",
      "aria-describedby": `${id}-counter`,
    });
    this.counter = el("p", { id: `${id}-counter`, class: "qs-counter", "aria-live": "polite" });
    this.fileInput = el("input", { type: "file", multiple: true, id: `${id}-files`, class: "qs-visually-hidden" });
    // The input sits inside its label: the label looks like a button, the input takes the focus.
    this.attach = el("label", { class: "qs-btn qs-btn-quiet qs-attach", title: "Attach files" },
      this.fileInput, icon("paperclip"), el("span", { class: "qs-visually-hidden", text: "Attach files" }));
    this.fileList = el("ul", { class: "qs-files", "aria-label": "Attachments" });
    this.templateButton = el("button", { type: "button", class: "qs-btn qs-btn-quiet", "aria-haspopup": "dialog", title: "Templates" },
      icon("template"), el("span", { class: "qs-visually-hidden", text: "Insert a template" }));
    this.send = el("button", { type: "submit", class: "qs-btn qs-btn-primary qs-send", text: "Send" });
    this.error = el("p", { class: "qs-send-error", role: "alert" });
    this.enterSends = el("input", { type: "checkbox", id: `${id}-enter` });
    this.hint = el("span", { class: "qs-hint" });
    this.templatePanel = el("div", { class: "qs-templates", hidden: true, role: "dialog", "aria-label": "Templates" });
    this.fieldset = el(
      "fieldset",
      { class: "qs-fields" },
      el("legend", { class: "qs-visually-hidden", text: "New text" }),
      el("div", { class: "qs-from-row" }, el("label", { for: `${id}-from`, text: "From" }), this.from),
      el("label", { for: `${id}-text`, class: "qs-visually-hidden", text: "Message" }),
      this.text,
      this.fileList,
      el("div", { class: "qs-counter-row" }, this.counter, this.hint),
      el("div", { class: "qs-actions" }, this.templateButton, this.attach,
        el("label", { class: "qs-enter", for: `${id}-enter` }, this.enterSends, " Enter sends"),
        this.send),
    );
    this.fieldset.disabled = true; // until the context says who this is and from which numbers
    this.form = el("form", { class: "qs-composer", "aria-label": "Send a text", novalidate: true },
      this.refusal, this.templatePanel, this.fieldset, this.error);
    this.host.replaceChildren(this.form);

    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.text.addEventListener("input", () => {
      if (this.text.value.trim()) this.widget.presence.typing();
      else this.widget.presence.stopTyping();
      this.autosize();
      this.schedulePreview();
      this.maybeOpenTemplates();
    });
    this.text.addEventListener("keydown", (event) => this.onKey(event));
    this.from.addEventListener("change", () => this.checkFiles());
    this.fileInput.addEventListener("change", () => {
      this.files.push(...this.fileInput.files);
      this.fileInput.value = "";
      this.checkFiles();
    });
    this.templateButton.addEventListener("click", () => this.openTemplates(""));
    this.enterSends.addEventListener("change", () => this.saveEnterSends());
  }

  focus() {
    this.text.focus();
  }

  update(context, conversation) {
    this.context = context;
    this.conversation = conversation;
    if (!context) return;
    this.enterSends.checked = context.preferences.enter_sends;
    this.hint.textContent = context.preferences.enter_sends ? "Shift+Enter for a new line" : "Ctrl+Enter to send";
    const chosen = this.from.value;
    // A reply goes from the number the person last texted (the server's rule, reply_number_id); a
    // conversation picked in the switcher answers from its own number; a first text from the default.
    const usable = conversation && context.numbers.some((n) => n.id === conversation.phone_number.id);
    const picked = usable && conversation.id !== context.conversation_id;
    const preferred = picked
      ? conversation.phone_number.id
      : context.reply_number_id || (usable ? conversation.phone_number.id : context.default_number_id);
    this.from.replaceChildren(
      ...context.numbers.map((n) =>
        el("option", { value: n.id, text: n.label ? `${n.label} · ${n.phone_number}` : n.display_name || n.phone_number }),
      ),
    );
    const keep = this.fromTouched && context.numbers.some((n) => String(n.id) === chosen);
    if (keep) this.from.value = chosen;
    else if (preferred) this.from.value = String(preferred);
    if (!this.fromBound) {
      this.from.addEventListener("change", () => { this.fromTouched = true; });
      this.fromBound = true;
    }
    const refusal = context.refusal;
    this.fieldset.disabled = Boolean(refusal);
    this.refusal.hidden = !refusal;
    if (refusal) {
      this.refusal.replaceChildren(
        el("p", { class: "qs-refusal-reason" }, el("strong", { text: "Texting is off. " }), refusal.reason),
        el("p", { class: "qs-refusal-next", text: refusal.next_step }),
      );
      this.closeTemplates();
    }
  }

  selectedNumber() {
    return this.context && this.context.numbers.find((n) => String(n.id) === this.from.value);
  }

  autosize() {
    this.text.style.height = "auto";
    this.text.style.height = `${Math.min(this.text.scrollHeight, 200)}px`;
  }

  onKey(event) {
    if (!this.templatePanel.hidden) {
      // While "/" is open the message box drives the picker: Enter takes the first match, Down enters the list.
      const first = this.templateList && this.templateList.querySelector("button");
      if (event.key === "Escape") {
        event.preventDefault();
        this.closeTemplates();
        return;
      }
      if (this.slashOpen && event.key === "ArrowDown" && first) {
        event.preventDefault();
        first.focus();
        return;
      }
      if (this.slashOpen && event.key === "Enter" && !event.shiftKey && first) {
        event.preventDefault();
        first.click();
        return;
      }
    }
    if (event.key !== "Enter" || event.isComposing) return;
    const enterSends = this.enterSends.checked;
    const send = enterSends ? !event.shiftKey && !event.ctrlKey && !event.metaKey : event.ctrlKey || event.metaKey;
    if (send) {
      event.preventDefault();
      this.submit();
    }
  }

  async saveEnterSends() {
    const value = this.enterSends.checked;
    this.hint.textContent = value ? "Shift+Enter for a new line" : "Ctrl+Enter to send";
    try {
      await api("/api/v1/me/composer-settings", { method: "PUT", json: { enter_sends: value } });
      if (this.context) this.context.preferences.enter_sends = value;
    } catch (error) {
      this.error.textContent = error.detail;
    }
  }

  // --- segments, from the preview API --------------------------------------------------------------------

  schedulePreview() {
    clearTimeout(this.previewTimer);
    this.previewTimer = setTimeout(() => this.preview(), 200);
  }

  async preview() {
    const body = this.text.value;
    const seq = ++this.previewSeq;
    if (!body) {
      this.counter.replaceChildren();
      return;
    }
    let info;
    try {
      info = await api("/api/v1/messages/preview", { method: "POST", json: { body } });
    } catch (error) {
      if (seq === this.previewSeq) this.counter.replaceChildren(el("span", { class: "qs-warn", text: error.detail }));
      return;
    }
    if (seq !== this.previewSeq) return;
    const segments = `${info.segments} ${info.segments === 1 ? "segment" : "segments"}`;
    const parts = [
      el("span", { "data-testid": "segment-count", text: `${info.characters_left} left · ${segments} · ${info.encoding}` }),
    ];
    if (info.encoding === "UCS-2" && info.offending_characters.length) {
      const chars = info.offending_characters.map((o) => `“${o.char}”${o.replacement === null ? "" : ` → “${o.replacement}”`}`);
      parts.push(el("span", { class: "qs-warn", text: ` · Unicode because of ${chars.join(", ")}` }));
      if (info.body_with_replacements !== info.body) {
        const fix = el("button", { type: "button", class: "qs-link", text: "Replace them" });
        fix.addEventListener("click", () => {
          this.text.value = info.body_with_replacements;
          this.schedulePreview();
          this.text.focus();
        });
        parts.push(" ", fix);
      }
    }
    this.counter.replaceChildren(...parts);
  }

  // --- templates --------------------------------------------------------------------------------------------

  maybeOpenTemplates() {
    const before = this.text.value.slice(0, this.text.selectionStart);
    const match = before.match(/(?:^|\s)\/([^\s/]*)$/);
    if (match) this.openTemplates(match[1], true);
    else if (this.slashOpen) this.closeTemplates();
  }

  async openTemplates(query, fromSlash = false) {
    this.slashOpen = fromSlash;
    const recordType = this.context && this.context.record ? this.context.record.type : "";
    if (this.templates === null || this.templatesFor !== recordType) {
      try {
        // The published templates this member may use for the record's type (shared and their own).
        this.templatesFor = recordType;
        const query = `status=published&page_size=200${recordType ? `&record_type=${recordType}` : ""}`;
        const page = await api(`/api/v1/templates?${query}`);
        this.templates = (page.results || page).filter((t) => !t.record_type || t.record_type === recordType);
      } catch (error) {
        this.error.textContent = error.detail;
        return;
      }
    }
    if (this.templatePanel.hidden) this.buildTemplatePanel();
    this.search.value = query;
    this.filterTemplates();
    if (!fromSlash) this.search.focus();
  }

  buildTemplatePanel() {
    this.search = el("input", { type: "search", class: "qs-template-search", "aria-label": "Search templates", placeholder: "Search templates" });
    this.templateList = el("ul", { class: "qs-template-list", role: "listbox", "aria-label": "Templates" });
    const close = el("button", { type: "button", class: "qs-btn qs-btn-quiet", text: "Close" });
    close.addEventListener("click", () => this.closeTemplates());
    this.search.addEventListener("input", () => this.filterTemplates());
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.closeTemplates();
      if (event.key === "ArrowDown") {
        event.preventDefault();
        const first = this.templateList.querySelector("button");
        if (first) first.focus();
      }
    });
    this.templatePanel.replaceChildren(el("div", { class: "qs-template-head" }, this.search, close), this.templateList);
    this.templatePanel.hidden = false;
  }

  filterTemplates() {
    const q = this.search.value.trim().toLowerCase();
    const found = this.templates.filter(
      (t) =>
        !q ||
        t.name.toLowerCase().includes(q) ||
        (t.shortcode || "").toLowerCase().startsWith(q) ||
        t.body.toLowerCase().includes(q),
    );
    if (!found.length) {
      const none = this.templates.length ? "No template matches." : "No templates yet. An admin can add them under Templates.";
      this.templateList.replaceChildren(el("li", { class: "qs-muted", text: none }));
      return;
    }
    this.templateList.replaceChildren(
      ...found.slice(0, 30).map((t) => {
        const button = el("button", { type: "button", class: "qs-template", role: "option" },
          el("strong", { text: t.name }), el("span", { class: "qs-muted", text: t.body }));
        button.addEventListener("click", () => this.insertTemplate(t));
        button.addEventListener("keydown", (event) => {
          if (event.key === "ArrowDown" && button.parentElement.nextElementSibling) {
            event.preventDefault();
            button.parentElement.nextElementSibling.querySelector("button").focus();
          } else if (event.key === "ArrowUp") {
            event.preventDefault();
            const previous = button.parentElement.previousElementSibling;
            (previous ? previous.querySelector("button") : this.search).focus();
          } else if (event.key === "Escape") {
            this.closeTemplates();
          }
        });
        return el("li", {}, button);
      }),
    );
  }

  closeTemplates() {
    this.templatePanel.hidden = true;
    this.slashOpen = false;
  }

  async insertTemplate(template) {
    const fromSlash = this.slashOpen;
    const json = { template: template.id };
    const record = this.context && this.context.record;
    if (record) json.record = { type: record.type, id: record.id };
    let info;
    try {
      info = await api("/api/v1/messages/preview", { method: "POST", json });
    } catch (error) {
      this.error.textContent = error.detail;
      return;
    }
    const value = this.text.value;
    const caret = this.text.selectionStart;
    // Typed "/query" gives way to the template; the button inserts at the cursor.
    const head = value.slice(0, caret);
    const before = fromSlash ? head.replace(/(^|\s)\/[^\s/]*$/, "$1") : head;
    this.text.value = before + info.body + value.slice(caret);
    this.closeTemplates();
    this.error.textContent = info.missing_fields.length
      ? `Check the text: ${info.missing_fields.join(", ")} ${info.missing_fields.length === 1 ? "is" : "are"} empty on this record.`
      : "";
    this.text.focus();
    this.autosize();
    this.schedulePreview();
  }

  // --- attachments --------------------------------------------------------------------------------------

  checkFiles() {
    const limits = this.context ? this.context.limits : null;
    const problems = [];
    if (limits) {
      if (this.files.length > limits.max_items) problems.push(`At most ${limits.max_items} attachments.`);
      const total = this.files.reduce((sum, f) => sum + f.size, 0);
      if (total > limits.max_total_bytes) problems.push(`At most ${bytes(limits.max_total_bytes)} in all.`);
      for (const file of this.files) {
        const type = (file.type || "").toLowerCase();
        if (type && !limits.accepted_types.includes(type)) problems.push(`${file.name}: this kind of file cannot be texted.`);
        const max = limits.full_size_types.includes(type) ? limits.max_image_bytes : limits.max_other_bytes;
        if (file.size > max) problems.push(`${file.name} is ${bytes(file.size)}; at most ${bytes(max)} for this kind of file.`);
      }
      const number = this.selectedNumber();
      if (this.files.length && number && !number.mms_capable) {
        problems.push(`${number.display_name} cannot send pictures or files; choose another number.`);
      }
    }
    this.fileList.replaceChildren(
      ...this.files.map((file, index) => {
        const remove = el("button", { type: "button", class: "qs-link", text: "Remove", "aria-label": `Remove ${file.name}` });
        remove.addEventListener("click", () => {
          this.files.splice(index, 1);
          this.checkFiles();
        });
        return el("li", { class: "qs-file" }, el("span", { text: `${file.name} · ${bytes(file.size)}` }), " ", remove);
      }),
    );
    this.fileProblems = problems;
    this.error.textContent = problems.join(" ");
    return !problems.length;
  }

  // --- sending ------------------------------------------------------------------------------------------

  payload(body) {
    const fields = { body, from: this.from.value };
    if (this.conversation) fields.conversation = this.conversation.id;
    else fields.record = { type: this.context.record.type, id: this.context.record.id };
    return fields;
  }

  async post(fields, files, key) {
    if (!files.length) {
      return api("/api/v1/messages", { method: "POST", json: fields, headers: { "Idempotency-Key": key } });
    }
    const form = new FormData();
    form.append("body", fields.body);
    form.append("from", fields.from);
    if (fields.conversation) form.append("conversation", fields.conversation);
    else form.append("record", `${fields.record.type}:${fields.record.id}`);
    for (const file of files) form.append("media", file, file.name);
    return api("/api/v1/messages", { method: "POST", form, headers: { "Idempotency-Key": key } });
  }

  async submit() {
    if (this.sending || this.fieldset.disabled || !this.context) return;
    const body = this.text.value;
    if (!body.trim() && !this.files.length) {
      this.error.textContent = "Write something or attach a file.";
      return;
    }
    if (!this.checkFiles()) return;
    this.sending = true;
    this.send.disabled = true;
    this.send.textContent = "Sending…";
    this.error.textContent = "";
    try {
      const message = await this.post(this.payload(body), this.files, this.key);
      this.text.value = "";
      this.files = [];
      this.key = newKey();
      this.widget.presence.stopTyping();
      this.checkFiles();
      this.counter.replaceChildren();
      this.autosize();
      await this.onSent(message);
    } catch (error) {
      this.error.textContent = error.detail || "The text was not sent. Try again.";
      if (error.field === "to" || error.field === "record") this.widget.refreshContext();
    } finally {
      this.sending = false;
      this.send.disabled = false;
      this.send.textContent = "Send";
      this.text.focus();
    }
  }

  async retry(message, button) {
    // The same failed text again, with its attachments (the server reads them back from storage), once:
    // the server derives the key from the failed message, so a second click (or a second tab) returns the
    // first retry instead of sending another.
    button.disabled = true;
    try {
      const sent = await api(`/api/v1/messages/${message.id}/retry`, {
        method: "POST",
        json: { from: this.from.value },
      });
      await this.onSent(sent);
    } catch (error) {
      this.error.textContent = error.detail;
      button.disabled = false;
    }
  }
}

export function mountComposer(host, options) {
  return new Composer(host, options);
}
