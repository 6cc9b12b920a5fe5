// btdnet-serve page: posts the form to /predict and draws each answer. No library, no network
// access beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot decode an image in the answer"));
    img.src = src;
  });
}

function stem(name) {
  return (name || "image").replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_-]+/g, "_");
}

let scheme = {
  colors: { prediction: "#ffd60a", box: "#00e5ff", truth: "#ff5cf0", halo: "#000000" },
  legend: { prediction: "predicted object (ring outside it)", box: "bounding box" },
};

function rgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

// Grow a 0/1 mask by one pixel (4-neighbourhood), as btdnet.predict.overlay.dilate does.
function grow(mask, w, h) {
  const out = mask.slice();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (mask[i]) continue;
      if ((x > 0 && mask[i - 1]) || (x < w - 1 && mask[i + 1]) ||
          (y > 0 && mask[i - w]) || (y < h - 1 && mask[i + w])) out[i] = 1;
    }
  }
  return out;
}

// Outline-first: a ring just outside the mask over a dark halo; the object's own pixels are
// left as they are. Then the box, around the ring, in its own colour.
async function drawOverlay(canvas, preview, maskSrc, bbox, size) {
  const maskImage = await loadImage(maskSrc);
  const w = (canvas.width = preview.naturalWidth);
  const h = (canvas.height = preview.naturalHeight);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(preview, 0, 0);
  const off = document.createElement("canvas");
  off.width = w;
  off.height = h;
  const octx = off.getContext("2d");
  octx.drawImage(maskImage, 0, 0, w, h);
  const m = octx.getImageData(0, 0, w, h).data;
  const mask = new Uint8Array(w * h);
  for (let i = 0; i < mask.length; i++) mask[i] = m[4 * i] > 127 ? 1 : 0;
  const thickness = Math.max(1, Math.round(Math.max(w, h) / 400));
  let outer = mask;
  for (let k = 0; k < thickness; k++) outer = grow(outer, w, h);
  const halo = grow(outer, w, h);
  const picture = ctx.getImageData(0, 0, w, h);
  const p = picture.data;
  const ring = rgb(scheme.colors.prediction);
  const dark = rgb(scheme.colors.halo);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) continue;
    const color = outer[i] ? ring : halo[i] ? dark : null;
    if (color) [p[4 * i], p[4 * i + 1], p[4 * i + 2]] = color;
  }
  ctx.putImageData(picture, 0, 0);
  if (bbox) {
    const sx = w / size.width;
    const sy = h / size.height;
    const pad = thickness + 2;  // outside the ring and its halo
    const x1 = Math.floor(bbox[0] * sx) - pad, y1 = Math.floor(bbox[1] * sy) - pad;
    const x2 = Math.ceil(bbox[2] * sx) - 1 + pad, y2 = Math.ceil(bbox[3] * sy) - 1 + pad;
    ctx.strokeStyle = scheme.colors.box;
    ctx.lineWidth = 1;
    ctx.strokeRect(x1 + 0.5, y1 + 0.5, x2 - x1, y2 - y1);
  }
}

function showLegend() {
  const items = ["prediction", "box"].map((key) => {
    const item = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.borderColor = scheme.colors[key];
    item.append(swatch, scheme.legend[key]);
    return item;
  });
  $("legend").replaceChildren("Colours: ", ...items);
}

function link(text, href, filename) {
  const a = document.createElement("a");
  a.textContent = text;
  a.href = href;
  a.download = filename;
  return a;
}

// What the model can say: found, not found, or a best guess from a model without a
// presence head (it cannot tell absence).
function verdict(p) {
  if (p.present === true) return ["found", "present"];
  if (p.present === false) return ["not found", "absent"];
  return ["best guess (this model cannot tell absence)", "guess"];
}

function facts(p) {
  const div = document.createElement("div");
  div.className = "facts";
  const presence = p.presence === null ? "no presence head" : `presence ${p.presence.toFixed(3)}`;
  const [words, kind] = verdict(p);
  const status = document.createElement("span");
  status.className = kind;
  status.textContent = words;
  div.append(status, ` · score ${p.score.toFixed(3)} · ${presence} · area ${p.area} px`);
  if (p.objects) {
    div.append(document.createElement("br"),
      `${p.object_count} object(s) · ${p.tiles} tiles, ${p.tiles_skipped} skipped`);
  } else {
    div.append(document.createElement("br"), `box ${p.bbox ? JSON.stringify(p.bbox) : "none"}`);
  }
  if (p.truncated) div.append(" · text truncated to the model's token limit");
  return div;
}

function objectList(p) {
  const list = document.createElement("ol");
  list.className = "objects";
  p.objects.forEach((o) => {
    const item = document.createElement("li");
    item.textContent = `box ${JSON.stringify(o.bbox)} · ${o.area_pixels} px`;
    list.append(item);
  });
  return list;
}

