// Settings → Automations: the builder turns the form into the API's JSON and back.
// The page gives the definition (#automation-data, null for a new one) and what may be chosen
// (#automation-choices). Saving posts to /api/v1/automations; errors come back named by path
// ("steps[1].template") and are shown next to that part.

const data = JSON.parse(document.getElementById("automation-data").textContent);
const choices = JSON.parse(document.getElementById("automation-choices").textContent);
const form = document.getElementById("automation-form");

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
};

const select = (name, options, value, label) => {
  const s = el("select", { name, "aria-label": label });
  for (const [v, text] of options) {
    const o = el("option", { value: v, text });
    if (String(v) === String(value ?? "")) o.selected = true;
    s.append(o);
  }
  return s;
};

const field = (label, control, hint) =>
  el("label", {}, label, " ", control, hint ? el("span", { class: "hint", text: ` ${hint}` }) : null);

const recordTypes = Object.entries(choices.record_types);
const anyType = [["", "Any record"], ...recordTypes];
const fieldsOf = (type) => {
  const names = type ? choices.record_fields[type] || [] : [...new Set(Object.values(choices.record_fields).flat())];
  return [...names, "record_type"].map((n) => [n, n.replace(/_/g, " ")]);
};

// Suggestions for conditions on the owner or the team: the value is the id, the label the name.
for (const [id, items] of [["condition-members", choices.members], ["condition-teams", choices.teams]]) {
  const list = el("datalist", { id });
  for (const item of items) list.append(el("option", { value: item.id, label: item.name }));
  document.body.append(list);
}

// --- trigger ------------------------------------------------------------------------------------------

const triggerBox = form.querySelector(".trigger");

function renderTrigger(trigger) {
  triggerBox.replaceChildren();
  const type = trigger.type || "record_created";
  const typeSelect = select("trigger.type", Object.entries(choices.triggers), type, "Trigger");
  typeSelect.addEventListener("change", () => renderTrigger({ ...readTrigger(), type: typeSelect.value }));
  triggerBox.append(field("Trigger", typeSelect));
  const needsType = ["record_created", "field_changed", "owner_changed", "status_changed", "date_reached"];
  if (needsType.includes(type)) {
    const options = type === "date_reached" ? recordTypes : anyType;
    const rt = select("trigger.record_type", options, trigger.record_type || (type === "date_reached" ? "lead" : ""), "Record type");
    rt.addEventListener("change", () => renderTrigger(readTrigger()));
    triggerBox.append(field("Record type", rt));
  }
  if (type === "field_changed" || type === "date_reached") {
    const list = el("datalist", { id: "trigger-fields" });
    for (const [v] of fieldsOf(trigger.record_type)) list.append(el("option", { value: v }));
    triggerBox.append(
      field("Field", el("input", { name: "trigger.field", value: trigger.field || "", list: "trigger-fields", required: true }),
        "a field of the record, or a custom field's name"),
      list,
    );
  }
  if (type === "field_changed" || type === "status_changed") {
    triggerBox.append(field("Changes to", el("input", { name: "trigger.to", value: trigger.to || "" }), "leave empty for any change"));
  }
  if (type === "date_reached") {
    const days = Math.round((trigger.offset_minutes || 0) / 1440);
    triggerBox.append(
      field("Days from the date", el("input", { name: "trigger.offset_days", type: "number", min: -366, max: 366, value: days }),
        "−1 is the day before"),
      field("At (their time)", el("input", { name: "trigger.at_time", type: "time", value: trigger.at_time || "10:00" })),
    );
  }
  if (type === "inbound_keyword") {
    const numbers = [["", "Any of our numbers"], ...choices.numbers.map((n) => [n.id, n.name])];
    triggerBox.append(
      field("Keyword", el("input", { name: "trigger.keyword", value: trigger.keyword || "", required: true, maxlength: 40 })),
      field("Texted to", select("trigger.number", numbers, trigger.number, "Number")),
    );
  }
  if (type === "conversation_idle") {
    triggerBox.append(
      field("Quiet for (hours)", el("input", { name: "trigger.hours", type: "number", min: 1, max: 2160, value: trigger.hours || 24 })),
      field("Waiting on", select("trigger.waiting_on", [["customer", "the customer (we texted last)"], ["agent", "us (they texted last)"]],
        trigger.waiting_on || "customer", "Waiting on")),
    );
  }
}

