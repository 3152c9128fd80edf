// The live events client: one WebSocket per page (``/ws/``), shared by every widget on it.
//
//   import { live } from "./live.js";
//   const off = live.on("message.created", (event) => …);   // every event of that type
//   live.subscribe("conv", 7);                               // join a conversation's events (server checks)
//   live.onReconnect(() => refetchSnapshot());               // events missed while away are not replayed
//   live.send({action: "presence", conversation: 7, state: "typing"});  // dropped while disconnected
//   live.userId;                                             // this member (from the server's hello)
//
// A message from the server is one event, or an array of events of one batch (handled in order, as if they
// came one by one).
// Reconnects with backoff (1 s → 30 s) and re-subscribes; after a reconnect every onReconnect callback runs
// so the caller refetches its REST snapshot.

class LiveClient {
  constructor() {
    this.handlers = new Map();
    this.reconnectHandlers = new Set();
    this.subscriptions = new Set();
    this.socket = null;
    this.delay = 1000;
    this.everConnected = false;
    this.state = "idle";
    this.userId = Number(document.body && document.body.dataset.userId) || null;
    this.path = "/ws/";
    this.protocols = undefined;
  }

  // Before the first connection: another endpoint and subprotocols (the embed page's socket, docs/embed.md).
  configure({ path, protocols }) {
    this.path = path || this.path;
    this.protocols = protocols;
  }

  connect() {
    if (this.socket) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}${this.path}`;
    const socket = this.protocols ? new WebSocket(url, this.protocols) : new WebSocket(url);
    this.socket = socket;
    this.state = "connecting";
    socket.addEventListener("open", () => {
      this.delay = 1000;
      this.state = "open";
      for (const key of this.subscriptions) this.sendSubscribe(key);
      if (this.everConnected) for (const fn of this.reconnectHandlers) fn();
      this.everConnected = true;
      this.emit({ type: "live.open" });
    });
    socket.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      // Several events of one batch come as one array, in order.
      if (Array.isArray(data)) for (const one of data) this.emit(one);
      else this.emit(data);
    });
    socket.addEventListener("close", () => {
      this.socket = null;
      this.state = "closed";
      this.emit({ type: "live.closed" });
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 30000);
    });
  }

  send(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  emit(data) {
    if (data.type === "hello") this.userId = data.user_id;
    for (const fn of this.handlers.get(data.type) || []) fn(data);
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    this.connect();
    return () => this.handlers.get(type).delete(fn);
  }

  onReconnect(fn) {
    this.reconnectHandlers.add(fn);
    return () => this.reconnectHandlers.delete(fn);
  }

  sendSubscribe(key) {
    const [kind, id] = key.split(":");
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ action: "subscribe", kind, id: Number(id) }));
    }
  }

  subscribe(kind, id) {
    const key = `${kind}:${id}`;
    if (this.subscriptions.has(key)) return;
    this.subscriptions.add(key);
    this.connect();
    this.sendSubscribe(key);
  }
}

export const live = new LiveClient();
