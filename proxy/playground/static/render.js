// Builds the page's pieces with DOM calls only: every prompt, vendor name and error message is a
// text node or an attribute value, never parsed as HTML.

export function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatUsd(value) {
  if (value === null || value === undefined || value === "") return "unknown";
  const number = Number(value);
  return Number.isFinite(number) ? `$${number.toFixed(6)}` : String(value);
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "unknown";
  return seconds < 10 ? `${seconds.toFixed(2)} s` : `${seconds.toFixed(1)} s`;
}

// "none: served on the first try", "failed over from a/b unavailable 503", "retried after ...";
// a hedged request also says which route raced this one.
export function describeFailover(served) {
  let told = "none: served on the first try";
  if (served.failed.length > 0) {
    const here = `${served.vendor}/${served.region} `;
    const others = served.failed.filter((part) => !part.startsWith(here));
    told = `${others.length > 0 ? "failed over from" : "retried after"} ${served.failed.join(", ")}`;
  } else if (served.attempts > 1 && !served.hedgedTo) {
    told = `${served.attempts - 1} failed attempt(s) before this one`;  // a gateway that names none
  }
  return served.hedgedTo ? `${told}; hedged: raced with ${served.hedgedTo}` : told;
}

function fact(name, label, value) {
  return [el("dt", {}, label), el("dd", { "data-fact": name }, value)];
}

function priceText(cost, count) {
  if (cost === null) return "unknown";
  if (count <= 1) return formatUsd(cost);
  return `${formatUsd(Number(cost) / count)} (of ${formatUsd(cost)} for ${count} images)`;
}

function latencyText(result) {
  const total = formatSeconds(result.latencySeconds);
  const vendor = result.served.runSeconds;
  return vendor === null || !Number.isFinite(vendor) ? total : `${total} (vendor run ${formatSeconds(vendor)})`;
}

export function downloadName(entry, index) {
  const stamp = new Date(entry.created).toISOString().replace(/[:.]/g, "-");
  return `boltgate-${stamp}-${entry.seed ?? "seed"}-${index + 1}.${entry.format}`;
}

// One result card; `url` is an object URL of the image blob.
export function resultCard(entry, url, index, count) {
  const served = entry.served;
  const placeLabel = served.region ? `${served.vendor} / ${served.region}` : served.vendor;
  return el("figure", { class: "card", "data-testid": "result" },
    el("img", { src: url, alt: `Generated image ${index + 1} of ${count}: ${entry.prompt}`,
                width: entry.width, height: entry.height, loading: "lazy" }),
    el("figcaption", {},
      el("p", { class: "prompt" }, entry.prompt),
      el("dl", { class: "facts" },
        fact("vendor", "Vendor", served.vendor),
        fact("region", "Region", served.region || "unknown"),
        fact("attempts", "Attempts", String(served.attempts)),
        fact("failover", "Failover", describeFailover(served)),
        fact("latency", "Latency", latencyText(entry)),
        fact("price", "Price", priceText(entry.cost, count)),
        fact("seed", "Seed", entry.seed === null ? "chosen by the vendor" : String(entry.seed))),
      el("a", { class: "download", href: url, download: downloadName(entry, index),
                "aria-label": `Download image ${index + 1} (${placeLabel})` }, "Download")));
}

export function galleryItem(entry, url) {
  return el("li", { class: "thumb", "data-testid": "gallery-item" },
    el("figure", {},
      el("img", { src: url, alt: entry.prompt, loading: "lazy", width: 160, height: 160 }),
      el("figcaption", {},
        el("span", { class: "thumb-prompt" }, entry.prompt),
        el("span", { class: "thumb-meta" },
          `${entry.served.vendor} · ${formatUsd(entry.unitCost)} · ${new Date(entry.created).toLocaleString()}`),
        el("a", { href: url, download: downloadName(entry, entry.index || 0) }, "Download"))));
}
