// "My messages": the messages API as a table: filters, sort by any column, "Load more" (cursor) and the same
// filters for the CSV export.
import { api, errorText, formatNumber, fullTime, h } from "../../frontend/ui.js";
import { sourceName, startOfDay } from "../../frontend/workspace/format.js";

const form = document.querySelector("[data-message-filters]");
const rows = document.querySelector("[data-rows]");
const empty = document.querySelector("[data-empty]");
const more = document.querySelector("[data-more]");
const status = document.querySelector("[data-status]");
const exportLink = document.querySelector("[data-export]");
let ordering = "-created_at";
let next = null;

function params() {
  const p = new URLSearchParams();
  for (const [key, value] of new FormData(form)) {
    if (!value) continue;
    if (key === "date_from" || key === "date_to") {
      // Whole days in the organization's time zone; "to" runs through the end of that day.
      let day = value;
      if (key === "date_to") {
        const next = new Date(`${value}T12:00:00Z`);
        next.setUTCDate(next.getUTCDate() + 1);
        day = next.toISOString().slice(0, 10);
      }
      p.set(key, startOfDay(day).toISOString());
    } else {
      p.set(key, value);
    }
  }
  p.set("ordering", ordering);
  return p;
}

function row(m) {
  const failed = m.status === "failed" || m.status === "undelivered";
  return h(
    "tr",
    {},
    h("td", { class: "nowrap" }, fullTime(m.created_at)),
    h(
      "td",
      {},
      m.direction === "inbound" ? "Received" : "Sent",
      m.direction === "inbound" ? null : h("span", { class: "hint sent-by" }, ` by ${m.sender_name || sourceName(m.source, m.source_label)}`),
    ),
    h("td", { class: "nowrap" }, formatNumber(m.number)),
    h("td", { class: "nowrap" }, h("a", { href: `/inbox/conversations/${m.conversation}` }, formatNumber(m.customer_number))),
    h("td", {}, h("span", { class: `chip chip-${m.status}` }, m.status.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase())), failed && m.error_code ? h("span", { class: "hint" }, ` (error ${m.error_code})`) : null),
    h("td", { class: "message-text" }, m.body),
  );
}

async function load(reset) {
  status.textContent = "Loading…";
  const url = reset ? `messages?${params()}` : next;
  const { ok, data } = await api(url);
  if (!ok) {
    status.textContent = errorText(data, "Could not load messages.");
    return;
  }
  if (reset) rows.replaceChildren();
  rows.append(...data.results.map(row));
  next = data.next;
  more.hidden = !next;
  empty.hidden = rows.children.length > 0;
  status.textContent = `${rows.children.length} shown${next ? "" : " (all)"}`;
  const exportParams = params();
  exportLink.href = `/api/v1/messages/export?${exportParams}`;
  for (const button of document.querySelectorAll("[data-sort]")) {
    const key = button.dataset.sort;
    const th = button.closest("th");
    th.setAttribute("aria-sort", ordering === key ? "ascending" : ordering === `-${key}` ? "descending" : "none");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load(true);
});
form.addEventListener("reset", () => setTimeout(() => load(true)));
more.addEventListener("click", () => load(false));
for (const button of document.querySelectorAll("[data-sort]")) {
  button.addEventListener("click", () => {
    const key = button.dataset.sort;
    ordering = ordering === key ? `-${key}` : key;
    load(true);
  });
}
load(true);