function readTrigger() {
  const get = (name) => triggerBox.querySelector(`[name="${name}"]`);
  const trigger = { type: get("trigger.type").value };
  for (const key of ["record_type", "field", "to", "keyword", "at_time", "waiting_on"]) {
    const input = get(`trigger.${key}`);
    if (input && input.value !== "") trigger[key] = input.value;
  }
  const number = get("trigger.number");
  if (number && number.value) trigger.number = Number(number.value);
  const hours = get("trigger.hours");
  if (hours) trigger.hours = Number(hours.value);
  const days = get("trigger.offset_days");
  if (days) trigger.offset_minutes = Number(days.value || 0) * 1440;
  return trigger;
}

// --- conditions ---------------------------------------------------------------------------------------

const conditionsBox = form.querySelector(".conditions");
let match = "all";

function ruleRow(rule = {}) {
  const row = el("div", { class: "rule" });
  const list = el("datalist", { id: `rule-fields-${Math.random().toString(36).slice(2)}` });
  for (const [v] of fieldsOf(readTrigger().record_type)) list.append(el("option", { value: v }));
  const name = el("input", { name: "field", value: rule.field || "", list: list.id, placeholder: "field, e.g. source", "aria-label": "Field" });
  const op = select("op", Object.entries(choices.operators), rule.op || "equals", "Comparison");
  const value = el("input", {
    name: "value",
    value: Array.isArray(rule.value) ? rule.value.join(", ") : rule.value || "",
    "aria-label": "Value",
    placeholder: "value",
  });
  const toggle = () => { value.hidden = ["empty", "not_empty"].includes(op.value); };
  op.addEventListener("change", toggle);
  toggle();
  // Owner and team compare by id: suggest the members and teams by name.
  const suggest = () => {
    const which = { owner: "condition-members", team: "condition-teams" }[name.value.trim()];
    if (which) value.setAttribute("list", which);
    else value.removeAttribute("list");
    value.placeholder = which ? "pick a name (its id is stored)" : "value";
  };
  name.addEventListener("input", suggest);
  suggest();
  const remove = el("button", { type: "button", class: "linkish", text: "Remove", "aria-label": "Remove this condition" });
  remove.addEventListener("click", () => row.remove());
  row.append(name, list, op, value, remove);
  return row;
}

function renderConditions(conditions) {
  match = (conditions && conditions.match) || "all";
  conditionsBox.replaceChildren();
  const matchSelect = select("match", [["all", "All of these are true"], ["any", "Any of these is true"]], match, "Match");
  matchSelect.addEventListener("change", () => { match = matchSelect.value; });
  conditionsBox.append(field("", matchSelect));
  for (const rule of (conditions && conditions.rules) || []) conditionsBox.append(ruleRow(rule));
}

function readConditions() {
  const rules = [...conditionsBox.querySelectorAll(".rule")].map((row) => {
    const op = row.querySelector('[name="op"]').value;
    const raw = row.querySelector('[name="value"]').value;
    const rule = { field: row.querySelector('[name="field"]').value.trim(), op };
    if (op === "in") rule.value = raw.split(",").map((v) => v.trim()).filter(Boolean);
    else if (!["empty", "not_empty"].includes(op)) rule.value = raw;
    return rule;
  });
  return { match, rules };
}

form.querySelector(".add-rule").addEventListener("click", () => conditionsBox.append(ruleRow()));

// --- steps --------------------------------------------------------------------------------------------

