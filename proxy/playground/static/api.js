// Talks to the gateway's public API with the visitor's key, and reads what each answer says.
// The key lives in sessionStorage: it leaves with the tab and is never written anywhere else.

const KEY_STORAGE = "boltgate.apiKey";

export class NeedsKey extends Error {
  constructor(message) {
    super(message);
    this.name = "NeedsKey";
  }
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";  // storage refused (private mode, policy): the key lasts as long as the page
  }
}

export function rememberKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* nothing kept; the next 401 asks again */
  }
}

function headersWithKey(extra) {
  const headers = new Headers(extra || {});
  const key = storedKey();
  if (key) headers.set("authorization", `Bearer ${key}`);
  return headers;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  let code;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = String(body.error.message || message);
      code = body.error.code;
    }
  } catch {
    /* not JSON: the status line says it */
  }
  if (response.status === 401) return new NeedsKey(message);
  return new ApiError(response.status, message, code);
}

// GET a JSON document; null when the gateway has no such endpoint (an older gateway).
export async function getJson(path) {
  const response = await fetch(path, { headers: headersWithKey({ accept: "application/json" }) });
  if (response.status === 404) return null;
  if (!response.ok && response.status !== 503) throw await errorOf(response);
  return response.json();
}

// The cost of a request: the `billing` object (newer gateways), `usage` (older ones), or the
// x-boltgate-cost-usd header, in that order.
export function costOf(body, headers) {
  const billed = (body && (body.billing || body.usage)) || {};
  const cost = billed.cost_usd ?? headers.get("x-boltgate-cost-usd");
  return cost === null || cost === undefined ? null : String(cost);
}

// How a request was served, from the x-boltgate-* headers.
export function servedBy(headers) {
  const attempts = Number.parseInt(headers.get("x-boltgate-attempts") || "1", 10);
  const failed = (headers.get("x-boltgate-failed-attempts") || "")
    .split(",").map((part) => part.trim()).filter(Boolean);
  const runSeconds = headers.get("x-boltgate-run-seconds");
  return {
    vendor: headers.get("x-boltgate-backend") || "unknown",
    region: headers.get("x-boltgate-region") || "",
    attempts: Number.isFinite(attempts) ? attempts : 1,
    failed,
    hedgedTo: headers.get("x-boltgate-hedged-to"),
    runSeconds: runSeconds === null ? null : Number.parseFloat(runSeconds),
    seed: headers.get("x-boltgate-seed"),
    requestId: headers.get("x-request-id"),
    replay: headers.get("x-boltgate-idempotent-replay") === "true",
  };
}

// POST /v1/images/generations. Images come back inline (b64_json) so the page can keep them
// in this browser after the gateway's links expire.
export async function generate(fields, routing) {
  const headers = headersWithKey({ "content-type": "application/json", accept: "application/json" });
  if (routing.policy) headers.set("x-boltgate-routing-policy", routing.policy);
  if (routing.route) headers.set("x-boltgate-route", routing.route);
  const body = { ...fields, response_format: "b64_json" };
  const started = performance.now();
  const response = await fetch("/v1/images/generations", { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) throw await errorOf(response);
  const answer = await response.json();
  const latencySeconds = (performance.now() - started) / 1000;
  return {
    images: (answer.data || []).map((item) => item.b64_json).filter((b64) => typeof b64 === "string"),
    format: answer.output_format || "png",
    seed: answer.seed ?? null,
    cost: costOf(answer, response.headers),
    served: servedBy(response.headers),
    latencySeconds,
  };
}
