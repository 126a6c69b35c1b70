// The cityseg web app: lists the API's images; a click shows image, true mask, prediction and IoU.
// Every call goes to api/... on this page's origin, which `cityseg app` forwards to the API.
"use strict";

const $ = (id) => document.getElementById(id);
let categories = [];
let objectUrls = [];
let selection = 0; // a newer click wins over answers still on their way for an older one

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(`${url}: ${response.status} ${body.detail ?? ""}`);
  return body;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function modelLabel(name, version) {
  return version ? `${name} v${version}` : name;
}

function formatScore(value) {
  return value === null || value === undefined ? "–" : value.toFixed(3);
}

async function showModel() {
  try {
    const model = await getJson("api/model");
    $("model").textContent = `model: ${modelLabel(model.name, model.version)}`;
  } catch (error) {
    $("model").textContent = "model: not ready";
  }
}

function showLegend() {
  $("legend").replaceChildren(...categories.map((category) => {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = category.color;
    item.append(swatch, category.name);
    return item;
  }));
}

function showScores(result) {
  const rows = categories.filter((c) => c.id !== 0).map((category) => {
    const iou = result.scores[`iou_${category.name}`];
    const row = document.createElement("tr");
    row.dataset.category = category.name;
    const bar = iou === null ? "" : `<div class="bar" style="width:${Math.round(iou * 100)}px"></div>`;
    row.innerHTML = `<td><span class="swatch" style="display:inline-block;background:${category.color}"></span>
      ${category.name}</td><td class="num iou">${formatScore(iou)}</td>
      <td class="num">${formatScore(result.scores[`dice_${category.name}`])}</td><td>${bar}</td>`;
    return row;
  });
  $("scores").tBodies[0].replaceChildren(...rows);
  $("scores").tFoot.innerHTML = `<tr><td>mean (7 categories)</td>
    <td class="num" id="mean-iou">${formatScore(result.scores.mean_iou)}</td>
    <td class="num">${formatScore(result.scores.mean_dice)}</td><td></td></tr>`;
  $("scores").hidden = false;
}

function showBlob(img, blob) {
  const url = URL.createObjectURL(blob);
  objectUrls.push(url);
  img.src = url;
}

async function select(id, button) {
  const mine = ++selection;
  document.querySelectorAll("#ids button").forEach((b) => b.setAttribute("aria-current", String(b === button)));
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
  ["img-image", "img-true", "img-pred", "img-explain"].forEach((name) => $(name).removeAttribute("src"));
  $("scores").hidden = true;
  setStatus(`Predicting ${id} …`);
  const path = `api/images/${encodeURIComponent(id)}`;
  try {
    const imageResponse = await fetch(`${path}?kind=image`);
    if (!imageResponse.ok) throw new Error(`${path}: ${imageResponse.status}`);
    const image = await imageResponse.blob();
    if (mine !== selection) return;
    showBlob($("img-image"), image);
    $("img-true").src = `${path}?kind=color`;
    const form = new FormData();
    form.append("file", image, `${id}.png`);
    const [prediction, scores] = await Promise.all([
      fetch("api/predict?format=color", { method: "POST", body: form }),
      getJson(`${path}/scores`),
    ]);
    if (!prediction.ok) throw new Error(`api/predict: ${prediction.status} ${(await prediction.json()).detail}`);
    if (mine !== selection) return;
    showBlob($("img-pred"), await prediction.blob());
    const model = modelLabel(prediction.headers.get("x-model-name"), prediction.headers.get("x-model-version"));
    $("pred-caption").textContent = `Predicted mask (${model}, ${prediction.headers.get("x-latency-ms")} ms)`;
    showModel();
    showScores(scores);
    setStatus(`${id}: mean IoU ${formatScore(scores.scores.mean_iou)}`);
    await loadObjects(id, mine);
  } catch (error) {
    if (mine === selection) setStatus(String(error.message ?? error), true);
  }
}

// The explanation: a click on the predicted mask picks a point; "Explain" asks the API for LIME's
// weights of that point's region and shows its overlay (green: toward the prediction, red: away).
let point = null;

function pickPoint(event) {
  const img = $("img-pred");
  if (!img.naturalWidth) return;
  const box = img.getBoundingClientRect();
  point = {
    x: Math.floor(((event.clientX - box.left) / box.width) * img.naturalWidth),
    y: Math.floor(((event.clientY - box.top) / box.height) * img.naturalHeight),
  };
  $("explain").disabled = false;
  $("explain-caption").firstChild.textContent = `Point ${point.x}, ${point.y}: `;
}

async function explainPoint() {
  const id = decodeURIComponent(location.hash.slice(1));
  $("explain").disabled = true;
  setStatus(`Explaining ${id} at ${point.x}, ${point.y} …`);
  try {
    const answer = await getJson("api/explain", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image_id: id, ...point }),
    });
    $("img-explain").src = answer.overlay;
    setStatus(`${id}: ${answer.target.category} region of ${answer.target.region_pixels} pixels, ` +
      `${answer.superpixels} superpixels`);
  } catch (error) {
    setStatus(String(error.message ?? error), true);
  }
  $("explain").disabled = false;
}

// The objects view: each instance of the frame with its crop, true and predicted class; the
// classifier is optional, so the view stays hidden when the API serves none.
let objects = [];

function showObjects() {
  const errorsOnly = $("errors-only").checked;
  const shown = objects.filter((o) => !errorsOnly || o.true !== o.class);
  $("objects-table").tBodies[0].replaceChildren(...shown.map((o) => {
    const row = document.createElement("tr");
    row.dataset.instance = String(o.instance_id);
    row.classList.toggle("error", o.true !== o.class);
    row.innerHTML = `<td><img class="crop" alt="crop ${o.instance_id}" src="${o.crop}"></td>
      <td class="true">${o.true}</td><td class="predicted">${o.class}</td>
      <td class="num">${o.probability.toFixed(2)}</td>`;
    return row;
  }));
  const wrong = objects.filter((o) => o.true !== o.class).length;
  $("objects-count").textContent = `${objects.length} objects, ${wrong} misclassified`;
}

async function loadObjects(id, mine) {
  $("objects").hidden = true;
  const response = await fetch(`api/objects/${encodeURIComponent(id)}`);
  if (!response.ok || mine !== selection) return;
  objects = (await response.json()).objects;
  showObjects();
  $("objects").hidden = false;
}

function showIds(images) {
  const buttons = images.map((image) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = image.id;
    button.title = `${image.split} / ${image.city}`;
    button.addEventListener("click", () => select(image.id, button));
    item.append(button);
    return item;
  });
  $("ids").replaceChildren(...buttons);
  $("count").textContent = `${images.length} images`;
}

async function start() {
  try {
    const [list, categoryList] = await Promise.all([getJson("api/images"), getJson("api/categories")]);
    categories = categoryList;
    showLegend();
    showIds(list.images);
    $("filter").addEventListener("input", () => {
      const needle = $("filter").value.trim().toLowerCase();
      showIds(list.images.filter((image) => image.id.toLowerCase().includes(needle)));
    });
    $("errors-only").addEventListener("change", showObjects);
    $("img-pred").addEventListener("click", pickPoint);
    $("explain").addEventListener("click", explainPoint);
    if (list.count === 0) setStatus("The API serves no images: start it with --images DIR.", true);
    const wanted = decodeURIComponent(location.hash.slice(1));
    const match = [...document.querySelectorAll("#ids button")].find((b) => b.textContent === wanted);
    if (match) select(wanted, match);
  } catch (error) {
    setStatus(String(error.message ?? error), true);
  }
  showModel();
}

start();