const stepsList = form.querySelector(".steps");
const templates = choices.templates.map((t) => [t.id, t.name]);
const members = [["owner", "The record's owner"], ...choices.members.map((m) => [m.id, m.name])];

function stepItem(step) {
  const item = el("li", { class: "step", "data-type": step.type });
  const title = el("strong", { text: choices.step_types[step.type] });
  const body = el("div", { class: "step-body" });
  if (step.type === "send_template") {
    if (!templates.length) body.append(el("p", { class: "error", text: "Create a template first (Settings → Templates)." }));
    const from = select("from", [["last_conversation", "The number they last texted (or the default)"],
      ["owner", "The record owner's number"], ["number", "This number:"]], step.from || "last_conversation", "Send from");
    const number = select("number", choices.numbers.map((n) => [n.id, n.name]), step.number, "Number");
    const toggle = () => { number.hidden = from.value !== "number"; };
    from.addEventListener("change", toggle);
    toggle();
    body.append(field("Template", select("template", templates, step.template, "Template")), field("From", from), number);
  } else if (step.type === "wait") {
    const until = select("until", [["delay", "A while"], ["reply", "For a reply (at most)"], ["business_hours", "Until their sending hours"],
      ["until_date", "Until a date field"]], step.until || "delay", "Wait for");
    const minutes = step.minutes || 1440;
    const amount = el("input", { name: "amount", type: "number", min: 1, value: minutes % 1440 === 0 ? minutes / 1440 : minutes % 60 === 0 ? minutes / 60 : minutes, "aria-label": "How long" });
    const unit = select("unit", [["1440", "days"], ["60", "hours"], ["1", "minutes"]], minutes % 1440 === 0 ? 1440 : minutes % 60 === 0 ? 60 : 1, "Unit");
    const dateField = el("input", { name: "field", value: step.field || "", placeholder: "date field", "aria-label": "Date field" });
    const toggle = () => {
      const v = until.value;
      amount.hidden = unit.hidden = !["delay", "reply"].includes(v);
      dateField.hidden = v !== "until_date";
    };
    until.addEventListener("change", toggle);
    toggle();
    body.append(field("Wait", until), amount, unit, dateField);
  } else if (step.type === "branch") {
    const actions = [["continue", "go on"], ["stop", "stop here"]];
    body.append(
      field("If they replied", select("if_replied", actions, step.if_replied || "stop", "If they replied")),
      field("If not", select("if_not_replied", actions, step.if_not_replied || "continue", "If they did not reply")),
    );
  } else if (step.type === "assign") {
    body.append(field("To", select("user", members, step.user || "owner", "Assign to")));
  } else if (step.type === "update_field") {
    body.append(
      field("Field", el("input", { name: "field", value: step.field || "", required: true })),
      field("New value", el("input", { name: "value", value: step.value || "" })),
    );
  } else if (step.type === "notify") {
    const who = step.team ? `team:${step.team}` : step.user && step.user !== "owner" ? `user:${step.user}` : "owner";
    const options = [["owner", "The record's owner"], ...choices.members.map((m) => [`user:${m.id}`, m.name]),
      ...choices.teams.map((t) => [`team:${t.id}`, `Team: ${t.name}`])];
    const text = el("textarea", { name: "text", rows: 2, maxlength: 240, required: true });
    text.value = step.text || "";
    body.append(
      field("Notify", select("who", options, who, "Notify")),
      el("label", { class: "wide" }, "Message ", text,
        el("span", { class: "hint", text: " merge fields work: {{first_name}}, {{owner.first_name}}, {{custom.source}}" })),
    );
  }
  const controls = el("div", { class: "step-controls" });
  for (const [label, action] of [["↑", "up"], ["↓", "down"], ["Remove", "remove"]]) {
    const b = el("button", { type: "button", class: "linkish", text: label, "data-action": action, "aria-label": `${action === "remove" ? "Remove" : `Move ${action}`} this step` });
    controls.append(b);
  }
  item.append(title, body, controls, el("span", { class: "error step-error" }));
  return item;
}

