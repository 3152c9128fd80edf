// The selected conversation's thread and composer in the inbox: the same component as a record's widget.
// Returns a function that unmounts it.
import { h } from "../../frontend/ui.js";

export function mountConversation(container, conversation, { focus = false } = {}) {
  container.replaceChildren(
    h("div", { class: "card thread-fallback" }, h("p", { class: "hint" }, "Loading the conversation…")),
  );
  let unmount = null;
  let cancelled = false;
  import("../../frontend/workspace/thread.js")
    .then((module) => {
      if (cancelled) return;
      container.replaceChildren();
      unmount = module.mountThread(container, { conversationId: conversation.id, focus });
    })
    .catch(() => {
      if (cancelled) return;
      container.replaceChildren(
        h("div", { class: "card thread-fallback" }, h("p", {}, "The thread could not be loaded. Reload the page to try again.")),
      );
    });
  return () => {
    cancelled = true;
    if (typeof unmount === "function") unmount();
    container.replaceChildren();
  };
}
