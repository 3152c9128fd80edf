// The selected conversation's thread and composer in the inbox: the same widget as a record's page
// (frontend/workspace/thread.js, mountConversation). Returns {destroy, focusComposer}.
import { h } from "../../frontend/ui.js";

export function mountConversation(container, conversation, { focus = false } = {}) {
  container.replaceChildren(h("p", { class: "hint thread-fallback" }, "Loading the conversation…"));
  let widget = null;
  let cancelled = false;
  import("../../frontend/workspace/thread.js")
    .then((module) => {
      if (cancelled) return;
      container.replaceChildren();
      widget = module.mountConversation(container, { conversationId: conversation.id });
      if (focus) widget.focusComposer();
    })
    .catch(() => {
      if (cancelled) return;
      container.replaceChildren(
        h("div", { class: "card thread-fallback" }, h("p", {}, "The thread could not be loaded. Reload the page to try again.")),
      );
    });
  return {
    destroy() {
      cancelled = true;
      widget?.destroy();
      container.replaceChildren();
    },
    focusComposer() {
      widget?.focusComposer();
    },
  };
}