stepsList.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  const item = button.closest("li");
  if (button.dataset.action === "remove") item.remove();
  if (button.dataset.action === "up" && item.previousElementSibling) item.previousElementSibling.before(item);
  if (button.dataset.action === "down" && item.nextElementSibling) item.nextElementSibling.after(item);
});

const addType = form.querySelector(".add-step-type");
for (const [value, label] of Object.entries(choices.step_types)) addType.append(el("option", { value, text: label }));
form.querySelector(".add-step").addEventListener("click", () => stepsList.append(stepItem({ type: addType.value })));

function readSteps() {
  return [...stepsList.querySelectorAll(".step")].map((item) => {
    const get = (name) => item.querySelector(`[name="${name}"]`);
    const type = item.dataset.type;
    const step = { type };
    if (type === "send_template") {
      step.template = Number(get("template").value) || null;
      step.from = get("from").value;
      if (step.from === "number") step.number = Number(get("number").value) || null;
    } else if (type === "wait") {
      step.until = get("until").value;
      if (["delay", "reply"].includes(step.until)) step.minutes = Number(get("amount").value || 0) * Number(get("unit").value);
      if (step.until === "until_date") step.field = get("field").value;
    } else if (type === "branch") {
      step.if_replied = get("if_replied").value;
      step.if_not_replied = get("if_not_replied").value;
    } else if (type === "assign") {
      const user = get("user").value;
      step.user = user === "owner" ? "owner" : Number(user);
    } else if (type === "update_field") {
      step.field = get("field").value;
      step.value = get("value").value;
    } else if (type === "notify") {
      const [kind, id] = get("who").value.split(":");
      if (kind === "team") step.team = Number(id);
      else step.user = kind === "owner" ? "owner" : Number(id);
      step.text = get("text").value;
    }
    return step;
  });
}

// --- load, save, errors ---------------------------------------------------------------------------------

const csrf = () => form.querySelector("[name=csrfmiddlewaretoken]").value;

function showErrors(errors) {
  form.querySelectorAll(".error").forEach((e) => { if (e.dataset.errorFor || e.classList.contains("step-error")) e.textContent = ""; });
  const general = form.querySelector(".form-error");
  general.hidden = true;
  const leftovers = [];
  for (const [path, messages] of Object.entries(errors)) {
    const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
    const step = path.match(/^steps\[(\d+)\]/);
    const target = step
      ? stepsList.querySelectorAll(".step-error")[Number(step[1])]
      : form.querySelector(`[data-error-for="${path.split(/[.[]/)[0]}"]`);
    if (target) target.textContent = path.includes(".") && !step ? `${path.split(".").slice(1).join(".")}: ${text}` : text;
    else leftovers.push(text);
  }
  if (leftovers.length) {
    general.textContent = leftovers.join(" ");
    general.hidden = false;
  }
  (form.querySelector(".error:not(:empty)") || general).scrollIntoView({ block: "center" });
}

