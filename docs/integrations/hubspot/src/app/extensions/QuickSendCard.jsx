// QuickSend's card on HubSpot records. "Open texts" asks QuickSend for a launch URL through hubspot.fetch:
// HubSpot's proxy adds the user (userId, userEmail) and the account (portalId) and signs the request with the
// app's client secret (X-HubSpot-Signature-v3), which QuickSend verifies. The URL is single-use and valid 60
// seconds, so it is fetched on each click and opened at once.
import React, { useState } from "react";
import { Button, Text, hubspot } from "@hubspot/ui-extensions";

const QUICKSEND = "https://quicksend.example.com"; // your QuickSend host (also in app.json permittedUrls)

hubspot.extend(({ context, actions }) => <QuickSendCard context={context} actions={actions} />);

function QuickSendCard({ context, actions }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function open() {
    setBusy(true);
    setError("");
    try {
      const response = await hubspot.fetch(`${QUICKSEND}/api/v1/embed/hubspot/launch`, {
        method: "POST",
        body: { objectId: String(context.crm.objectId), objectTypeId: context.crm.objectTypeId },
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.detail || "QuickSend could not open this record.");
      actions.openIframeModal({ uri: answer.url, height: 720, width: 420, title: "Texts", flush: true });
    } catch (e) {
      setError(e.message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <Text>Text this record with QuickSend.</Text>
      <Button onClick={open} disabled={busy}>Open texts</Button>
      {error && <Text variant="microcopy">{error}</Text>}
    </>
  );
}
