// sam.js: Segment Anything in the browser and Node 20, a thin layer over the
// C core compiled to WebAssembly (build/wasm/, see wasm/sam_wasm.c).
//
//   import { SamPredictor } from './web/sam.js';
//   const sam = await SamPredictor.load('sam_vit_b_01ec64.pth', { onProgress });
//   await sam.setImage(imageBitmap, { onProgress });   // or setEmbedding(bytes)
//   const { masks, lowResLogits } = await sam.predict({ points: [[500, 375, 1]] });
//   sam.dispose();
//
// In browsers the work runs in a module Web Worker (web/worker.js); in Node
// (or with useWorker: false) the same engine runs in-process. Both speak the
// message protocol described in web/engine.js / web/worker.js. Calls are
// served one at a time, in order. DOM-free apart from the optional drawing of
// ImageBitmap / <img> / canvas sources, which needs a 2D canvas.
import { IdbBytes, LruBytes, pixelKey } from './cache.js';
import { Engine } from './engine.js';

const isNode = typeof process !== 'undefined' && !!(process.versions && process.versions.node);
const DEFAULT_CACHE_BYTES = 256 * 1024 * 1024;

function abortError(message) {
  if (typeof DOMException !== 'undefined') return new DOMException(message, 'AbortError');
  const e = new Error(message);
  e.name = 'AbortError';
  return e;
}

// ---------------------------------------------------------------------------
// Transports: call(msg, onProgress, transfer) -> Promise<result>

class InProcessTransport {
  constructor() { this.engine = new Engine(); }
  // Runs on a later task so that calls made in the same tick queue up first
  // (this is what lets latest-wins drop superseded requests).
  call(msg, onProgress) {
    return new Promise((resolve) => setTimeout(resolve, 0)).then(() => this.engine.handle(msg, onProgress));
  }
  cancel(token) { this.engine.cancel(token); }
  terminate() { this.engine.dispose(); }
}

