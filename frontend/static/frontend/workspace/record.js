// Mounts the conversation widget in every element marked data-texting-widget on the page:
//
//   <section data-texting-widget data-record-type="lead" data-record-id="12"></section>
//
// (or data-conversation-id="7"). Add data-compact for a narrow side panel.

import { mountConversation } from "./thread.js";

for (const root of document.querySelectorAll("[data-texting-widget]")) {
  const { recordType, recordId, conversationId } = root.dataset;
  mountConversation(root, {
    recordType,
    recordId: recordId ? Number(recordId) : undefined,
    conversationId: conversationId ? Number(conversationId) : undefined,
    compact: "compact" in root.dataset,
  });
}
