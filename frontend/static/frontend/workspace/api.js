// Same-origin JSON calls to the REST API with the session and the CSRF token.
// An answer that is not 2xx rejects with an ApiError carrying the server's plain-words reason.

export class ApiError extends Error {
  constructor(status, detail, field) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.field = field || "";
  }
}

// What a page that is not the app itself adds to every call (the embed page: its session, docs/embed.md).
// ``credentials``: "same-origin" by default; ``headers``: added to every request.
export const apiSettings = { credentials: "same-origin", headers: {} };

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

// The first plain-words reason of a DRF error body ({"detail": …} or {"field": ["…"]}).
function reasonOf(body) {
  if (!body || typeof body !== "object") return ["Something went wrong. Try again.", ""];
  if (typeof body.detail === "string") return [body.detail, body.field || ""];
  for (const [field, value] of Object.entries(body)) {
    const text = Array.isArray(value) ? value.join(" ") : String(value);
    return [text, field];
  }
  return ["Something went wrong. Try again.", ""];
}

export async function api(path, { method = "GET", json, form, headers = {}, signal } = {}) {
  const init = {
    method,
    credentials: apiSettings.credentials,
    headers: { Accept: "application/json", ...apiSettings.headers, ...headers },
    signal,
  };
  if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken();
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "No connection to QuickSend. Check your network and try again.");
  }
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const [detail, field] = reasonOf(body);
    throw new ApiError(response.status, detail, field);
  }
  return body;
}
