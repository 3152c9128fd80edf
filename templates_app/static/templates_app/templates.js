// The template editor: insert a merge field at the cursor, follow the record type's fields, and preview the
// body on a real record (rendered by /api/v1/templates/render, then counted by /api/v1/messages/preview).
const form = document.querySelector("[data-template-form]");
const panel = document.querySelector("[data-template-preview]");

function csrfToken() {
  const input = form.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

async function postJson(url, payload) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(payload),
  });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

function firstError(data) {
  for (const value of Object.values(data || {})) {
    if (Array.isArray(value) && value.length) return String(value[0]);
    if (typeof value === "string") return value;
  }
  return "The preview is not available right now.";
}

if (form && panel) {
  const body = form.querySelector("[data-template-body]");
  const scope = form.querySelector("select[name=record_type]");
  const picker = form.querySelector("[data-insert-field]");
  const recordSelect = panel.querySelector("[data-preview-record]");
  const search = panel.querySelector("[data-preview-search]");
  const searchStatus = panel.querySelector("[data-preview-search-status]");
  const searchUrls = Object.fromEntries(search.dataset.searchUrls.split(" ").map((pair) => pair.split("=")));
  const out = {
    text: panel.querySelector("[data-preview-text]"),
    segments: panel.querySelector("[data-preview-segments]"),
    encoding: panel.querySelector("[data-preview-encoding]"),
    characters: panel.querySelector("[data-preview-characters]"),
    note: panel.querySelector("[data-preview-note]"),
    problems: panel.querySelector("[data-preview-problems]"),
  };
  let timer = null;
  let generation = 0;

  function insertField(name) {
    const token = "{{" + name + "}}";
    const start = body.selectionStart ?? body.value.length;
    const end = body.selectionEnd ?? start;
    body.value = body.value.slice(0, start) + token + body.value.slice(end);
    body.focus();
    body.setSelectionRange(start + token.length, start + token.length);
    schedule(0);
  }

  function showProblems(list) {
    out.problems.replaceChildren(...list.map((text) => Object.assign(document.createElement("p"), { textContent: text })));
    out.problems.hidden = list.length === 0;
  }

  function clearStats() {
    out.segments.textContent = "—";
    out.encoding.textContent = "—";
    out.characters.textContent = "—";
  }

  async function refresh() {
    const mine = ++generation;
    const payload = { body: body.value, record_type: scope.value };
    if (recordSelect.value) {
      const [type, id] = recordSelect.value.split(":");
      payload.record = { type, id: Number(id) };
    }
    if (!body.value.trim()) {
      out.text.replaceChildren(Object.assign(document.createElement("span"), { className: "hint", textContent: "Write a message to see it here." }));
      clearStats();
      out.note.hidden = true;
      showProblems([]);
      return;
    }
    // Both answers first, then one update of the panel: it never shows one text with another's counts.
    const rendered = await postJson(form.dataset.renderUrl, payload);
    if (mine !== generation) return;
    if (!rendered.ok) {
      showProblems([firstError(rendered.data)]);
      return;
    }
    const { text, problems } = rendered.data;
    const preview = text.trim() ? await postJson(form.dataset.previewUrl, { body: text }) : null;
    if (mine !== generation) return;
    // Unknown fields are named in the problems already; "empty" is about real fields without a value.
    const missing = rendered.data.missing_fields.filter((f) => !rendered.data.unknown_fields.includes(f));
    const notes = [];
    if (missing.length) {
      notes.push("Empty on this record: " + missing.map((f) => "{{" + f + "}}").join(", ") + ". Add a default or pick another record.");
    }
    out.text.textContent = text;
    if (preview && preview.ok) {
      const info = preview.data;
      out.segments.textContent = String(info.segments);
      out.encoding.textContent = info.encoding;
      out.characters.textContent = `${info.characters} of ${info.characters + info.characters_left}`;
      if (info.encoding === "UCS-2" && info.offending_characters.length) {
        const chars = info.offending_characters.map((c) => c.char).join(" ");
        notes.push(`UCS-2 (70 characters a segment instead of 160) because of: ${chars}`);
      }
      showProblems(problems);
    } else {
      clearStats();
      showProblems(preview ? [...problems, firstError(preview.data)] : problems);
    }
    out.note.textContent = notes.join(" ");
    out.note.hidden = notes.length === 0;
  }

  function schedule(delay = 300) {
    clearTimeout(timer);
    timer = setTimeout(() => { refresh().catch(() => showProblems(["The preview is not available right now."])); }, delay);
  }

  function filterRecords() {
    // A template for one record type previews on records of that type only.
    for (const group of recordSelect.querySelectorAll("optgroup")) {
      const hide = Boolean(scope.value) && group.dataset.recordType !== scope.value;
      group.hidden = hide;
      group.disabled = hide;
    }
    const chosen = recordSelect.selectedOptions[0];
    if (chosen && chosen.parentElement.disabled) recordSelect.value = "";
    if (!recordSelect.value && scope.value) {
      const first = recordSelect.querySelector(`optgroup[data-record-type="${scope.value}"] option`);
      if (first) recordSelect.value = first.value;
    }
  }

  async function reloadFields() {
    const url = `${form.dataset.fieldsUrl}?record_type=${encodeURIComponent(scope.value)}`;
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return;
    const fields = await response.json();
    const labels = { record: "Record fields", custom: "Custom fields", agent: "You (the sender)", owner: "Record owner", org: "Organization" };
    const groups = new Map();
    for (const field of fields) {
      if (!groups.has(field.group)) groups.set(field.group, []);
      groups.get(field.group).push(field);
    }
    const first = picker.options[0];
    picker.replaceChildren(first);
    for (const key of Object.keys(labels)) {
      if (!groups.has(key)) continue;
      const optgroup = document.createElement("optgroup");
      optgroup.label = labels[key];
      for (const field of groups.get(key)) {
        optgroup.append(new Option(`${field.label} — ${field.name}`, field.name));
      }
      picker.append(optgroup);
    }
  }

  function recordLabel(record) {
    const person = `${record.first_name || ""} ${record.last_name || ""}`.trim();
    return person || record.name || record.subject || `#${record.id}`;
  }

  let searchTimer = null;
  let searchGeneration = 0;

  async function findRecords() {
    const mine = ++searchGeneration;
    const term = search.value.trim();
    for (const group of recordSelect.querySelectorAll("optgroup[data-found]")) group.remove();
    if (term.length < 2) {
      searchStatus.textContent = "";
      return;
    }
    // A template for one record type searches that type; an any-record template searches every type.
    const types = scope.value ? [scope.value] : Object.keys(searchUrls);
    const answers = await Promise.all(types.map(async (type) => {
      const response = await fetch(`${searchUrls[type]}?q=${encodeURIComponent(term)}&page_size=10`, { credentials: "same-origin" });
      return [type, response.ok ? (await response.json()).results : []];
    }));
    if (mine !== searchGeneration) return;
    let first = null;
    let count = 0;
    for (const [type, records] of answers.reverse()) {
      if (!records.length) continue;
      const group = document.createElement("optgroup");
      group.label = `Found: ${type}s`;
      group.dataset.found = "";
      group.dataset.recordType = type;
      for (const record of records) group.append(new Option(recordLabel(record), `${type}:${record.id}`));
      recordSelect.options[0].after(group); // right after "No record", before the recent ones
      first = group.querySelector("option");
      count += records.length;
    }
    searchStatus.textContent = count ? `${count} found: pick one below.` : `No record matches “${term}”.`;
    if (first) {
      recordSelect.value = first.value;
      schedule(0);
    }
  }

  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { findRecords().catch(() => { searchStatus.textContent = "Search is not available right now."; }); }, 300);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { // search at once
      event.preventDefault();
      clearTimeout(searchTimer);
      findRecords();
    }
  });

  picker.addEventListener("change", () => {
    if (picker.value) insertField(picker.value);
    picker.value = "";
  });
  body.addEventListener("input", () => schedule());
  recordSelect.addEventListener("change", () => schedule(0));
  scope.addEventListener("change", () => {
    filterRecords();
    reloadFields();
    schedule(0);
  });
  filterRecords();
  schedule(0);
}