class WorkerTransport {
  constructor(url) {
    this.worker = new Worker(url, { type: 'module' });
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      if (data.progress) { if (p.onProgress) p.onProgress(data.progress); return; }
      this.pending.delete(data.id);
      if (data.ok) p.resolve(data.result);
      else p.reject(Object.assign(new Error(data.error.message), { name: data.error.name }));
    };
    this.worker.onerror = (event) => {
      const err = new Error(`SAM worker failed: ${event.message || 'could not start web/worker.js'}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }
  call(msg, onProgress, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }
  cancel(token) { this.worker.postMessage({ op: 'cancel', token }); }
  terminate() {
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(abortError('SamPredictor disposed'));
    this.pending.clear();
  }
}

// ---------------------------------------------------------------------------
// Inputs

// URL string (or, in Node, a file path), ArrayBuffer or typed array ->
// {bytes: Uint8Array, owned: true when we made the buffer (transferable)}.
async function readSource(source, onProgress) {
  if (source instanceof ArrayBuffer) return { bytes: new Uint8Array(source), owned: false };
  if (ArrayBuffer.isView(source)) {
    return { bytes: new Uint8Array(source.buffer, source.byteOffset, source.byteLength), owned: false };
  }
  if (typeof source !== 'string' && !(source instanceof URL)) {
    throw new Error('model source must be a URL string, an ArrayBuffer or a Uint8Array');
  }
  const text = String(source);
  if (isNode && (text.startsWith('file:') || !/^[a-z][a-z0-9+.-]*:/i.test(text))) {
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    const buf = await readFile(text.startsWith('file:') ? fileURLToPath(text) : text);
    if (onProgress) onProgress({ stage: 'download', done: buf.length, total: buf.length });
    return { bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), owned: true };
  }
  const base = typeof location !== 'undefined' ? location.href : undefined;
  const res = await fetch(new URL(text, base));
  if (!res.ok) throw new Error(`cannot fetch ${text}: HTTP ${res.status}`);
  const total = Number(res.headers.get('content-length')) || 0;
  if (!res.body || !onProgress) return { bytes: new Uint8Array(await res.arrayBuffer()), owned: true };
  const chunks = [];
  let done = 0;
  for (const reader = res.body.getReader(); ;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    chunks.push(value);
    done += value.length;
    onProgress({ stage: 'download', done, total });
  }
  const bytes = new Uint8Array(done);
  let at = 0;
  for (const c of chunks) { bytes.set(c, at); at += c.length; }
  return { bytes, owned: true };
}

// wasmUrl option -> absolute URL string (relative to the page; in Node a
// plain path is a file path), or undefined for the default next to web/.
async function resolveWasmUrl(url) {
  if (url == null) return undefined;
  const text = String(url);
  if (isNode && !/^[a-z][a-z0-9+.-]*:/i.test(text)) {
    const { pathToFileURL } = await import('node:url');
    return pathToFileURL(text).href;
  }
  return new URL(text, typeof location !== 'undefined' ? location.href : import.meta.url).href;
}

// Image -> {rgb: Uint8Array (h*w*3), width, height}. {data, width, height}
// (ImageData included) with 4 (RGBA, alpha ignored), 3 (RGB) or 1 (grey)
// channels; ImageBitmap, <img>, <canvas>, OffscreenCanvas are drawn first.
async function toRGB(image) {
  if (!image) throw new Error('setImage: no image given');
  let { data, width, height } = image;
  if (!data) {
    if (typeof image.decode === 'function' && image.complete === false) await image.decode();
    width = image.naturalWidth || image.videoWidth || image.width;
    height = image.naturalHeight || image.videoHeight || image.height;
    if (!(width > 0 && height > 0)) throw new Error('setImage: the image has no pixels (not loaded?)');
    const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(width, height)
      : Object.assign(document.createElement('canvas'), { width, height });
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(image, 0, 0);
    data = ctx.getImageData(0, 0, width, height).data;
  }
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`setImage: width and height must be positive integers, got ${width}x${height}`);
  }
  const n = width * height;
  const channels = data.length / n;
  if (channels === 3) return { rgb: new Uint8Array(data), width, height };
  if (channels !== 4 && channels !== 1) {
    throw new Error(`setImage: ${data.length} values for ${width}x${height}; expected RGBA (${4 * n}), RGB (${3 * n}) or grey (${n})`);
  }
  const rgb = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const s = channels * i;
    rgb[3 * i] = data[s];
    rgb[3 * i + 1] = data[channels === 4 ? s + 1 : s];
    rgb[3 * i + 2] = data[channels === 4 ? s + 2 : s];
  }
  return { rgb, width, height };
}

// SamOutput in src/sam.h.
const OUTPUTS = { all: 0, best: 1, lowres: 2 };

// SamAutomaticMaskGenerator's defaults; EVERYTHING_NUMBERS is the order
// samw_amg_start (wasm/sam_wasm.c) reads them in.
const EVERYTHING_DEFAULTS = {
  points_per_side: 32, points_per_batch: 64, pred_iou_thresh: 0.88, stability_score_thresh: 0.95,
  stability_score_offset: 1.0, box_nms_thresh: 0.7, crop_n_layers: 0, crop_nms_thresh: 0.7,
  crop_overlap_ratio: 512 / 1500, crop_n_points_downscale_factor: 1, min_mask_region_area: 0,
  output_mode: 'binary_mask',
};
const EVERYTHING_NUMBERS = ['points_per_side', 'points_per_batch', 'pred_iou_thresh', 'stability_score_thresh',
  'stability_score_offset', 'box_nms_thresh', 'crop_n_layers', 'crop_nms_thresh', 'crop_overlap_ratio',
  'crop_n_points_downscale_factor', 'min_mask_region_area'];
let everythingRuns = 0;
const EVERYTHING_INTEGERS = new Set(['points_per_side', 'points_per_batch', 'crop_n_layers',
  'crop_n_points_downscale_factor', 'min_mask_region_area']);

// Checks the prompt's shape and turns it into the engine's typed arrays.
// Values (NaN, label, emptiness) are checked again by the C core.
function encodePrompt(prompt, lowRes) {
  if (!prompt || typeof prompt !== 'object') throw new Error('predict: prompt must be an object {points, box, maskInput, multimask}');
  const points = prompt.points || [];
  if (!Array.isArray(points)) throw new Error('predict: points must be an array of [x, y, label]');
  const xy = new Float32Array(2 * points.length), labels = new Int32Array(points.length);
  points.forEach((p, i) => {
    if (!Array.isArray(p) || p.length !== 3) throw new Error(`predict: point ${i} must be [x, y, label]`);
    const [x, y, label] = p.map(Number);
    if (label !== 0 && label !== 1) {
      throw new Error(`predict: point ${i} has label ${p[2]}; labels are 1 (foreground) or 0 (background)`);
    }
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      throw new Error(`predict: point ${i} has a non-finite coordinate (${p[0]}, ${p[1]})`);
    }
    xy[2 * i] = x; xy[2 * i + 1] = y; labels[i] = label;
  });
  let box = null;
  if (prompt.box != null) {
    if (prompt.box.length !== 4) throw new Error('predict: box must be [x0, y0, x1, y1]');
    box = Float32Array.from(prompt.box, Number);
  }
  let maskInput = null;
  if (prompt.maskInput != null) {
    if (!(prompt.maskInput instanceof Float32Array) || prompt.maskInput.length !== lowRes * lowRes) {
      throw new Error(`predict: maskInput must be a Float32Array of ${lowRes}x${lowRes} low-res logits`);
    }
    maskInput = prompt.maskInput.slice();
  }
  const multimask = prompt.multimask ?? (points.length === 1 && !box && !maskInput);
  return { points: xy, labels, box, maskInput, multimask: !!multimask };
}

// ---------------------------------------------------------------------------

export class SamPredictor {
  // Use SamPredictor.load.
  constructor(options = {}) {
    const useWorker = options.useWorker ?? (!isNode && typeof Worker !== 'undefined');
    if (useWorker && typeof Worker === 'undefined') {
      throw new Error('useWorker: this environment has no Web Worker (Node runs the engine in-process)');
    }
    this._transport = useWorker
      ? new WorkerTransport(options.workerUrl || new URL('./worker.js', import.meta.url))
      : new InProcessTransport();
    this._queue = [];        // requests not started yet
    this._busy = false;
    this._disposed = false;
    const cache = options.cache ?? 'memory';
    this._mem = cache === 'none' ? null : new LruBytes(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this._idb = cache === 'indexeddb' && IdbBytes.available() ? new IdbBytes() : null;
    this.modelInfo = null;   // {type, id, config}
    this.imageSize = null;   // {width, height} of the current image
    this.gemm = null;        // active WASM GEMM variant ("wasmsimd")
  }

  // source: URL string (a file path too, in Node), ArrayBuffer or Uint8Array
  // of a .safetensors or an official .pth. Options:
  //   onProgress({stage: 'download' (bytes) | 'load' (0, then 1), done, total})
  //   wasmUrl     URL of sam_wasm.wasm (sam_wasm.mjs sits next to it)
  //   useWorker   default: true in browsers, false in Node
  //   workerUrl   default: web/worker.js next to this file
  //   cache       'memory' (default) | 'indexeddb' | 'none'
  //   cacheBytes  cap of the memory cache, default 256 MiB
  static async load(source, options = {}) {
    const sam = new SamPredictor(options);
    try {
      const init = await sam._submit({ op: 'init', wasmUrl: await resolveWasmUrl(options.wasmUrl) });
      sam.gemm = init.gemm;
      const { onProgress } = options;
      const { bytes, owned } = await readSource(source, onProgress);
      if (onProgress) onProgress({ stage: 'load', done: 0, total: 1 });
      const info = await sam._submit({ op: 'load', bytes }, { transfer: owned ? [bytes.buffer] : [] });
      if (onProgress) onProgress({ stage: 'load', done: 1, total: 1 });
      sam.modelInfo = { type: info.type, id: info.id, config: info.config };
      return sam;
    } catch (e) {
      sam.dispose();
      throw e;
    }
  }

  // Converts a checkpoint to safetensors bytes in WASM (as `sam convert`).
  static async convert(source, { dtype = 'f32', wasmUrl, useWorker } = {}) {
    const sam = new SamPredictor({ useWorker, cache: 'none' });
    try {
      await sam._submit({ op: 'init', wasmUrl: await resolveWasmUrl(wasmUrl) });
      const { bytes, owned } = await readSource(source);
      const r = await sam._submit({ op: 'convert', bytes, dtype }, { transfer: owned ? [bytes.buffer] : [] });
      return r.bytes;
    } finally {
      sam.dispose();
    }
  }

  // An embedding file written by `sam encode` (or getEmbedding); one made
  // by another model is refused with the C core's message.
  async setEmbedding(source) {
    const { bytes, owned } = await readSource(source);
    const r = await this._submit({ op: 'setEmbedding', bytes }, { transfer: owned ? [bytes.buffer] : [] });
    this._rgb = null;
    this.imageSize = { width: r.width, height: r.height };
    return this.imageSize;
  }

  // Encodes the image (ViT encoder in WASM; progress {stage: 'encode', done,
  // total} per block) unless its embedding is cached. Resolves to {width,
  // height, cached: false | 'memory' | 'indexeddb'}.
  async setImage(image, { onProgress } = {}) {
    const { rgb, width, height } = await toRGB(image);
    const pixels = rgb.slice();  // kept for everything() with crop layers (crops are encoded from pixels)
    const key = this._mem || this._idb ? pixelKey(rgb, width, height, this.modelInfo.id) : null;
    let emb = this._mem && this._mem.get(key), cached = emb ? 'memory' : false;
    if (!emb && this._idb) {
      emb = await this._idb.get(key);
      if (emb) { cached = 'indexeddb'; if (this._mem) this._mem.set(key, emb); }
    }
    let r;
    if (emb) {
      r = await this._submit({ op: 'setEmbedding', bytes: emb });
    } else {
      r = await this._submit({ op: 'encode', rgb, width, height, keepEmbedding: !!key },
        { onProgress, transfer: [rgb.buffer] });
      if (r.embedding) {
        if (this._mem) this._mem.set(key, r.embedding);
        if (this._idb) await this._idb.set(key, r.embedding);
      }
    }
    this.imageSize = { width: r.width, height: r.height };
    this._rgb = pixels;
    return { ...this.imageSize, cached };
  }

  // The current embedding as an embedding file (dtype 'f32' or 'f16').
  async getEmbedding({ dtype = 'f32' } = {}) {
    return (await this._submit({ op: 'getEmbedding', dtype })).bytes;
  }

  // prompt: {points: [[x, y, label], ...], box: [x0, y0, x1, y1], maskInput:
  // Float32Array (4G)^2, multimask}, in original image pixels. multimask
  // defaults to true for exactly one point and nothing else (as the CLI).
  // {latest: true}: latest-wins for hover; a queued latest request still
  // waiting when a newer one arrives rejects with an 'AbortError'.
  // {output}: which candidates come back at the original size: 'all'
  // (default), 'best' (the highest predicted IoU only) or 'lowres' (none:
  // the cheapest, e.g. while following the mouse).
  // Resolves to {masks: [{data, width, height, score, stability, index}],
  // scores: Float32Array (K) of every candidate, lowResLogits: Float32Array
  // (K, lowResSize, lowResSize), lowResSize, stageMs}; index is the
  // candidate; stageMs the decoder's time per stage {prompt, transformer,
  // upscale, postprocess} in ms.
  async predict(prompt, { latest = false, output = 'all' } = {}) {
    if (!this.modelInfo) throw new Error('predict: no model loaded');
    const outputCode = OUTPUTS[output];
    if (outputCode === undefined) {
      throw new Error(`predict: output must be one of ${Object.keys(OUTPUTS).join(', ')}, not '${output}'`);
    }
    const msg = { op: 'predict', ...encodePrompt(prompt, this.modelInfo.config.low_res), output: outputCode };
    const r = await this._submit(msg, { latest });
    const n = r.width * r.height;
    // Views into the one buffer the engine returned (no copy per mask).
    const masks = r.maskIndex.map((k, j) => ({
      data: r.masks.subarray(j * n, (j + 1) * n), width: r.width, height: r.height,
      score: r.scores[k], stability: r.stability[k], index: k,
    }));
    return { masks, scores: r.scores, lowResLogits: r.logits, lowResSize: r.lowRes, stageMs: r.stageMs };
  }

  // "Segment everything": the automatic mask generator with the official
  // SamAutomaticMaskGenerator's options and defaults (snake_case as
  // official, or camelCase): points_per_side 32, points_per_batch 64,
  // pred_iou_thresh 0.88, stability_score_thresh 0.95,
  // stability_score_offset 1, box_nms_thresh 0.7, crop_n_layers 0,
  // crop_nms_thresh 0.7, crop_overlap_ratio 512/1500,
  // crop_n_points_downscale_factor 1, min_mask_region_area 0, output_mode
  // 'binary_mask' | 'uncompressed_rle' | 'coco_rle'. Runs on the current
  // image (crop layers need setImage: each crop is encoded from the pixels).
  // onProgress({stage: 'everything', done, total, masks}) after each batch of
  // points with that batch's masks (before NMS, so some disappear from the
  // result); signal: an AbortSignal that stops the run between batches
  // (rejects with 'AbortError'). Resolves to the records, in the official
  // order: [{segmentation, area, bbox: [x, y, w, h], predicted_iou,
  // point_coords: [[x, y]], stability_score, crop_box: [x, y, w, h]}];
  // segmentation is {data: Uint8Array (h*w, 0/1), width, height} for
  // binary_mask, {size: [h, w], counts} for the RLEs.
  async everything(options = {}, { onProgress = null, signal = null } = {}) {
    if (!this.modelInfo) throw new Error('everything: no model loaded');
    if (!this.imageSize) throw new Error('everything: no image set: call setImage or setEmbedding first');
    const o = { ...EVERYTHING_DEFAULTS };
    for (const [key, value] of Object.entries(options)) {
      const name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      if (!(name in o)) throw new Error(`everything: unknown option '${key}'`);
      o[name] = value;
    }
    const numbers = EVERYTHING_NUMBERS.map((name) => {
      const v = Number(o[name]);
      if (!Number.isFinite(v)) throw new Error(`everything: ${name} must be a finite number, got ${o[name]}`);
      if (EVERYTHING_INTEGERS.has(name) && !Number.isInteger(v)) throw new Error(`everything: ${name} must be an integer, got ${o[name]}`);
      return v;
    });
    if (o.crop_n_layers > 0 && !this._rgb) {
      throw new Error('everything: crop_n_layers needs the image pixels: call setImage (an embedding covers only the whole image)');
    }
    if (signal && signal.aborted) throw abortError('everything aborted');
    const rgb = o.crop_n_layers > 0 ? this._rgb.slice() : null;
    // token: a late cancel (sent as this run ends) must not stop a later run.
    const msg = { op: 'everything', options: numbers, rgb, outputMode: o.output_mode, token: ++everythingRuns };
    let started = false;
    const progress = (p) => { started = true; if (onProgress) onProgress(p); };
    const onAbort = () => {
      // Queued: drop it; running: cancel between batches.
      const i = this._queue.findIndex((item) => item.msg === msg);
      if (i >= 0) this._queue.splice(i, 1)[0].reject(abortError('everything aborted'));
      else this._transport.cancel(msg.token);
    };
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await this._submit(msg, { onProgress: progress, transfer: rgb ? [rgb.buffer] : [] });
      return r.masks;
    } catch (e) {
      if (e.name === 'AbortError' || (signal && signal.aborted)) throw abortError(`everything aborted${started ? '' : ' before it started'}`);
      throw e;
    } finally {
      if (signal) signal.removeEventListener('abort', onAbort);
    }
  }

  // Memory held: {heapInUse, memoryBytes} of the WASM module (see
  // Engine.memory) and cacheBytes, the memory cache's embeddings (at most
  // its cacheBytes cap).
  async memoryUsage() {
    const r = await this._submit({ op: 'memory' });
    return { heapInUse: r.heapInUse, memoryBytes: r.memoryBytes, cacheBytes: this._mem ? this._mem.bytes : 0 };
  }

  // Frees the model and stops the worker; pending calls reject.
  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    for (const item of this._queue.splice(0)) item.reject(abortError('SamPredictor disposed'));
    this._transport.terminate();
    if (this._mem) this._mem.clear();
  }

  // Serial queue. latest: earlier latest requests still queued are dropped.
  _submit(msg, { onProgress = null, transfer = [], latest = false } = {}) {
    if (this._disposed) return Promise.reject(new Error('SamPredictor is disposed'));
    return new Promise((resolve, reject) => {
      if (latest) {
        this._queue = this._queue.filter((item) => {
          if (!item.latest) return true;
          item.reject(abortError('superseded by a newer predict({latest: true}) call'));
          return false;
        });
      }
      this._queue.push({ msg, onProgress, transfer, latest, resolve, reject });
      this._pump();
    });
  }

  _pump() {
    if (this._busy || this._disposed || !this._queue.length) return;
    const item = this._queue.shift();
    this._busy = true;
    this._transport.call(item.msg, item.onProgress, item.transfer)
      .then(item.resolve, item.reject)
      .finally(() => { this._busy = false; this._pump(); });
  }
}