async function save(status) {
  const body = {
    name: form.elements.name.value,
    trigger: readTrigger(),
    conditions: readConditions(),
    steps: readSteps(),
    quiet_hours: form.elements.quiet_hours.value,
    reenroll: form.elements.reenroll.checked,
    reenroll_window_hours: Number(form.elements.reenroll_window_hours.value || 0),
  };
  if (status) body.status = status;
  const url = data ? `${form.dataset.api}/${data.id}` : form.dataset.api;
  let response;
  try {
    response = await fetch(url, {
      method: data ? "PATCH" : "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    showErrors({ detail: "The server could not be reached, so nothing was saved. Check the connection and save again." });
    return false;
  }
  const answer = await response.json().catch(() => ({ detail: `The server answered ${response.status}.` }));
  if (!response.ok) {
    showErrors(answer);
    return false;
  }
  window.location.assign(`${form.dataset.list}${answer.id}`);
  return true;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  // One save at a time: a second click while the first is on its way would create the automation twice.
  const buttons = form.querySelectorAll(".actions button[type=submit]");
  if (form.dataset.saving) return;
  form.dataset.saving = "1";
  buttons.forEach((b) => { b.disabled = true; });
  let leaving = false;
  try {
    leaving = await save(event.submitter ? event.submitter.dataset.status : "");
  } finally {
    if (!leaving) {
      delete form.dataset.saving;
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
});

// Name and safety fields come filled from the page itself, so what someone types before this script runs
// is kept.
renderTrigger(data ? data.trigger : { type: "record_created", record_type: "lead" });
renderConditions(data ? data.conditions : { match: "all", rules: [] });
for (const step of data ? data.steps : [{ type: "send_template" }]) stepsList.append(stepItem(step));

// --- dry run ----------------------------------------------------------------------------------------------

// The record is found by name, number or email through the record type's own list API (?q=), the one
// the CRM pages use, so the search answers the same rules and only the organization's records.

const recordLabel = (r) => {
  const name = `${r.first_name || ""} ${r.last_name || ""}`.trim() || r.name || r.subject || `#${r.id}`;
  const extra = r.mobile_phone || r.phone || r.email || "";
  return extra ? `${name} — ${extra}` : name;
};

function recordSearch(dry) {
  const status = dry.querySelector(".dry-run-status");
  const picked = dry.elements.record;
  let timer = null;
  let generation = 0;
  async function find() {
    const mine = ++generation;
    const term = dry.elements.q.value.trim();
    const type = dry.elements.type.value;
    picked.replaceChildren(el("option", { value: "", text: "Search for a record first" }));
    if (term.length < 2) {
      status.textContent = term ? "Type at least 2 characters." : "";
      return;
    }
    const url = `${choices.search_urls[type]}?q=${encodeURIComponent(term)}&page_size=10`;
    const response = await fetch(url, { credentials: "same-origin" });
    if (mine !== generation) return;
    const records = response.ok ? (await response.json()).results || [] : [];
    picked.replaceChildren(...records.map((r) => el("option", { value: r.id, text: recordLabel(r) })));
    if (!records.length) picked.append(el("option", { value: "", text: "No match" }));
    status.textContent = records.length ? `${records.length} found: pick one, then Test.` : `No ${type} matches “${term}”.`;
  }
  const soon = () => { clearTimeout(timer); timer = setTimeout(() => find().catch(() => { status.textContent = "Search is not available right now."; }), 300); };
  dry.elements.q.addEventListener("input", soon);
  dry.elements.type.addEventListener("change", soon);
  dry.elements.q.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(timer);
      find();
    }
  });
}

const dry = document.getElementById("dry-run");
if (dry) {
  recordSearch(dry);
  dry.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.querySelector(".dry-run-result");
    if (!dry.elements.record.value) {
      out.replaceChildren(el("p", { class: "error", text: "Find a record first: type a name, number or email." }));
      return;
    }
    const response = await fetch(dry.dataset.api, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ record: { type: dry.elements.type.value, id: Number(dry.elements.record.value) } }),
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    out.replaceChildren();
    if (!response.ok) {
      out.append(el("p", { class: "error", text: answer.detail || Object.values(answer).flat().join(" ") || "That record was not found." }));
      return;
    }
    if (!answer.enrolls) {
      out.append(el("p", { text: `It would not run for this record: ${answer.reason}.` }));
      return;
    }
    const list = el("ol");
    for (const step of answer.steps) {
      const line = el("li", {}, el("strong", { text: step.summary }));
      if (step.text !== undefined) line.append(el("blockquote", { text: step.text }), el("span", { class: "hint", text: step.would || "" }));
      list.append(line);
    }
    out.append(list);
  });
}
