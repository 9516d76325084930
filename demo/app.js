// The demo page: loads the default model and sample image, computes the embedding in the
// browser, and turns clicks, boxes and hovers into masks. Everything stays on this origin.
import { SamPredictor } from '../web/sam.js';
import { maskToPNGBlob } from '../web/masks.js';
import { COLORS, drawMask, drawMasks, drawPrompts, drawThumb, maskStats } from './overlay.js';
import { acceptDropsAndPaste, classifyFiles, cocoAnnotation, cutoutPNG, decodeImage, download, safetensorsMeta } from './files.js';
import { createHistory } from './history.js';

const $ = (id) => document.getElementById(id);
const el = {
  stage: $('stage'), wrap: $('canvas-wrap'), image: $('image-layer'), mask: $('mask-layer'),
  prompt: $('prompt-layer'), busy: $('busy'), busyLabel: $('busy-label'), busyFill: $('busy-fill'),
  busyDetail: $('busy-detail'), status: $('status'), candidates: $('candidates'),
  candidatesEmpty: $('candidates-empty'), modelInfo: $('model-info'), dropHint: $('drop-hint'),
  needsModel: $('needs-model'), needsImage: $('needs-image'),
};

// Same-origin overrides for development: ?model=URL&image=URL (other origins are ignored).
const params = new URLSearchParams(location.search);
const sameOrigin = (u, fallback) => {
  try {
    const url = new URL(u ?? fallback, location.href);
    return url.origin === location.origin ? url.href : new URL(fallback, location.href).href;
  } catch {
    return new URL(fallback, location.href).href;
  }
};
const DEFAULT_MODEL = sameOrigin(params.get('model'), 'models/sam_demo.safetensors');
const DEFAULT_IMAGE = sameOrigin(params.get('image'), 'sample.png');
const MAX_DISPLAY = 1600; // longest side of the on-screen canvases

const S = {
  sam: null,
  modelName: '',
  image: null, // {data: ImageData (original size), width, height, name}
  ready: false, // an embedding matches the image
  history: createHistory(),
  mode: 1, // label of a plain click
  hover: null, // {x, y} in image pixels
  hoverResult: null,
  drag: null, // {x0, y0, x1, y1, id, moved, button, shift}
  view: 0, // bumped when the committed state changes; stale hover results are dropped
  // Everything mode (automatic mask generator): {masks, selected, running, controller} or null.
  everything: null,
};

// The generator's settings in the demo: the official defaults with a 16x16 grid (256 points;
// the official 32x32 takes 4x as long in the browser). The built-in demo model is tiny and its
// predicted IoUs stay below 0.5 (demo/models/README.md), so with it the IoU and stability
// filters are lowered; official checkpoints get the official thresholds.
const everythingOptions = () => (S.modelName === DEFAULT_MODEL.split('/').pop()
  ? { points_per_side: 16, pred_iou_thresh: 0.3, stability_score_thresh: 0.6 }
  : { points_per_side: 16 });

// ---------------------------------------------------------------------------------------------
// Status and progress

function setStatus(text, kind = '') {
  el.status.textContent = text;
  el.status.className = 'status ' + kind;
}

function setState(state) {
  document.body.dataset.state = state;
}

// encode: ViT blocks (+ neck), or MobileSAM's TinyViT stages (+ neck).
const STAGES = { download: 'Downloading', encode: 'Image encoder steps', load: 'Reading the weights',
  everything: 'Points decoded' };
// onProgress may report {stage, done, total}, {loaded, total}, a fraction or nothing useful.
function progressOf(p) {
  if (typeof p === 'number') return { done: p, total: 1 };
  if (!p || typeof p !== 'object') return {};
  const done = p.done ?? p.loaded ?? p.progress ?? p.current;
  const total = p.total ?? (p.progress !== undefined && p.progress <= 1 ? 1 : undefined);
  const stage = p.stage ?? p.phase;
  return { stage: STAGES[stage] ?? stage, done, total };
}

