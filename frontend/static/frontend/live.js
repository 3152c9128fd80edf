// The page's one WebSocket to /ws/ (live events). Every module of the page shares it:
//
//   import { onEvent, subscribe } from "/static/frontend/live.js";
//   onEvent((event) => { if (event.type === "message.created") ... });   // every frame, typed
//   subscribe("conv", 42);                                                // join a conversation's events
//
// The socket reconnects with backoff and subscribes again; after a reconnect listeners get a
// {"type": "reconnected"} event and should refetch their REST snapshot (missed events are not replayed).

const listeners = new Set();
const subscriptions = new Set();
let socket = null;
let attempts = 0;
let everConnected = false;

function url() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws/`;
}

function emit(event) {
  for (const listener of listeners) {
    try {
      listener(event);
    } catch (error) {
      console.error(error);
    }
  }
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function connect() {
  if (socket && socket.readyState <= WebSocket.OPEN) return;
  socket = new WebSocket(url());
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.type === "hello") {
      attempts = 0;
      document.body.dataset.live = "connected"; // pages (and their tests) can tell the feed is live
      for (const key of subscriptions) {
        const [kind, id] = key.split(":");
        send({ action: "subscribe", kind, id: Number(id) });
      }
      if (everConnected) emit({ type: "reconnected" });
      everConnected = true;
    }
    emit(event);
  });
  socket.addEventListener("close", (event) => {
    document.body.dataset.live = "disconnected";
    if (event.code === 4401) return; // logged out: nothing to reconnect to
    attempts += 1;
    const delay = Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.75 + Math.random() / 2);
    setTimeout(connect, delay);
  });
}

export function onEvent(listener) {
  listeners.add(listener);
  connect();
  return () => listeners.delete(listener);
}

export function subscribe(kind, id) {
  const key = `${kind}:${id}`;
  if (subscriptions.has(key)) return;
  subscriptions.add(key);
  connect();
  send({ action: "subscribe", kind, id });
}

export function isOpen() {
  return Boolean(socket && socket.readyState === WebSocket.OPEN);
}
