// engine.js: the WASM side of the message protocol, shared by web/worker.js
// (browsers: a Web Worker) and by web/sam.js directly (Node: in-process).
// It owns one Emscripten instance of build/wasm/sam_wasm.{mjs,wasm}, one
// model and one current image state, and answers requests
//
//   {op, ...args}  ->  result object (or throws Error with the C message)
//
// ops: init {wasmUrl} | load {bytes} | convert {bytes, dtype} |
//      setEmbedding {bytes} | encode {rgb, width, height, keepEmbedding} |
//      getEmbedding {dtype} | predict {points, labels, box, maskInput, multimask, output} |
//      everything {options: Float64Array(11), rgb, outputMode, token} | dispose.
// cancel(token) (not an op: the worker calls it out of turn) stops the
// running everything with that token between two batches.
// Buffers in results are fresh (copied out of the WASM heap), so the caller
// may transfer them. No DOM; works in Window, Worker and Node 20.

const DEFAULT_WASM_URL = new URL('../build/wasm/sam_wasm.wasm', import.meta.url).href;
const isNode = typeof process !== 'undefined' && !!(process.versions && process.versions.node);

async function readUrl(url) {
  const u = new URL(url);
  if (isNode && u.protocol === 'file:') {
    const { readFile } = await import('node:fs/promises');
    const { fileURLToPath } = await import('node:url');
    const buf = await readFile(fileURLToPath(u));
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  const res = await fetch(u.href);
  if (!res.ok) throw new Error(`cannot fetch ${u.href}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

export class Engine {
  constructor() {
    this.M = null;       // the Emscripten module
    this.model = 0;      // SamModel*
    this.image = 0;      // SamImage*
    this.progress = null;
  }

  // Compiles and instantiates the module. The .wasm bytes are read here and
  // handed to the glue through instantiateWasm, so the glue never fetches.
  async init(wasmUrl = DEFAULT_WASM_URL) {
    if (this.M) return { gemm: this.M.UTF8ToString(this.M._samw_gemm_variant()) };
    const wasmHref = new URL(wasmUrl, DEFAULT_WASM_URL).href;
    const glueHref = wasmHref.replace(/\.wasm(\?.*)?$/, '.mjs$1');
    const [bytes, glue] = await Promise.all([readUrl(wasmHref), import(glueHref)]);
    const compiled = await WebAssembly.compile(bytes);
    this.M = await glue.default({
      instantiateWasm(imports, receive) {
        WebAssembly.instantiate(compiled, imports).then((instance) => receive(instance, compiled));
        return {};
      },
      onEncodeProgress: (done, total) => { if (this.progress) this.progress({ stage: 'encode', done, total }); },
    });
    return { gemm: this.M.UTF8ToString(this.M._samw_gemm_variant()) };
  }

  // Calls one op; progress(p) receives progress events of long ops.
  async handle(msg, progress = null) {
    if (msg.op === 'init') return this.init(msg.wasmUrl);
    if (!this.M) throw new Error('engine not initialised');
    this.progress = progress;
    try {
      switch (msg.op) {
        case 'load': return this.load(msg.bytes);
        case 'convert': return this.convert(msg.bytes, msg.dtype);
        case 'setEmbedding': return this.setEmbedding(msg.bytes);
        case 'encode': return this.encode(msg.rgb, msg.width, msg.height, msg.keepEmbedding);
        case 'getEmbedding': return this.getEmbedding(msg.dtype);
        case 'predict': return this.predict(msg);
        case 'everything': return await this.everything(msg);  // async: keep progress set until it ends
        case 'memory': return this.memory();
        case 'dispose': return this.dispose();
        default: throw new Error(`unknown op '${msg.op}'`);
      }
    } finally {
      this.progress = null;
    }
  }

  error(context) {
    return new Error(`${context}: ${this.M.UTF8ToString(this.M._samw_error())}`);
  }

  // Copies bytes into a malloc'd heap block; returns its pointer.
  copyIn(data) {
    const view = data instanceof ArrayBuffer ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const ptr = this.M._malloc(Math.max(view.byteLength, 1));
    if (!ptr) throw new Error(`out of memory copying ${view.byteLength} bytes into the WASM heap`);
    this.M.HEAPU8.set(view, ptr);
    return ptr;
  }

  takeOutput() {
    const ptr = this.M._samw_out_ptr(), len = this.M._samw_out_len();
    const out = this.M.HEAPU8.slice(ptr, ptr + len);
    this.M._samw_out_free();
    return out;
  }

  requireModel() { if (!this.model) throw new Error('no model loaded'); }
  requireImage() { if (!this.image) throw new Error('no image set: call setImage or setEmbedding first'); }

  load(bytes) {
    const ptr = this.copyIn(bytes);
    const model = this.M._samw_model_load(ptr, bytes.byteLength);
    this.M._free(ptr);
    if (!model) throw this.error('cannot load the model');
    this.freeImage();
    if (this.model) this.M._samw_model_free(this.model);
    this.model = model;
    return JSON.parse(this.M.UTF8ToString(this.M._samw_model_info(model)));
  }

  convert(bytes, dtype = 'f32') {
    if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`convert: dtype must be 'f32' or 'f16', got '${dtype}'`);
    const ptr = this.copyIn(bytes);
    const ok = this.M._samw_convert(ptr, bytes.byteLength, dtype === 'f16' ? 1 : 0);
    this.M._free(ptr);
    if (!ok) throw this.error('cannot convert the checkpoint');
    return { bytes: this.takeOutput() };
  }

  freeImage() {
    if (this.image) this.M._samw_image_free(this.image);
    this.image = 0;
  }

  imageSize() {
    return { width: this.M._samw_image_width(this.image), height: this.M._samw_image_height(this.image) };
  }

  setEmbedding(bytes) {
    this.requireModel();
    const ptr = this.copyIn(bytes);
    const image = this.M._samw_image_load_embedding(this.model, ptr, bytes.byteLength);
    this.M._free(ptr);
    if (!image) throw this.error('cannot use the embedding');
    this.freeImage();
    this.image = image;
    return this.imageSize();
  }

  // rgb: width*height*3 bytes. keepEmbedding: also return the embedding file.
  encode(rgb, width, height, keepEmbedding = false) {
    this.requireModel();
    if (!(width > 0 && height > 0) || rgb.byteLength !== width * height * 3) {
      throw new Error(`encode: expected ${width}x${height}x3 RGB bytes, got ${rgb.byteLength}`);
    }
    const ptr = this.copyIn(rgb);
    const image = this.M._samw_image_encode(this.model, ptr, width, height);
    this.M._free(ptr);
    if (!image) throw this.error('cannot encode the image');
    this.freeImage();
    this.image = image;
    const result = this.imageSize();
    if (keepEmbedding) result.embedding = this.getEmbedding('f32').bytes;
    return result;
  }

  getEmbedding(dtype = 'f32') {
    this.requireModel();
    this.requireImage();
    if (!this.M._samw_image_save_embedding(this.model, this.image, dtype === 'f16' ? 1 : 0)) {
      throw this.error('cannot write the embedding');
    }
    return { bytes: this.takeOutput() };
  }

  // points: Float32Array (n, 2); labels: Int32Array (n); box: Float32Array(4)
  // or null; maskInput: Float32Array (4G)^2 or null.
  predict({ points, labels, box, maskInput, multimask, output = 0 }) {
    this.requireModel();
    this.requireImage();
    const M = this.M;
    const n = labels ? labels.length : 0;
    const ptrs = [];
    const put = (arr) => { if (!arr) return 0; const p = this.copyIn(arr); ptrs.push(p); return p; };
    let result = 0;
    try {
      const pPoints = put(n ? points : null), pLabels = put(n ? labels : null);
      const pBox = put(box), pMask = put(maskInput);
      result = M._samw_predict(this.model, this.image, pPoints, pLabels, n, pBox, pMask,
        multimask ? 1 : 0, output);
      if (!result) throw this.error('cannot decode the prompt');
      const count = M._samw_masks_count(result), width = M._samw_masks_width(result);
      const height = M._samw_masks_height(result), lowRes = M._samw_masks_low_res(result);
      const f32 = (ptr, len) => new Float32Array(M.HEAPF32.buffer.slice(ptr, ptr + 4 * len));
      const scores = f32(M._samw_masks_scores(result), count);
      const stability = f32(M._samw_masks_stability(result), count);
      const logits = f32(M._samw_masks_logits(result), count * lowRes * lowRes);
      const maskCount = M._samw_masks_mask_count(result);
      const maskIndex = Array.from(new Int32Array(M.HEAP32.buffer.slice(
        M._samw_masks_mask_index(result), M._samw_masks_mask_index(result) + 4 * maskCount)));
      const mp = M._samw_masks_data(result);
      const masks = maskCount ? M.HEAPU8.slice(mp, mp + maskCount * width * height) : new Uint8Array(0);
      const [prompt, transformer, upscale, postprocess] = f32(M._samw_masks_stage_ms(result), 4);
      const stageMs = { prompt, transformer, upscale, postprocess };
      return { count, width, height, lowRes, scores, stability, logits, masks, maskIndex, stageMs };
    } finally {
      if (result) M._samw_masks_free(result);
      for (const p of ptrs) M._free(p);
    }
  }

  // The automatic mask generator (wasm/sam_wasm.c samw_amg_*): one batch of
  // points per step, then a macrotask, so that cancel() and the page get a
  // turn. progress {stage: 'everything', done, total, masks} carries the
  // batch's records (before NMS). options: the 11 numbers samw_amg_start
  // reads; rgb: the image's pixels (needed for crop layers) or null.
  async everything({ options, rgb = null, outputMode = 'binary_mask', token = null }) {
    this.requireModel();
    this.requireImage();
    const M = this.M;
    if (!['binary_mask', 'uncompressed_rle', 'coco_rle'].includes(outputMode)) {
      throw new Error(`everything: output_mode must be binary_mask, uncompressed_rle or coco_rle, got '${outputMode}'`);
    }
    const { width, height } = this.imageSize();
    if (rgb && rgb.byteLength !== width * height * 3) {
      throw new Error(`everything: expected ${width}x${height}x3 RGB bytes, got ${rgb.byteLength}`);
    }
    const pOpts = this.copyIn(Float64Array.from(options));
    const pRgb = rgb ? this.copyIn(rgb) : 0;
    const run = M._samw_amg_start(this.model, this.image, pRgb, pOpts);
    M._free(pOpts);
    this.cancelled = false;
    this.running = token ?? true;
    try {
      if (!run) throw this.error('everything');
      for (;;) {
        const rc = M._samw_amg_step(run);
        if (rc < 0) throw this.error('everything');
        if (this.progress) {
          const n = M._samw_amg_batch_count(run);
          const masks = this.readRecords(M._samw_amg_batch(run), n, width, height, outputMode);
          this.progress({ stage: 'everything', done: M._samw_amg_done(), total: M._samw_amg_total(), masks });
        }
        if (rc === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (this.cancelled) {
          const e = new Error('everything cancelled');
          e.name = 'AbortError';
          throw e;
        }
      }
      const res = M._samw_amg_finish(run);
      if (!res) throw this.error('everything');
      try {
        return { width, height, masks: this.readRecords(M._samw_amg_result_masks(res), M._samw_amg_result_count(res), width, height, outputMode) };
      } finally {
        M._samw_amg_result_free(res);
      }
    } finally {
      this.running = false;
      if (run) M._samw_amg_free(run);
      if (pRgb) M._free(pRgb);
    }
  }

  cancel(token = null) {
    if (this.running && (token == null || token === this.running)) this.cancelled = true;
  }

  // AmgMask records -> the official generator's dicts; segmentation by
  // output mode: {data: Uint8Array (h*w, 0/1), width, height} for
  // binary_mask, {size: [h, w], counts} for the RLEs (counts a number array,
  // or pycocotools' string for coco_rle).
  readRecords(ptr, n, width, height, outputMode) {
    const M = this.M;
    const out = [];
    for (let i = 0; i < n; i++) {
      const info = new Float64Array(M.HEAPF64.buffer, M._samw_amg_mask_info(ptr, i), 14).slice();
      const nCounts = info[0];
      const cp = M._samw_amg_mask_counts(ptr, i);
      let segmentation;
      if (outputMode === 'coco_rle') {
        segmentation = { size: [height, width], counts: M.UTF8ToString(M._samw_rle_string(cp, nCounts)) };
      } else {
        const counts = new Uint32Array(M.HEAPU32.buffer, cp, nCounts).slice();
        if (outputMode === 'uncompressed_rle') {
          segmentation = { size: [height, width], counts: Array.from(counts) };
        } else {
          // Column-major runs, the first of 0s.
          const data = new Uint8Array(width * height);
          let idx = 0;
          counts.forEach((c, k) => {
            if (k & 1) for (let j = idx; j < idx + c; j++) data[(j % height) * width + ((j / height) | 0)] = 1;
            idx += c;
          });
          segmentation = { data, width, height };
        }
      }
      out.push({
        segmentation,
        area: info[1],
        bbox: [info[2], info[3], info[4] - info[2], info[5] - info[3]],
        predicted_iou: info[6],
        point_coords: [[info[8], info[9]]],
        stability_score: Number.isNaN(info[7]) ? null : info[7],
        crop_box: [info[10], info[11], info[12] - info[10], info[13] - info[11]],
      });
    }
    return out;
  }

  // heapInUse: bytes the C core holds (live allocations); memoryBytes: the
  // WASM memory's size, which only grows (up to its 4 GiB maximum).
  memory() {
    return { heapInUse: this.M._samw_heap_in_use(), memoryBytes: this.M.HEAPU8.length };
  }

  dispose() {
    if (!this.M) return {};
    this.freeImage();
    if (this.model) this.M._samw_model_free(this.model);
    this.model = 0;
    return {};
  }
}
