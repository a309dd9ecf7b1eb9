// The status strip: each route's health, from GET /v1/backends where the gateway has it, else
// from /readyz (route names and the gateway's readiness only).

import { getJson } from "./api.js";
import { el, formatSeconds, formatUsd } from "./render.js";

const POLICIES = ["priority", "cheapest", "fastest", "balanced"];
const STATE_WORDS = {
  closed: "healthy",
  half_open: "recovering",
  open: "failing",
  quarantined: "quarantined",
};

function chipFromBackend(route) {
  const word = STATE_WORDS[route.state] || route.state || "unknown";
  const details = [
    route.reason ? `why: ${route.reason}` : null,
    route.latency_p50_s !== null && route.latency_p50_s !== undefined
      ? `p50 ${formatSeconds(route.latency_p50_s)}` : null,
    route.error_rate !== null && route.error_rate !== undefined
      ? `errors ${(route.error_rate * 100).toFixed(0)}%` : null,
    route.price_usd_1024x1024_4_steps ? `${formatUsd(route.price_usd_1024x1024_4_steps)}/image` : null,
  ].filter(Boolean);
  return el("li", { class: `route-chip ${route.state === "closed" ? "ok" : route.state || "unknown"}`,
                    "data-route": `${route.vendor}/${route.region}` },
    el("span", { class: "route-name" }, `${route.vendor}/${route.region}`),
    el("span", { class: "route-state" }, word),
    details.length > 0 ? el("span", { class: "route-details" }, details.join(" · ")) : null);
}

function chipFromReadiness(key, ready) {
  const name = key.replace(":", "/");
  return el("li", { class: `route-chip ${ready ? "ok" : "unknown"}`, "data-route": name },
    el("span", { class: "route-name" }, name),
    el("span", { class: "route-state" }, ready ? "enabled" : "gateway not ready"));
}

// Reads the routes and fills the strip; returns what the routing menu can offer:
// { policies: [...], routes: [{vendor, region}] } or null when the gateway takes no routing choice.
export async function refreshStatus(strip, note) {
  strip.setAttribute("aria-busy", "true");
  try {
    const backends = await getJson("/v1/backends");
    if (backends && Array.isArray(backends.data)) {
      strip.replaceChildren(...backends.data.map(chipFromBackend));
      note.textContent = "";
      return { policies: POLICIES, routes: backends.data.map((route) => ({ vendor: route.vendor, region: route.region })) };
    }
    const readiness = await getJson("/readyz");
    const routes = (readiness && Array.isArray(readiness.routes)) ? readiness.routes : [];
    const ready = Boolean(readiness) && readiness.status === "ready";
    strip.replaceChildren(...(routes.length > 0 ? routes.map((key) => chipFromReadiness(key, ready))
      : [el("li", { class: "route-chip unknown" }, "no route enabled")]));
    note.textContent = "Per-route health needs a gateway with GET /v1/backends; this one lists its routes only.";
    return null;
  } catch (error) {
    strip.replaceChildren(el("li", { class: "route-chip unknown" }, "route health unavailable"));
    note.textContent = error.name === "NeedsKey" ? "Route health needs an API key." : `Route health: ${error.message}`;
    throw error;
  } finally {
    strip.setAttribute("aria-busy", "false");
  }
}

// Fills the routing menu with what the gateway accepts, keeping the visitor's choice if it is still offered.
export function fillRouting(select, hint, offer) {
  const chosen = select.value;
  const options = [el("option", { value: "" }, "The gateway's policy")];
  if (offer) {
    options.push(el("optgroup", { label: "Routing policy" },
      ...offer.policies.map((policy) => el("option", { value: `policy:${policy}` }, `Policy: ${policy}`))));
    const vendors = [...new Set(offer.routes.map((route) => route.vendor))];
    const pins = vendors.map((vendor) => el("option", { value: `route:${vendor}` }, `Only ${vendor}`));
    for (const route of offer.routes) {
      if (offer.routes.filter((other) => other.vendor === route.vendor).length > 1) {
        pins.push(el("option", { value: `route:${route.vendor}/${route.region}` }, `Only ${route.vendor}/${route.region}`));
      }
    }
    options.push(el("optgroup", { label: "Pin one vendor (no failover)" }, ...pins));
  }
  select.replaceChildren(...options);
  select.disabled = !offer;
  hint.textContent = offer
    ? "A policy orders the routes; pinning one vendor never fails over elsewhere."
    : "This gateway routes by its own policy (it takes no per-request routing choice).";
  select.value = [...select.querySelectorAll("option")].some((option) => option.value === chosen) ? chosen : "";
}

export function routingOf(value) {
  if (value.startsWith("policy:")) return { policy: value.slice(7), route: null };
  if (value.startsWith("route:")) return { policy: null, route: value.slice(6) };
  return { policy: null, route: null };
}
