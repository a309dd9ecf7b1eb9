// The playground's wiring: the form, the key dialog, the results, the gallery and the strip.

import { NeedsKey, generate, rememberKey, storedKey } from "./api.js";
import { Gallery } from "./gallery.js";
import { el, formatSeconds, formatUsd, galleryItem, resultCard } from "./render.js";
import { fillRouting, refreshStatus, routingOf } from "./status.js";

const $ = (id) => document.getElementById(id);
const gallery = new Gallery();
let resultUrls = [];
let galleryUrls = [];

function blobOf(b64, format) {
  const bytes = Uint8Array.from(atob(b64), (char) => char.charCodeAt(0));
  return new Blob([bytes], { type: `image/${format}` });
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function progress(message) {
  $("progress").textContent = message;
}

// --- the key -------------------------------------------------------------------------------

let keyWaiters = [];

function askForKey(reason) {
  const dialog = $("key-dialog");
  $("key-reason").textContent = reason;
  $("key-input").value = storedKey();
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

function closeKeyDialog(saved) {
  const dialog = $("key-dialog");
  if (dialog.open) dialog.close();
  const waiters = keyWaiters;
  keyWaiters = [];
  for (const resolve of waiters) resolve(saved);
  $("key-button").textContent = storedKey() ? "API key (set)" : "API key…";
  const focused = document.activeElement;
  if (focused === null || focused === document.body || dialog.contains(focused)) $("prompt").focus();
}

function wireKeyDialog() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    rememberKey(key);
    closeKeyDialog(true);
  });
  $("key-forget").addEventListener("click", () => {
    rememberKey("");
    $("key-input").value = "";
    closeKeyDialog(false);
  });
  $("key-cancel").addEventListener("click", () => closeKeyDialog(false));
  $("key-dialog").addEventListener("cancel", () => closeKeyDialog(false));  // Escape
  $("key-button").addEventListener("click", () => askForKey("The key this tab sends to the gateway."));
  $("key-button").textContent = storedKey() ? "API key (set)" : "API key…";
}

// Runs `call`; a 401 asks for a key and tries once more with it.
async function withKey(call) {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof NeedsKey)) throw error;
    const saved = await askForKey(`The gateway asked for a key: ${error.message}`);
    if (!saved) throw error;
    return call();
  }
}

// --- route health ----------------------------------------------------------------------------

// `ask`: a gateway that wants a key for its route health asks for one now (the page's first look).
async function updateStatus({ ask = false } = {}) {
  try {
    const offer = await refreshStatus($("status-strip"), $("status-note"));
    fillRouting($("routing"), $("routing-hint"), offer);
  } catch (error) {
    fillRouting($("routing"), $("routing-hint"), null);
    if (ask && error instanceof NeedsKey && await askForKey(`This gateway asks for a key: ${error.message}`)) {
      await updateStatus();
    }
  }
}

// --- the gallery -----------------------------------------------------------------------------

async function showGallery() {
  const entries = await gallery.list();
  for (const url of galleryUrls) URL.revokeObjectURL(url);
  galleryUrls = entries.map((entry) => URL.createObjectURL(entry.blob));
  const list = $("gallery");
  list.replaceChildren(...entries.map((entry, index) => galleryItem(entry, galleryUrls[index])));
  if (entries.length === 0) list.replaceChildren(el("li", { class: "empty" }, "Images you generate here are kept in this browser."));
  $("gallery-clear").disabled = entries.length === 0;
}

// --- generating ------------------------------------------------------------------------------

function readForm() {
  const prompt = $("prompt").value;
  if (!prompt.trim()) return { problem: "Write a prompt first.", field: "prompt" };
  const fields = { prompt, size: $("size").value, n: Number.parseInt($("count").value, 10) };
  const negative = $("negative-prompt").value;
  if (negative.trim()) fields.negative_prompt = negative;
  const steps = $("steps").value.trim();
  if (steps) {
    const value = Number(steps);
    if (!Number.isInteger(value) || value < 1 || value > 50) return { problem: "Steps must be a whole number from 1 to 50.", field: "steps" };
    fields.steps = value;
  }
  const seed = $("seed").value.trim();
  if (seed) {
    const value = Number(seed);
    if (!Number.isInteger(value) || value < 0 || value > 4294967295) return { problem: "The seed must be a whole number from 0 to 4294967295.", field: "seed" };
    fields.seed = value;
  }
  return { fields };
}

function showResults(entries) {
  for (const url of resultUrls) URL.revokeObjectURL(url);
  resultUrls = entries.map((entry) => URL.createObjectURL(entry.blob));
  $("results").replaceChildren(...entries.map((entry, index) => resultCard(entry, resultUrls[index], index, entries.length)));
}

async function onGenerate(event) {
  event.preventDefault();
  showError("");
  const form = readForm();
  if (form.problem) {
    showError(form.problem);
    $(form.field).setAttribute("aria-invalid", "true");
    $(form.field).focus();
    return;
  }
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const button = $("generate-button");
  button.disabled = true;
  $("generate-form").setAttribute("aria-busy", "true");
  progress("Generating…");
  try {
    const routing = routingOf($("routing").value);
    const result = await withKey(() => generate(form.fields, routing));
    const [width, height] = form.fields.size.split("x").map(Number);
    const created = Date.now();
    const count = result.images.length;
    const entries = result.images.map((b64, index) => ({
      blob: blobOf(b64, result.format), format: result.format, prompt: form.fields.prompt,
      negativePrompt: form.fields.negative_prompt || "", width, height, index,
      seed: result.seed ?? (result.served.seed === null ? null : Number(result.served.seed)),
      served: result.served, cost: result.cost,
      unitCost: result.cost === null ? null : Number(result.cost) / Math.max(count, 1),
      latencySeconds: result.latencySeconds, created,
    }));
    showResults(entries);
    const where = `${result.served.vendor}${result.served.region ? `/${result.served.region}` : ""}`;
    progress(`${count} image${count === 1 ? "" : "s"} from ${where}` +
      (result.served.attempts > 1 ? ` after ${result.served.attempts} attempts` : "") +
      `, ${formatUsd(result.cost)}, ${formatSeconds(result.latencySeconds)}.`);
    await gallery.add(entries).catch(() => undefined);  // a full or refused store loses the gallery copy only
    await showGallery();
  } catch (error) {
    progress("");
    showError(error instanceof NeedsKey ? `${error.message}. The “API key” button sets the key this tab sends.` : error.message);
  } finally {
    button.disabled = false;
    $("generate-form").removeAttribute("aria-busy");
    updateStatus();
  }
}

function start() {
  wireKeyDialog();
  $("generate-form").addEventListener("submit", onGenerate);
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("generate-form").requestSubmit();
    }
  });
  $("gallery-clear").addEventListener("click", async () => {
    await gallery.clear();
    await showGallery();
    progress("Gallery cleared.");
  });
  updateStatus({ ask: true });
  showGallery();
}

start();