function heatRow(p) {
  const row = document.createElement("div");
  row.className = "heat";
  p.correlation_png.forEach((png, i) => {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = "data:image/png;base64," + png;
    img.alt = `BSC correlation map, stage ${i + 1}`;
    const caption = document.createElement("figcaption");
    caption.textContent = `BSC stage ${i + 1}`;
    fig.append(img, caption);
    row.append(fig);
  });
  return row;
}

async function card(p, index, answer, preview) {
  const div = document.createElement("div");
  div.className = "card";
  div.dataset.index = String(index);
  const title = document.createElement("h2");
  title.textContent = p.text;
  const maskSrc = "data:image/png;base64," + p.mask_png;
  let picture;
  if (p.preview_png) {  // scene mode: the server's preview, objects already outlined
    picture = document.createElement("img");
    picture.className = "preview";
    picture.src = "data:image/png;base64," + p.preview_png;
    picture.alt = `scene preview for ${p.text}`;
  } else {
    picture = document.createElement("canvas");
    picture.setAttribute("aria-label", `overlay for ${p.text}`);
    await drawOverlay(picture, preview, maskSrc, p.bbox, answer.image);
  }
  const downloads = document.createElement("div");
  downloads.className = "downloads";
  const base = `${stem(answer.image.name)}__${index + 1}`;
  downloads.append(link("mask PNG", maskSrc, `${base}.png`));
  if (p.mask_geotiff) {
    downloads.append(link("GeoTIFF", "data:image/tiff;base64," + p.mask_geotiff, `${base}.tif`));
  }
  if (p.geojson) {
    const blob = new Blob([JSON.stringify(p.geojson)], { type: "application/geo+json" });
    downloads.append(link("GeoJSON", URL.createObjectURL(blob), `${base}.geojson`));
  }
  div.append(title, picture, facts(p));
  if (p.objects) div.append(objectList(p));
  div.append(heatRow(p), downloads);
  return div;
}

// The mode used: the server's one line when it chose scene mode or warns, else the facts.
function modeLine(image) {
  if (image.mode_note) return image.mode_note;
  if (image.mode === "scene") {
    return `scene mode: ${image.tiles} tiles of ${image.tile} px at native resolution`;
  }
  return `whole image: ${image.width}x${image.height} resized to ${image.resized_to}x` +
    `${image.resized_to} (factor ${image.resize_factor})`;
}

async function submit(event) {
  event.preventDefault();
  const file = $("image").files[0];
  const texts = $("texts").value.split("\n").map((t) => t.trim()).filter((t) => t);
  $("error").textContent = "";
  if (!file) { $("error").textContent = "choose an image first"; return; }
  if (!texts.length) { $("error").textContent = "type at least one expression"; return; }
  const body = new FormData();
  body.append("image", file);
  texts.forEach((t) => body.append("text", t));
  const threshold = $("threshold").value.trim();
  if (threshold) body.append("presence_threshold", threshold);
  if ($("mode").value) body.append("tile", $("mode").value);
  if ($("bands").value.trim()) body.append("bands", $("bands").value.trim());
  if ($("stretch").value.trim()) body.append("stretch", $("stretch").value.trim());
  body.append("preview", "true");
  $("submit").disabled = true;
  $("status").textContent = `segmenting ${texts.length} expression(s)…`;
  try {
    const response = await fetch("/predict", { method: "POST", body });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    const preview = answer.image_png
      ? await loadImage("data:image/png;base64," + answer.image_png) : null;
    $("mode-used").textContent = modeLine(answer.image);
    const cards = [];
    for (let i = 0; i < answer.predictions.length; i++) {
      cards.push(await card(answer.predictions[i], i, answer, preview));
    }
    $("results").replaceChildren(...cards);
    $("status").textContent = `done in ${answer.seconds.toFixed(2)} s`;
  } catch (err) {
    $("status").textContent = "";
    $("error").textContent = err.message;
  } finally {
    $("submit").disabled = false;
  }
}

async function showModel() {
  try {
    const health = await (await fetch("/health")).json();
    const m = health.model || {};
    $("model").textContent =
      `model ${m.variant || "?"} (${m.checkpoint || "?"}) on ${health.device}, ` +
      `input ${m.image_size}px · API docs at /docs`;
  } catch (err) {
    $("model").textContent = "model information unavailable";
  }
}

async function loadScheme() {
  try {
    scheme = await (await fetch("/overlay.json")).json();
  } catch (err) {
    // keep the built-in copy of the scheme
  }
  showLegend();
}

$("form").addEventListener("submit", submit);
showModel();
loadScheme();
