// pixelseg's page: upload, pick a model or method, draw a box, segment / cut out, toggle classes, download.
"use strict";

const state = { file: null, image: null, box: null, labels: null, palette: [], names: [], hidden: new Set() };
const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const context = canvas.getContext("2d");

function status(text) { $("status").textContent = text; }

async function loadSources() {
  const response = await fetch("/api/models");
  const data = await response.json();
  const select = $("source");
  for (const model of data.models) select.add(new Option(`model: ${model.name}`, `model:${model.name}`));
  for (const method of data.methods) select.add(new Option(`method: ${method}`, `method:${method}`));
  state.models = Object.fromEntries(data.models.map((m) => [m.name, m]));
}

function useFile(file) {
  if (!file) return;
  state.file = file;
  state.box = null;
  state.labels = null;
  const image = new Image();
  image.onload = () => {
    state.image = image;
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    draw();
    $("segment").disabled = false;
    $("cutout").disabled = false;
    status(`${file.name}: ${image.naturalWidth}x${image.naturalHeight}`);
  };
  image.onerror = () => status(`${file.name} is not an image this browser can show`);
  image.src = URL.createObjectURL(file);
}

function draw() {
  if (!state.image) return;
  context.drawImage(state.image, 0, 0);
  if (state.labels) {
    const overlay = context.getImageData(0, 0, canvas.width, canvas.height);
    const labels = state.labels.data;
    for (let i = 0; i < labels.length; i += 4) {
      const index = labels[i];
      if (state.hidden.has(index)) continue;
      const colour = state.palette[index % state.palette.length] || [255, 255, 255];
      for (let c = 0; c < 3; c++) overlay.data[i + c] = 0.5 * overlay.data[i + c] + 0.5 * colour[c];
    }
    context.putImageData(overlay, 0, 0);
    $("download-overlay").href = canvas.toDataURL("image/png");
    $("download-overlay").hidden = false;
  }
  if (state.box) {
    const [x0, y0, x1, y1] = state.box;
    context.strokeStyle = "#ffcc00";
    context.lineWidth = Math.max(2, canvas.width / 300);
    context.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
}

function imagePoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [Math.round((event.clientX - rect.left) * canvas.width / rect.width),
          Math.round((event.clientY - rect.top) * canvas.height / rect.height)];
}

let dragStart = null;
canvas.addEventListener("mousedown", (event) => { if (state.image) dragStart = imagePoint(event); });
canvas.addEventListener("mousemove", (event) => {
  if (!dragStart) return;
  const [x, y] = imagePoint(event);
  state.box = [Math.min(dragStart[0], x), Math.min(dragStart[1], y), Math.max(dragStart[0], x), Math.max(dragStart[1], y)];
  draw();
});
window.addEventListener("mouseup", () => {
  if (dragStart && state.box) status(`box ${state.box.join(",")}`);
  dragStart = null;
});

function form() {
  const data = new FormData();
  data.append("file", state.file);
  const [kind, name] = $("source").value.split(/:(.*)/s);
  data.append(kind, name);
  return { data, kind, name };
}

async function fail(response) {
  let detail = response.statusText;
  try { detail = (await response.json()).detail; } catch (error) { /* not JSON */ }
  status(`error ${response.status}: ${detail}`);
}

function legend(names, palette) {
  const element = $("legend");
  element.replaceChildren();
  names.forEach((name, index) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !state.hidden.has(index);
    box.addEventListener("change", () => { box.checked ? state.hidden.delete(index) : state.hidden.add(index); draw(); });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${palette[index % palette.length].join(",")})`;
    label.append(box, swatch, name);
    element.append(label);
  });
}

$("segment").addEventListener("click", async () => {
  const { data, kind, name } = form();
  if ($("crf").checked && kind === "model") data.append("crf", "true");
  data.append("output", "labels");
  status("segmenting...");
  const response = await fetch("/api/segment", { method: "POST", body: data });
  if (!response.ok) return fail(response);
  const blob = await response.blob();
  $("download-labels").href = URL.createObjectURL(blob);
  $("download-labels").hidden = false;
  const bitmap = await createImageBitmap(blob);
  const scratch = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d");
  scratch.drawImage(bitmap, 0, 0);
  state.labels = scratch.getImageData(0, 0, bitmap.width, bitmap.height);
  let count = 0;
  for (let i = 0; i < state.labels.data.length; i += 4) count = Math.max(count, state.labels.data[i] + 1);
  if (kind === "model") {
    state.names = state.models[name].classes;
    state.palette = state.models[name].palette;
  } else {
    state.names = Array.from({ length: count }, (_, i) => `region ${i}`);
    state.palette = Array.from({ length: count }, (_, i) => [(i * 97) % 256, (i * 57 + 80) % 256, (i * 151 + 40) % 256]);
  }
  state.hidden = new Set();
  legend(state.names, state.palette);
  draw();
  status(`segmented by ${name}`);
});

$("cutout").addEventListener("click", async () => {
  const { data, kind, name } = form();
  const body = new FormData();
  body.append("file", state.file);
  if (state.box) body.append("box", state.box.join(","));
  if (kind === "model" && $("classes").value.trim()) {
    body.append("model", name);
    body.append("classes", $("classes").value.trim());
  }
  // neither a box nor classes: the server's default, the shipped portrait model (one click, no box)
  body.append("refine", $("refine").checked ? "true" : "false");
  status("cutting out...");
  const response = await fetch("/api/cutout", { method: "POST", body });
  if (!response.ok) return fail(response);
  const url = URL.createObjectURL(await response.blob());
  $("cutout-image").src = url;
  $("download-cutout").href = url;
  $("download-cutout").hidden = false;
  status("cut out");
});

$("clear-box").addEventListener("click", () => { state.box = null; draw(); });
$("file").addEventListener("change", (event) => useFile(event.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); useFile(event.dataTransfer.files[0]); });
loadSources().catch((error) => status(`cannot list models: ${error}`));