const fmtBytes = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.round(n / 1024)} kB`);

// Runs `work(onProgress)` with the progress overlay; shown at once (`eager`) or after 0.5 s.
async function withProgress(label, work, { eager = true, bytes = false } = {}) {
  let shown = false;
  const show = () => {
    shown = true;
    el.busyLabel.textContent = label;
    el.busy.hidden = false;
  };
  const timer = eager ? (show(), null) : setTimeout(show, 500);
  el.busyFill.parentElement.classList.add('indeterminate');
  el.busyFill.style.width = '';
  el.busyDetail.textContent = '';
  const onProgress = (p) => {
    const { stage, done, total } = progressOf(p);
    if (!shown) return;
    if (total > 0 && done >= 0) {
      el.busyFill.parentElement.classList.remove('indeterminate');
      el.busyFill.style.width = `${Math.min(100, (100 * done) / total).toFixed(1)}%`;
      const amount = bytes || total > 4096 ? `${fmtBytes(done)} / ${fmtBytes(total)}` : `${Math.round((100 * done) / total)}%`;
      el.busyDetail.textContent = stage ? `${stage} · ${amount}` : amount;
    } else if (stage) {
      el.busyDetail.textContent = stage;
    }
  };
  try {
    return await work(onProgress);
  } finally {
    clearTimeout(timer);
    el.busy.hidden = true;
  }
}

function fail(prefix, err) {
  console.error(err);
  setStatus(`${prefix}: ${err?.message ?? err}`, 'error');
}

// ---------------------------------------------------------------------------------------------
// Loading: model, image, embedding

function describeModel(info, name) {
  if (!info) return name;
  const c = info.config ?? info;
  const bits = [info.type ?? c.model_type, c.embed_dim && `width ${c.embed_dim}`, c.depth && `depth ${c.depth}`,
    c.img_size && `${c.img_size}px input`].filter(Boolean);
  return `${name}${bits.length ? ' — ' + bits.join(', ') : ''}`;
}

async function loadModel(source, name) {
  setState('busy');
  try {
    const sam = await withProgress(`Loading model ${name}`, (onProgress) =>
      SamPredictor.load(source, { onProgress }), { bytes: true });
    S.sam?.dispose?.();
    S.sam = sam;
    S.modelName = name;
    S.ready = false;
    el.modelInfo.textContent = describeModel(sam.modelInfo, name);
    el.needsModel.hidden = true;
    return true;
  } catch (err) {
    fail(`Could not load the model ${name}`, err);
    setState(S.sam ? 'ready' : 'needs-model');
    if (!S.sam) el.needsModel.hidden = false;
    return false;
  }
}

function showImage(data, name) {
  S.image = { data, width: data.width, height: data.height, name };
  const s = Math.min(1, MAX_DISPLAY / Math.max(data.width, data.height));
  const dw = Math.max(1, Math.round(data.width * s)), dh = Math.max(1, Math.round(data.height * s));
  for (const c of [el.image, el.mask]) {
    c.width = dw;
    c.height = dh;
  }
  const full = new OffscreenCanvas(data.width, data.height);
  full.getContext('2d').putImageData(data, 0, 0);
  const ctx = el.image.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(full, 0, 0, dw, dh);
  el.wrap.hidden = false;
  el.needsImage.hidden = true;
  fitCanvas();
  S.history.reset();
  S.ready = false;
  render();
}

async function encodeImage() {
  if (!S.sam || !S.image) return;
  exitEverything();
  setState('busy');
  S.ready = false;
  S.history.reset(); // results of another embedding are stale
  S.view++;
  render();
  try {
    const t0 = performance.now();
    await withProgress('Computing the image embedding', (onProgress) =>
      S.sam.setImage(S.image.data, { onProgress }));
    S.ready = true;
    setStatus(`Ready (embedding in ${((performance.now() - t0) / 1000).toFixed(1)} s) — click on an object.`);
    setState('ready');
  } catch (err) {
    fail('Could not compute the embedding', err);
    setState('error');
  }
}

async function loadEmbedding(file) {
  if (!S.sam) return setStatus('Load a model before an embedding.', 'warn');
  setState('busy');
  try {
    const meta = (await safetensorsMeta(file)) ?? {};
    const bytes = new Uint8Array(await file.arrayBuffer());
    await withProgress(`Loading embedding ${file.name}`, () => S.sam.setEmbedding(bytes), { eager: false });
    exitEverything();
    S.history.reset();
    S.ready = true;
    render();
    const [h, w] = String(meta.original_size ?? '').split(',').map(Number);
    if (S.image && h && w && (h !== S.image.height || w !== S.image.width)) {
      setStatus(`Embedding loaded, but it was made for a ${w}×${h} image and this one is ` +
        `${S.image.width}×${S.image.height}: open the matching image.`, 'warn');
    } else {
      setStatus(`Embedding ${file.name} loaded — click on an object.`);
    }
    setState('ready');
  } catch (err) {
    fail(`Could not use the embedding ${file.name}`, err);
    setState(S.ready ? 'ready' : 'error');
  }
}

const readFile = (file) => withProgress(`Reading ${file.name}`, () => file.arrayBuffer(), { eager: false })
  .then((b) => new Uint8Array(b));

// Sorts dropped / picked / pasted files: images, models (.pth, .safetensors) and embeddings.
async function openFiles(files) {
  const { image, model, embedding } = await classifyFiles(files);
  if (!image && !model && !embedding) return setStatus('Unsupported file: open an image, a model or an embedding.', 'warn');
  if (model && !(await loadModel(await readFile(model), model.name))) return;
  if (image) {
    const data = await withProgress(`Opening ${image.name}`, () => decodeImage(image), { eager: false })
      .catch((err) => fail(`Could not open ${image.name}`, err));
    if (!data) return;
    showImage(data, image.name);
  }
  if (embedding) await loadEmbedding(embedding);
  else if ((image || model) && S.image) await encodeImage();
  else if (model) setState('ready');
}

async function start() {
  setState('loading');
  const imagePromise = fetch(DEFAULT_IMAGE).then((r) => (r.ok ? r.blob() : null)).then((b) => b && decodeImage(b))
    .catch(() => null);
  let haveModel = false;
  try {
    haveModel = (await fetch(DEFAULT_MODEL, { method: 'HEAD' })).ok;
  } catch { /* offline or refused: ask for a model */ }
  const image = await imagePromise;
  if (image) showImage(image, DEFAULT_IMAGE.split('/').pop());
  else el.needsImage.hidden = false;
  if (!haveModel) {
    el.needsImage.hidden = true;
    el.needsModel.hidden = false;
    setStatus('No model yet: choose a SAM model file (see the box above).', 'warn');
    setState('needs-model');
    return;
  }
  if (!(await loadModel(DEFAULT_MODEL, DEFAULT_MODEL.split('/').pop()))) return;
  if (S.image) await encodeImage();
  else {
    setStatus('Model loaded — open an image.');
    setState('ready');
  }
}

// ---------------------------------------------------------------------------------------------
// Prompts and predictions

const current = () => S.history.current();

function lowResOf(result, k) {
  const lr = result?.lowResLogits;
  if (!lr) return undefined;
  if (Array.isArray(lr)) return lr[k];
  const size = result.lowResSize;
  const n = Array.isArray(size) ? size[0] * size[1] : (size || 256) * (size || 256);
  return lr.length >= (k + 1) * n ? lr.subarray(k * n, (k + 1) * n) : lr;
}

function buildRequest(prompts, prev) {
  const points = prompts.filter((p) => p.type === 'point').map((p) => [p.x, p.y, p.label]);
  const box = prompts.find((p) => p.type === 'box')?.box;
  const single = points.length === 1 && !box;
  const multimask = single || $('opt-multi').checked;
  const req = { points, multimask };
  if (box) req.box = box;
  // As the official notebook: refine with the previous best low-res mask when not ambiguous.
  if (!multimask && prev?.result && prev.prompts.length) req.maskInput = lowResOf(prev.result, prev.pick);
  return req;
}

const bestIndex = (masks) => masks.reduce((b, m, i) => (m.score > masks[b].score ? i : b), 0);

async function commit(prompts) {
  if (!S.ready) return;
  const prev = current();
  const entry = S.history.push(prompts);
  S.view++;
  S.hoverResult = null;
  render();
  await predictEntry(entry, prev);
}

async function predictEntry(entry, prev) {
  if (!entry.prompts.length) return;
  const view = S.view;
  try {
    const result = await withProgress('Predicting', () => S.sam.predict(buildRequest(entry.prompts, prev)), { eager: false });
    if (!result) return;
    entry.result = result;
    entry.pick = bestIndex(result.masks);
    if (S.view === view || current() === entry) {
      const n = result.masks.length;
      setStatus(`${n} mask${n > 1 ? 's' : ''} — ${entry.prompts.length} prompt${entry.prompts.length > 1 ? 's' : ''}.`);
    }
  } catch (err) {
    if (err?.name !== 'AbortError') fail('Prediction failed', err);
  } finally {
    if (current() === entry) render();
  }
}

let hoverPending = false;
function scheduleHover() {
  if (hoverPending) return;
  hoverPending = true;
  requestAnimationFrame(async () => {
    hoverPending = false;
    const h = S.hover;
    if (!h || !S.ready || S.everything || current().prompts.length || S.drag || !$('opt-hover').checked) return;
    const view = S.view;
    try {
      // Only the best candidate is drawn while hovering: skip the others' upsampling.
      const r = await S.sam.predict({ points: [[h.x, h.y, 1]], multimask: true }, { latest: true, output: 'best' });
      if (!r || view !== S.view || !S.hover || current().prompts.length) return;
      S.hoverResult = r;
      renderMask();
      document.body.dataset.previews = String(Number(document.body.dataset.previews || 0) + 1);
    } catch (err) {
      if (err?.name !== 'AbortError') console.warn('hover prediction failed', err);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Rendering

function render() {
  renderMask();
  renderPrompts();
  renderCandidates();
  const h = S.history;
  $('btn-undo').disabled = !h.canUndo();
  $('btn-redo').disabled = !h.canRedo();
  $('btn-clear').disabled = !current().prompts.length;
  const has = !!selectedMask();
  for (const id of ['btn-export-png', 'btn-export-cutout', 'btn-export-rle']) $(id).disabled = !has;
  const ev = S.everything;
  $('btn-everything').setAttribute('aria-pressed', String(!!ev));
  document.body.dataset.everything = ev ? (ev.running ? 'running' : String(ev.masks.length)) : '';
}

function selectedMask() {
  const ev = S.everything;
  if (ev) {
    const r = ev.masks[ev.selected];
    return r ? { ...r.segmentation, score: r.predicted_iou, stability: r.stability_score } : null;
  }
  const e = current();
  return e.result?.masks?.[e.pick] ?? null;
}

function renderMask() {
  const ctx = el.mask.getContext('2d');
  if (S.everything) {
    const ev = S.everything;
    return drawMasks(ctx, ev.masks.map((r) => ({ ...r.segmentation, area: r.area })), ev.selected);
  }
  const m = selectedMask();
  if (m) return drawMask(ctx, m.data, m.width, m.height, COLORS.mask);
  const hr = S.hoverResult;
  if (hr && S.hover && !current().prompts.length) {
    const hm = hr.masks[bestIndex(hr.masks)];
    return drawMask(ctx, hm.data, hm.width, hm.height, COLORS.hover, { fill: 0.35 });
  }
  drawMask(ctx, null);
}

function renderPrompts() {
  if (!S.image) return;
  const rect = el.prompt.getBoundingClientRect();
  const unit = rect.width ? el.prompt.width / rect.width : 1;
  const d = S.drag?.moved ? [S.drag.x0, S.drag.y0, S.drag.x1, S.drag.y1] : null;
  drawPrompts(el.prompt.getContext('2d'), current().prompts, { scale: el.prompt.width / S.image.width, unit, dragBox: d });
}

function renderCandidates() {
  const e = current();
  const sel = S.everything && selectedMask();
  const masks = S.everything ? (sel ? [sel] : []) : e.result?.masks ?? [];
  const picked = S.everything ? 0 : e.pick;
  el.candidates.replaceChildren();
  el.candidatesEmpty.hidden = masks.length > 0;
  masks.forEach((m, i) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.className = 'candidate' + (i === picked ? ' selected' : '');
    b.setAttribute('aria-pressed', String(i === picked));
    b.dataset.index = String(i);
    b.title = `Use candidate ${i + 1} (key ${i + 1})`;
    const thumb = document.createElement('span');
    thumb.className = 'thumb';
    thumb.innerHTML = `<canvas></canvas><span class="badge">${i + 1}</span>`;
    drawThumb(thumb.firstChild, el.image, m.data, m.width, m.height);
    const area = maskStats(m.data, m.width, m.height).area;
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.innerHTML = `<span class="score">score ${m.score.toFixed(3)}</span><span class="sub">` +
      `<span class="stab">stability ${(m.stability ?? NaN).toFixed(2)} · </span>` +
      `${((100 * area) / (m.width * m.height)).toFixed(1)}% of image</span>`;
    b.append(thumb, meta);
    b.addEventListener('click', () => pick(i));
    li.append(b);
    el.candidates.append(li);
  });
}

function pick(i) {
  const e = current();
  if (!e.result || i < 0 || i >= e.result.masks.length) return;
  e.pick = i;
  render();
}

// ---------------------------------------------------------------------------------------------
// Pointer input (mouse, pen, touch)

function toImage(ev) {
  const r = el.prompt.getBoundingClientRect();
  const x = ((ev.clientX - r.left) / r.width) * S.image.width;
  const y = ((ev.clientY - r.top) / r.height) * S.image.height;
  return { x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10 };
}

el.prompt.addEventListener('contextmenu', (ev) => ev.preventDefault());
el.prompt.addEventListener('pointerdown', (ev) => {
  if (!S.image || (ev.pointerType === 'mouse' && ev.button !== 0 && ev.button !== 2)) return;
  ev.preventDefault();
  el.prompt.setPointerCapture(ev.pointerId);
  const p = toImage(ev);
  if (S.hoverResult) {
    S.hoverResult = null;
    renderMask();
  }
  S.drag = { x0: p.x, y0: p.y, x1: p.x, y1: p.y, id: ev.pointerId, moved: false, button: ev.button, shift: ev.shiftKey,
    cx: ev.clientX, cy: ev.clientY };
});
el.prompt.addEventListener('pointermove', (ev) => {
  if (!S.image) return;
  const p = toImage(ev);
  if (S.drag && S.drag.id === ev.pointerId) {
    S.drag.x1 = p.x;
    S.drag.y1 = p.y;
    if (Math.hypot(ev.clientX - S.drag.cx, ev.clientY - S.drag.cy) > 6) S.drag.moved = true;
    if (S.drag.moved) renderPrompts();
    return;
  }
  if (ev.pointerType === 'mouse') {
    S.hover = p;
    scheduleHover();
  }
});
el.prompt.addEventListener('pointerup', (ev) => {
  const d = S.drag;
  if (!d || d.id !== ev.pointerId) return;
  S.drag = null;
  if (!S.ready) return renderPrompts();
  if (S.everything) return selectEverything(d.x0, d.y0);
  const clamp = (v, hi) => Math.max(0, Math.min(hi, v));
  if (d.moved) {
    const W = S.image.width, H = S.image.height;
    const box = [clamp(Math.min(d.x0, d.x1), W), clamp(Math.min(d.y0, d.y1), H),
      clamp(Math.max(d.x0, d.x1), W), clamp(Math.max(d.y0, d.y1), H)];
    if (box[2] - box[0] < 2 || box[3] - box[1] < 2) return renderPrompts();
    // A box replaces the previous one (SAM takes one box per prediction).
    return commit([...current().prompts.filter((q) => q.type !== 'box'), { type: 'box', box }]);
  }
  const label = d.button === 2 || d.shift || ev.shiftKey || S.mode === 0 ? 0 : 1;
  commit([...current().prompts, { type: 'point', x: d.x0, y: d.y0, label }]);
});
el.prompt.addEventListener('pointercancel', () => {
  S.drag = null;
  renderPrompts();
});
el.prompt.addEventListener('pointerleave', () => {
  S.hover = null;
  if (S.hoverResult) {
    S.hoverResult = null;
    renderMask();
  }
});

// ---------------------------------------------------------------------------------------------
// Everything mode: the automatic mask generator over the whole image (SamPredictor.everything),
// masks drawn as they stream in, cancellable; a click selects the smallest mask under it.

async function toggleEverything() {
  const ev = S.everything;
  if (ev?.running) return ev.controller.abort();
  if (ev) {
    exitEverything();
    setStatus('Everything mode off — click on an object.');
    return render();
  }
  if (!S.ready) return;
  const run = { masks: [], selected: -1, running: true, controller: new AbortController() };
  S.everything = run;
  S.hoverResult = null;
  S.view++;
  render();
  const cancel = $('busy-cancel');
  cancel.hidden = false;
  cancel.onclick = () => run.controller.abort();
  const t0 = performance.now();
  try {
    const masks = await withProgress('Segmenting everything', (onProgress) =>
      S.sam.everything(everythingOptions(), {
        signal: run.controller.signal,
        onProgress: (p) => {
          onProgress(p);
          if (S.everything !== run) return;
          run.masks.push(...p.masks);  // streamed candidates (before NMS)
          renderMask();
        },
      }));
    if (S.everything !== run) return;
    run.masks = masks;
    run.running = false;
    setStatus(`${masks.length} mask${masks.length === 1 ? '' : 's'} in ${((performance.now() - t0) / 1000).toFixed(1)} s ` +
      '— click one to select it; Esc or ▦ Everything leaves this mode.');
  } catch (err) {
    if (S.everything === run) S.everything = null;
    if (err?.name === 'AbortError') setStatus('Segment everything cancelled.');
    else fail('Segment everything failed', err);
  } finally {
    cancel.hidden = true;
    cancel.onclick = null;
    render();
  }
}

function exitEverything() {
  const ev = S.everything;
  if (!ev) return;
  if (ev.running) ev.controller.abort();
  S.everything = null;
  S.view++;
}

// The smallest mask containing the pixel (x, y), as in the drawing where smaller masks are on top.
function selectEverything(x, y) {
  const ev = S.everything;
  if (ev.running) return;
  const { width, height } = S.image;
  const px = Math.min(width - 1, Math.max(0, Math.floor(x))), py = Math.min(height - 1, Math.max(0, Math.floor(y)));
  let best = -1;
  ev.masks.forEach((r, i) => {
    if (r.segmentation.data[py * width + px] && (best < 0 || r.area < ev.masks[best].area)) best = i;
  });
  ev.selected = best;
  const r = ev.masks[best];
  setStatus(r ? `Mask ${best + 1} of ${ev.masks.length}: ${r.area} px, predicted IoU ${r.predicted_iou.toFixed(3)}, ` +
    `stability ${(r.stability_score ?? NaN).toFixed(3)}.` : 'No mask there.');
  render();
}

$('btn-everything').addEventListener('click', toggleEverything);

// ---------------------------------------------------------------------------------------------
// Undo / redo / clear, mode, keyboard

function undo() {
  if (!S.history.undo()) return;
  afterMove();
}
function redo() {
  if (!S.history.redo()) return;
  afterMove();
}
function clearPrompts() {
  if (S.everything) {
    exitEverything();
    setStatus('Cleared — click on an object.');
    return render();
  }
  S.drag = null;
  if (!current().prompts.length) return render();
  S.history.push([]);
  afterMove();
}
function afterMove() {
  S.view++;
  S.hoverResult = null;
  const e = current();
  render();
  if (e.prompts.length && !e.result) predictEntry(e, S.history.previous());
  setStatus(e.prompts.length ? `${e.prompts.length} prompt${e.prompts.length > 1 ? 's' : ''}.` : 'Cleared — click on an object.');
}
function setMode(label) {
  S.mode = label;
  $('mode-fg').classList.toggle('on', label === 1);
  $('mode-bg').classList.toggle('on', label === 0);
  $('mode-fg').setAttribute('aria-checked', String(label === 1));
  $('mode-bg').setAttribute('aria-checked', String(label === 0));
}

$('btn-undo').addEventListener('click', undo);
$('btn-redo').addEventListener('click', redo);
$('btn-clear').addEventListener('click', clearPrompts);
$('mode-fg').addEventListener('click', () => setMode(1));
$('mode-bg').addEventListener('click', () => setMode(0));
$('opt-multi').addEventListener('change', () => {
  const e = current();
  if (e.prompts.length) {
    e.result = null;
    predictEntry(e, S.history.previous());
  }
});

document.addEventListener('keydown', (ev) => {
  if (ev.target instanceof HTMLInputElement && ev.target.type !== 'checkbox') return;
  const mod = ev.ctrlKey || ev.metaKey;
  const key = ev.key.toLowerCase();
  if (mod && key === 'z') {
    ev.preventDefault();
    ev.shiftKey ? redo() : undo();
  } else if (mod && key === 'y') {
    ev.preventDefault();
    redo();
  } else if (ev.key === 'Escape') {
    clearPrompts();
  } else if (!mod && ['1', '2', '3'].includes(ev.key)) {
    pick(Number(ev.key) - 1);
  }
});

// ---------------------------------------------------------------------------------------------
// Files: buttons, drag and drop, paste; export

const pickFile = (input, handler) => {
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    if (files.length) handler(files);
  });
};
$('btn-open-image').addEventListener('click', () => $('file-image').click());
$('btn-choose-image').addEventListener('click', () => $('file-image').click());
$('btn-open-model').addEventListener('click', () => $('file-model').click());
$('btn-choose-model').addEventListener('click', () => $('file-model').click());
$('btn-open-embedding').addEventListener('click', () => $('file-embedding').click());
pickFile($('file-image'), openFiles);
pickFile($('file-model'), openFiles);
pickFile($('file-embedding'), ([f]) => loadEmbedding(f));
acceptDropsAndPaste(openFiles, el.dropHint);

const stem = () => (S.image?.name ?? 'image').replace(/\.[^.]+$/, '') || 'image';

$('btn-export-png').addEventListener('click', async () => {
  const m = selectedMask();
  if (m) download(await maskToPNGBlob(m.data, m.width, m.height), `${stem()}-mask.png`);
});
$('btn-export-cutout').addEventListener('click', async () => {
  const m = selectedMask();
  if (m && S.image) download(await cutoutPNG(S.image.data, m.data), `${stem()}-cutout.png`);
});
$('btn-export-rle').addEventListener('click', () => {
  const m = selectedMask();
  const ev = S.everything, r = ev?.masks[ev.selected];
  const prompts = r ? [{ type: 'point', x: r.point_coords[0][0], y: r.point_coords[0][1], label: 1 }] : current().prompts;
  if (m) download(cocoAnnotation(m, prompts, S.image?.name, S.modelName), `${stem()}-mask.json`);
});

// Scales the canvases to fill the stage (desktop) or the width (phones), keeping the aspect.
const phone = matchMedia('(max-width: 820px)');
function fitCanvas() {
  if (!S.image) return;
  const { width: w, height: h } = S.image;
  const cs = getComputedStyle(el.stage);
  const padX = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
  const padY = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
  const aw = el.stage.clientWidth - padX;
  if (phone.matches) {
    const s = Math.min(aw / w, (0.62 * innerHeight) / h);
    el.stage.style.height = `${Math.round(h * s + padY)}px`;
    Object.assign(el.wrap.style, { width: `${w * s}px`, height: `${h * s}px` });
  } else {
    el.stage.style.height = '';
    const s = Math.min(aw / w, (el.stage.clientHeight - padY) / h);
    Object.assign(el.wrap.style, { width: `${w * s}px`, height: `${h * s}px` });
  }
  // The prompt layer follows the screen's pixels, so that markers stay crisp.
  const dpr = devicePixelRatio || 1;
  el.prompt.width = Math.max(1, Math.round(parseFloat(el.wrap.style.width) * dpr));
  el.prompt.height = Math.max(1, Math.round(parseFloat(el.wrap.style.height) * dpr));
  renderPrompts();
}
new ResizeObserver(() => fitCanvas()).observe(el.stage);
render();
start().catch((err) => {
  fail('The demo could not start', err);
  setState('error');
});
