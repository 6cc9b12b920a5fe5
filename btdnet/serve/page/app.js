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

async function drawOverlay(canvas, preview, maskSrc, bbox, size) {
  const mask = await loadImage(maskSrc);
  canvas.width = preview.naturalWidth;
  canvas.height = preview.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(preview, 0, 0);
  const off = document.createElement("canvas");
  off.width = canvas.width;
  off.height = canvas.height;
  const octx = off.getContext("2d");
  octx.drawImage(mask, 0, 0, off.width, off.height);
  const m = octx.getImageData(0, 0, off.width, off.height).data;
  const picture = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const p = picture.data;
  for (let i = 0; i < p.length; i += 4) {
    if (m[i] > 127) {
      p[i] = Math.round(p[i] * 0.45 + 255 * 0.55);
      p[i + 1] = Math.round(p[i + 1] * 0.45 + 40 * 0.55);
      p[i + 2] = Math.round(p[i + 2] * 0.45 + 40 * 0.55);
    }
  }
  ctx.putImageData(picture, 0, 0);
  if (bbox) {
    const sx = canvas.width / size.width;
    const sy = canvas.height / size.height;
    ctx.strokeStyle = "#ffd60a";
    ctx.lineWidth = Math.max(1, Math.round(canvas.width / 200));
    ctx.strokeRect(bbox[0] * sx, bbox[1] * sy, (bbox[2] - bbox[0]) * sx, (bbox[3] - bbox[1]) * sy);
  }
}

function link(text, href, filename) {
  const a = document.createElement("a");
  a.textContent = text;
  a.href = href;
  a.download = filename;
  return a;
}

function facts(p) {
  const div = document.createElement("div");
  div.className = "facts";
  const presence = p.presence === null ? "no presence head" : `presence ${p.presence.toFixed(3)}`;
  const found = p.present ? "found" : "not found";
  const status = document.createElement("span");
  status.className = p.present ? "present" : "absent";
  status.textContent = found;
  div.append(status, ` · score ${p.score.toFixed(3)} · ${presence} · area ${p.area} px`);
  div.append(document.createElement("br"), `box ${p.bbox ? JSON.stringify(p.bbox) : "none"}`);
  if (p.truncated) div.append(" · text truncated to the model's token limit");
  return div;
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
  const canvas = document.createElement("canvas");
  canvas.setAttribute("aria-label", `overlay for ${p.text}`);
  const maskSrc = "data:image/png;base64," + p.mask_png;
  await drawOverlay(canvas, preview, maskSrc, p.bbox, answer.image);
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
  div.append(title, canvas, facts(p), heatRow(p), downloads);
  return div;
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
  body.append("preview", "true");
  $("submit").disabled = true;
  $("status").textContent = `segmenting ${texts.length} expression(s)…`;
  try {
    const response = await fetch("/predict", { method: "POST", body });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    const preview = await loadImage("data:image/png;base64," + answer.image_png);
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

$("form").addEventListener("submit", submit);
showModel();
