// New campaign: once a CSV file is chosen, its header row becomes the choices of "Column holding the phone
// number" (a guess is preselected: a column named like phone, mobile or cell), and the page lists the merge
// fields the other columns give. Without JavaScript the field stays a text box that takes the header's name.

const MAX_HEADER_BYTES = 64 * 1024;

export function headerCells(line) {
  // One CSV record (RFC 4180): commas, quoted cells with "" for a quote. The file's first line only.
  const cells = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      cells.push(cell.trim());
      cell = "";
    } else cell += c;
  }
  cells.push(cell.trim());
  return cells.filter((name) => name !== "");
}

function firstLine(text) {
  const clean = text.replace(/^\uFEFF/, "");
  let quoted = false;
  for (let i = 0; i < clean.length; i += 1) {
    if (clean[i] === '"') quoted = !quoted;
    else if (!quoted && (clean[i] === "\n" || clean[i] === "\r")) return clean.slice(0, i);
  }
  return clean;
}

function guess(headers) {
  return headers.find((h) => /phone|mobile|cell/i.test(h)) || headers.find((h) => /number/i.test(h)) || headers[0];
}

function mount() {
  const file = document.getElementById("id_file");
  const field = document.getElementById("id_phone_column");
  const merge = document.getElementById("csv-merge-fields");
  if (!file || !field) return;
  let current = field;
  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    const headers = headerCells(firstLine(await chosen.slice(0, MAX_HEADER_BYTES).text()));
    if (!headers.length) {
      if (merge) merge.textContent = "This file has no header row: its first line must name the columns.";
      return;
    }
    const select = document.createElement("select");
    select.id = field.id;
    select.name = field.name;
    for (const name of headers) select.append(new Option(name, name));
    select.value = guess(headers);
    const describe = () => {
      if (!merge) return;
      const others = headers.filter((h) => h !== select.value);
      merge.textContent = others.length
        ? `Merge fields from this file: ${others.map((h) => `{{${h}}}`).join(", ")}`
        : "The file has no other column to merge.";
    };
    select.addEventListener("change", describe);
    current.replaceWith(select);
    current = select;
    describe();
  });
}

mount();
