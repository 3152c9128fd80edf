// Who else has the conversation open, and who is typing in it: "Aaron is typing…", "Also viewing: Amy".
//
//   const presence = new Presence(lineEl);   // lineEl shows the words
//   presence.watch(conversationId);          // this page shows that conversation (null: none)
//   presence.typing();                       // a key was pressed in the composer (throttled here)
//   presence.stopTyping();                   // the text was sent or the box emptied
//   presence.destroy();
//
// Frames go over the page's one socket (live.js) and the server relays them only to members who may see the
// conversation (messaging/inbox/presence.py). Nothing is stored: every state expires in the pages that heard
// it ("expires_in") unless renewed, so a closed tab disappears on its own.

import { live } from "./live.js";

const VIEWING_RENEW_MS = 10000;
const TYPING_RENEW_MS = 2500;
const TYPING_IDLE_MS = 4000;

export class Presence {
  constructor(line) {
    this.line = line;
    this.conversationId = null;
    this.others = new Map(); // user id → { name, viewingUntil, typingUntil }
    this.lastTypingSent = 0;
    this.lastViewingSent = 0;
    this.typingTimer = null;
    this.ticker = null;
    this.offs = [
      live.on("presence", (event) => this.heard(event)),
      live.on("subscribed", (event) => {
        if (event.kind === "conv" && event.id === this.conversationId) this.announce(true);
      }),
      live.on("live.closed", () => this.clear()),
    ];
    this.renew = setInterval(() => this.announce(), VIEWING_RENEW_MS);
    this.onVisibility = () => {
      if (document.visibilityState === "visible") this.announce(true);
      else this.send("left");
    };
    this.onPageHide = () => this.send("left");
    document.addEventListener("visibilitychange", this.onVisibility);
    window.addEventListener("pagehide", this.onPageHide);
  }

  send(state) {
    if (!this.conversationId) return false;
    return live.send({ action: "presence", conversation: this.conversationId, state });
  }

  // "viewing" now (forced) or when the last one is about to run out.
  announce(force = false) {
    if (!this.conversationId || document.visibilityState !== "visible") return;
    const now = Date.now();
    if (!force && now - this.lastViewingSent < VIEWING_RENEW_MS - 500) return;
    if (this.send("viewing")) this.lastViewingSent = now;
  }

  watch(conversationId) {
    if (conversationId === this.conversationId) return;
    this.send("left");
    this.conversationId = conversationId;
    this.lastViewingSent = 0;
    this.clear();
    // The "viewing" goes out once the socket confirms the subscription (the server relays only then); when
    // it is already subscribed, now.
    this.announce(true);
  }

  typing() {
    const now = Date.now();
    if (now - this.lastTypingSent >= TYPING_RENEW_MS && this.send("typing")) this.lastTypingSent = now;
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (!this.lastTypingSent) return;
    this.lastTypingSent = 0;
    if (this.send("stopped")) this.lastViewingSent = Date.now();
  }

  heard(event) {
    if (event.conversation_id !== this.conversationId || event.user.id === live.userId) return;
    const now = Date.now();
    const known = this.others.get(event.user.id);
    if (event.state === "left") {
      this.others.delete(event.user.id);
    } else {
      const until = now + event.expires_in * 1000;
      const entry = known || { name: event.user.name, viewingUntil: 0, typingUntil: 0 };
      entry.name = event.user.name;
      entry.viewingUntil = Math.max(entry.viewingUntil, now + Math.max(event.expires_in, 30) * 1000);
      // "viewing" (a heartbeat, an answer to a newcomer) leaves a typing heard before to run out by itself.
      if (event.state === "typing") entry.typingUntil = until;
      else if (event.state === "stopped") entry.typingUntil = 0;
      this.others.set(event.user.id, entry);
      // Someone new: tell them we are here too (they cannot know otherwise; nothing is stored). Our last
      // "viewing" went out before they listened, so it is sent again, at once or as soon as the server's
      // rate limit allows (never skipped: they would not learn of us until the next renewal).
      if (!known) {
        const wait = this.lastViewingSent + 1500 - now;
        clearTimeout(this.answerTimer);
        if (wait <= 0) this.announce(true);
        else this.answerTimer = setTimeout(() => this.announce(true), wait);
      }
    }
    this.render();
  }

  clear() {
    this.others.clear();
    this.render();
  }

  render() {
    const now = Date.now();
    for (const [id, entry] of this.others) if (entry.viewingUntil <= now) this.others.delete(id);
    const typing = [];
    const viewing = [];
    for (const entry of this.others.values()) (entry.typingUntil > now ? typing : viewing).push(entry.name);
    const parts = [];
    if (typing.length) parts.push(`${listOf(typing)} ${typing.length > 1 ? "are" : "is"} typing…`);
    if (viewing.length) parts.push(`Also viewing: ${viewing.join(", ")}`);
    const text = parts.join(" · ");
    if (this.line.textContent !== text) this.line.textContent = text;
    this.line.hidden = !text;
    // Expire what runs out while nothing else is heard.
    if (this.others.size && !this.ticker) this.ticker = setInterval(() => this.render(), 1000);
    if (!this.others.size && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  destroy() {
    this.send("left");
    for (const off of this.offs) off();
    clearInterval(this.renew);
    clearInterval(this.ticker);
    clearTimeout(this.typingTimer);
    clearTimeout(this.answerTimer);
    document.removeEventListener("visibilitychange", this.onVisibility);
    window.removeEventListener("pagehide", this.onPageHide);
  }
}

function listOf(names) {
  if (names.length < 3) return names.join(" and ");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
