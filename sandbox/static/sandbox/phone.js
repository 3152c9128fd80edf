// The sandbox's customer phone: texts a sandbox number through the control API and polls the conversation.
// Everything is rendered with textContent (never innerHTML): bodies come from anyone.
(function () {
  "use strict";
  const base = document.body.dataset.base || "/sandbox";
  const $ = (id) => document.getElementById(id);
  const form = $("phone-form");
  const customer = $("customer");
  const select = $("sandbox-number");
  const thread = $("thread");
  const status = $("status");
  let lastKey = "";

  async function getJSON(path) {
    const response = await fetch(base + path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(path + " → HTTP " + response.status);
    return response.json();
  }

  async function loadNumbers() {
    const data = await getJSON("/control/numbers");
    select.textContent = "";
    for (const n of data.numbers) {
      const option = document.createElement("option");
      option.value = n.phone_number;
      option.textContent = `${n.friendly_name} — ${n.phone_number} (${n.type}, ${n.account_name})`;
      select.appendChild(option);
    }
    const phones = await getJSON("/control/phones");
    const list = $("known-phones");
    list.textContent = "";
    for (const p of phones.phones) {
      const option = document.createElement("option");
      option.value = p;
      list.appendChild(option);
    }
  }

  function bubble(message) {
    const mine = message.direction === "inbound"; // inbound to the sandbox = sent by this customer
    const item = document.createElement("div");
    item.className = "bubble " + (mine ? "mine" : "theirs");
    item.dataset.sid = message.sid;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = (mine ? "To " + message.to : "From " + message.from) + " · " + (message.date_sent || message.date_created);
    item.appendChild(meta);
    if (message.body) {
      const text = document.createElement("div");
      text.className = "text";
      text.textContent = message.body;
      item.appendChild(text);
    }
    for (const media of message.media || []) {
      if (media.content_type.startsWith("image/")) {
        const img = document.createElement("img");
        img.src = media.url;
        img.alt = "attachment";
        item.appendChild(img);
      } else {
        const link = document.createElement("a");
        link.href = media.url;
        link.textContent = "attachment (" + media.content_type + ")";
        link.target = "_blank";
        link.rel = "noopener";
        item.appendChild(link);
      }
    }
    if (mine && message.webhook) {
      const hook = document.createElement("div");
      hook.className = "meta webhook";
      const w = message.webhook;
      hook.textContent = w.error ? "webhook: " + w.error : "webhook: HTTP " + w.status_code;
      item.appendChild(hook);
    }
    return item;
  }

  async function refresh() {
    const phone = customer.value.trim();
    if (!/^\+[1-9][0-9]{6,14}$/.test(phone)) return;
    const data = await getJSON("/control/conversation?phone=" + encodeURIComponent(phone));
    const key = phone + ":" + data.messages.map((m) => m.sid + (m.webhook ? "w" : "")).join(",");
    if (key === lastKey) return;
    lastKey = key;
    thread.textContent = "";
    for (const message of data.messages) thread.appendChild(bubble(message));
    thread.scrollTop = thread.scrollHeight;
  }

  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve({
        content_type: file.type || "application/octet-stream",
        content_base64: String(reader.result).split(",", 2)[1] || "",
      });
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "Sending…";
    try {
      const media = await Promise.all(Array.from($("media").files).map(readFile));
      const response = await fetch(base + "/control/inbound", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ from: customer.value.trim(), to: select.value, body: $("body").value, media }),
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
      $("body").value = "";
      $("media").value = "";
      const w = data.webhook || {};
      status.textContent = w.error ? "Sent; webhook: " + w.error : "Sent; webhook answered HTTP " + w.status_code;
      await refresh();
    } catch (error) {
      status.textContent = "Not sent: " + error.message;
    }
  });

  customer.addEventListener("change", () => { lastKey = ""; refresh(); });
  loadNumbers().then(refresh).catch((error) => { status.textContent = error.message; });
  setInterval(() => refresh().catch(() => {}), 1500);
})();
