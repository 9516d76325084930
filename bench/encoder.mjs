// Image encoder benchmark: ours side by side with its peers in one run, for MobileSAM's TinyViT
// (--model vit_t, `npm run bench -- encoder_tinyvit`) or SAM's ViT-B (--model vit_b,
// `npm run bench -- encoder_vit`).
//
//   node bench/encoder.mjs [--model vit_t|vit_b] [--n N] [--peer-n N] [--warmup 1]
//       [--threads 1,2] [--with-wasm] [--only a,b] [--skip a,b] [--size WxH] [--json FILE]
//
// Fixtures, made once and cached in build/bench-cache/ (delete it to remake them): a
// random-weight checkpoint in the official layout (tools/sam_ref/make_checkpoint.py: vit_t seed 6
// in the layout of mobile_sam.pt, vit_b seed 1 as bench/decoder.mjs), a generated 1024x683 image
// (the one bench/decoder.mjs uses; --size 1024x1024 or 683x1024 for a square or portrait one,
// longest side 1024), its RGB bytes, and an ONNX export of the reference's image encoder with the
// same weights (tools/sam_ref/export_encoder_onnx.py). The image's shape matters to ours with
// MobileSAM: its encoder computes the zero padding's equal rows (under a landscape image) or
// columns (right of a portrait one) once (src/model/repeated_band.h); the ONNX runtimes compute
// the whole 1024x1024 input.
//
// Each runtime encodes the same image in its own process after loading, `warmup` untimed runs
// then `n` timed ones (ours native: --n; the others: --peer-n, which defaults to --n for vit_t
// and to 1 for vit_b, whose peers take 10 to 20 s an image on one core). Runtimes with threads
// run once per --threads count (vit_t: 1; vit_b: 1,2):
//   ours-wasm-node  build/wasm through web/sam.js in Node (SamPredictor.setImage: preprocessing,
//                   encoder, the decoder's per-image state); 1 thread. A second row, "(encoder)",
//                   times the same calls up to the embedding (the encoder's last progress event):
//                   the work the ONNX encoder does.
//   ours-wasm-chromium  the same in headless Chromium (web/sam.js default: a Web Worker; the
//                   "(encoder)" row from the progress event as it reaches the page)
//   ours-native     build/bench/encode_bench (bench/c/encode_bench.c, sam_image_encode, same work,
//                   --threads T)
//   ort-web-node    onnxruntime-web (wasm backend, SIMD, numThreads 1) in Node on the ONNX export
//   ort-web-chromium  onnxruntime-web the same in headless Chromium (the preprocessed input
//                   fetched from the local server)
//   ort-node        onnxruntime-node (CPU, intraOpNumThreads T, interOpNumThreads 1) on the export
//   pytorch         tools/sam_ref Predictor.set_image (PIL resize, normalise, pad, encoder),
//                   torch.set_num_threads(T)
// The ONNX runtimes get the normalised, padded (1, 3, 1024, 1024) input, built once in JS; their
// time covers session.run only. For vit_b the two WASM runtimes are skipped unless --with-wasm
// or --only names them (20 to 30 s an image).
//
// Before the table, every runtime's embedding is checked against ours (WASM in Node if it ran,
// else native on 1 thread): relative L2 < 1e-3. A failed check is marked and makes the exit
// status 1. The table gives the median and minimum in ms (s for vit_b), the median's GFLOP/s
// (2 x the reference encoder's multiply-adds, counted from the config), its fraction of the
// single-core GEMM peak times the thread count (the best AVX-512 figure of
// build/tests/test_gemm --bench, measured in the same run; the best kernel variant's where there
// is no AVX-512), and its ratio to ours in WASM and to ours native on the same number of threads
// (above 1: slower than ours).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, runOk, once, timeLoop, summarize, ortWebSession, serveForBrowser, CHROMIUM, CHROMIUM_ARGS } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = path.join(ROOT, 'build');
const CACHE = path.resolve(ROOT, process.env.SAM_BENCH_CACHE || 'build/bench-cache');
const PYTHON = process.env.SAM_PYTHON || '/usr/bin/python3';
// --size WxH, read here so that the peers' processes (spawned with the same flag) agree.
const [IMAGE_W, IMAGE_H] = (() => {
  const i = process.argv.indexOf('--size');
  const m = /^(\d+)x(\d+)$/.exec(i > 0 ? process.argv[i + 1] : '1024x683');
  if (!m || Math.max(+m[1], +m[2]) !== 1024) throw new Error('--size: WxH with a longest side of 1024');
  return [+m[1], +m[2]];
})();
const PEER_TIMEOUT_MS = 1200e3;
const MAX_REL_L2 = 1e-3;
const PEERS = ['ours-wasm-node', 'ours-wasm-chromium', 'ours-native', 'ort-web-node', 'ort-web-chromium', 'ort-node',
  'pytorch'];
const THREADED = ['ours-native', 'ort-node', 'pytorch'];
const WASM = ['ours-wasm-node', 'ours-wasm-chromium', 'ort-web-node', 'ort-web-chromium'];
const PIXEL_MEAN = [123.675, 116.28, 103.53], PIXEL_STD = [58.395, 57.12, 57.375];

// Multiply-adds of MobileSAM's encoder (tiny_vit_sam.py) for a 1024 input, official config:
// convs, linears, window attention (padded windows) and the neck.
function tinyvitMacs() {
  const dims = [64, 128, 160, 320], depths = [2, 2, 6, 2], windows = [0, 7, 14, 7], res = [256, 128, 64, 64];
  let macs = 512 * 512 * 27 * 32 + 256 * 256 * 288 * 64;              // stem
  macs += depths[0] * 256 * 256 * (64 * 256 * 2 + 256 * 9);             // MBConv
  for (let s = 1; s < 4; s++) {
    const T = res[s] ** 2, C = dims[s], ws = windows[s], nw = Math.ceil(res[s] / ws) ** 2;
    macs += depths[s] * (T * C * (3 * C + C + 8 * C + 9) + nw * ws ** 4 * C * 2);
  }
  for (let s = 0; s < 3; s++) {                                          // patch merging
    const Tin = res[s] ** 2, Tout = res[s + 1] ** 2, C = dims[s], Cn = dims[s + 1];
    macs += Tin * C * Cn + Tout * Cn * 9 + Tout * Cn * Cn;
  }
  return macs + 4096 * (320 * 256 + 2304 * 256);                          // neck
}

// Multiply-adds of SAM's ViT encoder (image_encoder.py) for a 1024 input, as the reference
// computes it: patch embedding (16x16 conv); per block qkv and proj (windowed blocks on the
// 64x64 grid padded to 70x70, 25 windows of 14x14), attention (q k^T and p v over each window or
// over all 4096 tokens in the global blocks, plus the decomposed relative-position terms), the
// MLP (4096 tokens), and the neck (1x1 then 3x3 conv to 256 channels). ViT-B: 486 G.
function vitMacs({ dim, depth, mlp, global }) {
  const grid = 64, T = grid * grid, ws = 14, padded = Math.ceil(grid / ws) * ws, nw = (padded / ws) ** 2;
  let macs = T * dim * 3 * 16 * 16;                                      // patch embedding
  for (let b = 0; b < depth; b++) {
    const g = global.includes(b);
    const tokens = g ? T : padded * padded, side = g ? grid : ws;
    macs += tokens * dim * 4 * dim;                                      // qkv, proj
    macs += g ? 2 * T * T * dim : nw * 2 * (ws * ws) ** 2 * dim;        // q k^T, p v
    macs += tokens * 2 * side * dim;                                     // relative positions
    macs += T * 2 * dim * mlp;                                           // MLP
  }
  return macs + T * dim * 256 + T * 256 * 256 * 9;                      // neck
}

// Per model: the cached checkpoint (make_checkpoint.py arguments), the multiply-adds, defaults.
const MODELS = {
  vit_t: { title: "MobileSAM's image encoder (TinyViT, vit_t)", ckpt: 'vit_t_seed6', make: ['--type', 'vit_t', '--seed', '6'],
    macs: tinyvitMacs(), n: 5, peerN: null, threads: '1', unit: 'ms', skipWasm: false },
  vit_b: { title: "SAM's ViT-B image encoder", ckpt: 'vit_b_seed1', make: ['--type', 'vit_b', '--seed', '1'],
    macs: vitMacs({ dim: 768, depth: 12, mlp: 3072, global: [2, 5, 8, 11] }), n: 2, peerN: 1, threads: '1,2', unit: 's', skipWasm: true },
};

// The best single-core GEMM throughput measured by build/tests/test_gemm --bench (GFLOP/s): the
// best AVX-512 figure, else the best of any kernel variant; null if the program is missing.
function gemmPeak() {
  const bin = path.join(BUILD, 'tests', 'test_gemm');
  if (!fs.existsSync(bin)) return null;
  const r = spawnSync(bin, ['--bench'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const best = {};
  for (const line of r.stdout.split('\n')) {
    const m = line.match(/^(\S+)\s+\d+x\d+x\d+/);
    if (!m || m[1] === 'scalar') continue;
    for (const g of line.matchAll(/([\d.]+) GFLOP\/s/g)) best[m[1]] = Math.max(best[m[1]] ?? 0, Number(g[1]));
  }
  const variant = best.avx512 ? 'avx512' : Object.keys(best).sort((a, b) => best[b] - best[a])[0];
  return variant ? { gflops: best[variant], variant } : null;
}

function decodePngRgb(file, decodePng) {
  const img = decodePng(fs.readFileSync(file));
  const n = img.width * img.height, rgb = new Uint8Array(3 * n);
  const ch = img.data.length / n;
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = img.data[ch * i + Math.min(c, ch - 1)];
  return { width: img.width, height: img.height, rgb };
}

async function fixtures(spec) {
  fs.mkdirSync(CACHE, { recursive: true });
  const say = (what) => process.stderr.write(`bench: making ${what} (cached in ${path.relative(ROOT, CACHE)}/)\n`);
  const model = once(path.join(CACHE, `${spec.ckpt}.pth`), (out) => {
    say('a random-weight checkpoint');
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_checkpoint.py'), ...spec.make, '--out', out]);
  });
  const image = once(path.join(CACHE, `img_${IMAGE_W}x${IMAGE_H}_seed7.png`), (out) => {
    say(`a ${IMAGE_W}x${IMAGE_H} image`);
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_images.py'), '--size', `${IMAGE_W}x${IMAGE_H}`, '--seed', '7', '--out', out]);
  });
  const { decodePng } = await import('../tests/png.mjs');
  const rgb = once(path.join(CACHE, `img_${IMAGE_W}x${IMAGE_H}_seed7.rgb`), (out) => {
    fs.writeFileSync(out, decodePngRgb(image, decodePng).rgb);
  });
  const onnx = once(path.join(CACHE, `${spec.ckpt}.encoder.onnx`), (out) => {
    say('the ONNX export of the encoder');
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/export_encoder_onnx.py'), '--ckpt', model, '--out', out]);
  });
  return { model, image, rgb, onnx };
}

// Sam.preprocess of an image whose longest side is already 1024 (no resampling).
function preprocess(rgb, w, h, size = 1024) {
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) out[(c * size + y) * size + x] = (rgb[3 * (y * w + x) + c] - PIXEL_MEAN[c]) / PIXEL_STD[c];
  return out;
}

function embeddingFromSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const t = JSON.parse(buf.toString('utf8', 8, 8 + n)).image_embeddings;
  const b = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

function embeddingFromNpy(file) {
  const buf = fs.readFileSync(file);
  const len = buf[6] === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (buf[6] === 1 ? 10 : 12) + len;
  return new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
}

function writeF32(file, data) { fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength)); }

// ---------------------------------------------------------------------------------------------
// peers (each in a child process: node bench/encoder.mjs --peer NAME --ctx JSON); each writes its
// first embedding as raw float32 to ctx.out/ctx.tag.f32 and returns its timing. ctx.threads: the
// thread count (1 for the WASM runtimes); ctx.n: the number of timed runs. The first run, kept for
// the check, counts as one of the warm-up runs.

const afterFirst = (ctx) => ({ ...ctx, warmup: Math.max(0, ctx.warmup - 1) });

async function ortPeer(ctx, ort, session, info) {
  const rgb = new Uint8Array(fs.readFileSync(ctx.rgb));
  const input = new ort.Tensor('float32', preprocess(rgb, IMAGE_W, IMAGE_H), [1, 3, 1024, 1024]);
  const first = await session.run({ input });
  writeF32(path.join(ctx.out, `${ctx.tag}.f32`), first.image_embeddings.data);
  return { ...(await timeLoop(afterFirst(ctx), () => session.run({ input }))), info };
}

// Runs fn in a page of headless Chromium served from 127.0.0.1 (the model, the ONNX export, the
// image's RGB bytes and its preprocessed input under /data/); returns fn's result and the version.
async function inChromium(ctx, fn) {
  const input = path.join(ctx.out, `${ctx.tag}.input.f32`);
  writeF32(input, preprocess(new Uint8Array(fs.readFileSync(ctx.rgb)), IMAGE_W, IMAGE_H));
  const { chromium } = await import('playwright-core');
  const server = await serveForBrowser(ROOT, { '/data/model.pth': ctx.model, '/data/encoder.onnx': ctx.onnx,
    '/data/image.rgb': ctx.rgb, '/data/input.f32': input });
  let browser = null;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/`);
    try {
      const r = await page.evaluate(fn, { n: ctx.n, warmup: Math.max(0, ctx.warmup - 1), width: IMAGE_W, height: IMAGE_H });
      return { ...r, version: browser.version() };
    } catch (e) {
      throw new Error(`${e.message}${errors.length ? `\n${errors.join('\n')}` : ''}`);
    }
  } finally {
    if (browser) await browser.close();
    server.close();
  }
}

// Runs in the page: ours through web/sam.js (default transport: a module Worker). The first
// setImage (kept for the check) counts as a warm-up run, as in Node.
async function browserOurs({ n, warmup, width, height }) {
  const { SamPredictor } = await import('/web/sam.js');
  const sam = await SamPredictor.load('/data/model.pth', { cache: 'none' });
  const rgb = new Uint8Array(await (await fetch('/data/image.rgb')).arrayBuffer());
  await sam.setImage({ data: rgb.slice(), width, height });
  const emb = new Uint8Array(await sam.getEmbedding());
  let encoded = 0;
  const onProgress = (p) => { if (p.stage === 'encode' && p.done === p.total) encoded = performance.now(); };
  for (let i = 0; i < warmup; i++) await sam.setImage({ data: rgb.slice(), width, height });
  const times = [], encoder = [];
  for (let i = 0; i < n; i++) {
    encoded = 0;
    const t0 = performance.now();
    await sam.setImage({ data: rgb.slice(), width, height }, { onProgress });
    times.push(performance.now() - t0);
    if (encoded) encoder.push(encoded - t0);
  }
  sam.dispose();
  let bin = '';
  for (let i = 0; i < emb.length; i += 0x8000) bin += String.fromCharCode.apply(null, emb.subarray(i, i + 0x8000));
  return { times, encoder, gemm: sam.gemm, embeddingB64: btoa(bin) };
}

// Runs in the page: onnxruntime-web (wasm, SIMD, 1 thread) on the ONNX export, timed on
// session.run as in Node.
async function browserOrt({ n, warmup }) {
  const ort = await import('/ort/ort.wasm.min.mjs');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = '/ort/';
  const session = await ort.InferenceSession.create('/data/encoder.onnx',
    { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const data = new Float32Array(await (await fetch('/data/input.f32')).arrayBuffer());
  const input = new ort.Tensor('float32', data, [1, 3, 1024, 1024]);
  const first = await session.run({ input });
  for (let i = 0; i < warmup; i++) await session.run({ input });
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await session.run({ input });
    times.push(performance.now() - t0);
  }
  const out = first.image_embeddings.data;
  const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return { times, embeddingB64: btoa(bin), info: `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm (SIMD), 1 thread` };
}

// A peer program that prints one JSON object last: {n, median_ms, min_ms, mean_ms, ...}.
function lastJson(r) { return JSON.parse(r.stdout.trim().split('\n').pop()); }

const peers = {
  async 'ours-wasm-node'(ctx) {
    const { SamPredictor } = await import('../web/sam.js');
    const sam = await SamPredictor.load(ctx.model, { cache: 'none' });
    const rgb = new Uint8Array(fs.readFileSync(ctx.rgb));
    const image = { width: IMAGE_W, height: IMAGE_H, data: rgb };
    await sam.setImage({ ...image, data: rgb.slice() });
    const emb = path.join(ctx.out, `${ctx.tag}.safetensors`);
    fs.writeFileSync(emb, await sam.getEmbedding());
    writeF32(path.join(ctx.out, `${ctx.tag}.f32`), embeddingFromSafetensors(emb));
    // The encoder's last progress event (done == total) marks the embedding:
    // the rest of setImage is the decoder's per-image state. In-process the
    // event is a synchronous call from the encoder, so its time is exact.
    let encoded = 0;
    const onProgress = (p) => { if (p.stage === 'encode' && p.done === p.total) encoded = performance.now(); };
    const encoderTimes = [];
    const stats = await timeLoop(afterFirst(ctx), async () => {
      encoded = 0;
      const t0 = performance.now();
      await sam.setImage({ ...image, data: rgb.slice() }, { onProgress });
      if (encoded) encoderTimes.push(encoded - t0);
    });
    sam.dispose();
    const encoder = encoderTimes.length >= stats.n ? summarize(encoderTimes.slice(-stats.n)) : undefined;
    return { ...stats, encoder, info: `web/sam.js setImage in-process, gemm ${sam.gemm}` };
  },

  async 'ours-wasm-chromium'(ctx) {
    const r = await inChromium(ctx, browserOurs);
    fs.writeFileSync(path.join(ctx.out, `${ctx.tag}.safetensors`), Buffer.from(r.embeddingB64, 'base64'));
    writeF32(path.join(ctx.out, `${ctx.tag}.f32`), embeddingFromSafetensors(path.join(ctx.out, `${ctx.tag}.safetensors`)));
    return { ...summarize(r.times), encoder: r.encoder.length === r.times.length ? summarize(r.encoder) : undefined,
      info: `Chromium ${r.version}, web/sam.js setImage in a Worker, gemm ${r.gemm}` };
  },

  async 'ort-web-chromium'(ctx) {
    const r = await inChromium(ctx, browserOrt);
    const b = Buffer.from(r.embeddingB64, 'base64');
    writeF32(path.join(ctx.out, `${ctx.tag}.f32`), new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)));
    return { ...summarize(r.times), info: `Chromium ${r.version}, ${r.info}` };
  },

  async 'ours-native'(ctx) {
    const bin = path.join(BUILD, 'bench', 'encode_bench');
    if (!fs.existsSync(bin)) throw new Error('build/bench/encode_bench is missing: run make bench');
    const emb = path.join(ctx.out, `${ctx.tag}.safetensors`);
    const j = lastJson(runOk(bin, ['--model', ctx.model, '--rgb', ctx.rgb, '--size', `${IMAGE_W}x${IMAGE_H}`,
      '--n', String(ctx.n), '--warmup', String(ctx.warmup), '--threads', String(ctx.threads), '--out-embedding', emb]));
    writeF32(path.join(ctx.out, `${ctx.tag}.f32`), embeddingFromSafetensors(emb));
    const { gemm } = JSON.parse(runOk(path.join(BUILD, 'sam'), ['info', '--model', ctx.model]).stdout);
    return { n: j.n, median_ms: j.median_ms, min_ms: j.min_ms, mean_ms: j.mean_ms,
      info: `build/bench/encode_bench, sam_image_encode, gemm ${gemm}` };
  },

  async 'ort-web-node'(ctx) {
    const { ort, session } = await ortWebSession(ctx.onnx);
    return ortPeer(ctx, ort, session, `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm (SIMD)`);
  },

  async 'ort-node'(ctx) {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(ctx.onnx, { executionProviders: ['cpu'],
      intraOpNumThreads: ctx.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    return ortPeer(ctx, ort, session, `onnxruntime-node ${ort.env.versions?.node ?? ''} cpu`);
  },

  async pytorch(ctx) {
    const npy = path.join(ctx.out, `${ctx.tag}.npy`);
    const t = String(ctx.threads);
    const j = lastJson(runOk(PYTHON, [path.join(ROOT, 'bench/encoder_torch.py'), '--ckpt', ctx.model, '--image', ctx.image,
      '--n', String(ctx.n), '--warmup', String(ctx.warmup), '--threads', t, '--out-embedding', npy],
    { env: { ...process.env, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t } }));
    writeF32(path.join(ctx.out, `${ctx.tag}.f32`), embeddingFromNpy(npy));
    if (j.threads !== ctx.threads) throw new Error(`torch runs ${j.threads} threads, not ${ctx.threads}`);
    return { n: j.n, median_ms: j.median_ms, min_ms: j.min_ms, mean_ms: j.mean_ms,
      info: `torch ${j.torch}, Predictor.set_image` };
  },
};

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / den);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.peer) {
    const ctx = JSON.parse(args.ctx);
    const result = await peers[args.peer](ctx);
    process.stdout.write(`\n${JSON.stringify(result)}\n`);
    return;
  }
  const modelName = String(args.model ?? 'vit_t');
  const spec = MODELS[modelName];
  if (!spec) throw new Error(`unknown --model ${modelName}; models: ${Object.keys(MODELS).join(', ')}`);
  const n = Number(args.n ?? spec.n), peerN = Number(args['peer-n'] ?? spec.peerN ?? n), warmup = Number(args.warmup ?? 1);
  const threads = String(args.threads ?? spec.threads).split(',').map(Number);
  if (!(n >= 1 && peerN >= 1 && warmup >= 0 && threads.every((t) => Number.isInteger(t) && t >= 1)))
    throw new Error('--n and --peer-n want at least 1, --warmup at least 0, --threads a list of positive integers');
  const only = args.only ? String(args.only).split(',') : PEERS;
  const skip = args.skip ? String(args.skip).split(',') : (spec.skipWasm && !args['with-wasm'] && !args.only ? WASM : []);
  for (const p of [...only, ...skip]) if (!PEERS.includes(p)) throw new Error(`unknown runtime ${p}; runtimes: ${PEERS.join(', ')}`);
  const fx = await fixtures(spec);
  process.stderr.write('bench: single-core GEMM peak (build/tests/test_gemm --bench) ...\n');
  const peak = gemmPeak();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-bench-encoder-'));

  // One job per runtime and thread count (the WASM runtimes: one thread).
  const jobs = [];
  for (const name of PEERS.filter((p) => only.includes(p) && !skip.includes(p)))
    for (const t of THREADED.includes(name) ? threads : [1]) jobs.push({ runtime: name, threads: t });
  const results = [];
  for (const job of jobs) {
    const tag = `${job.runtime}-t${job.threads}`;
    const ctx = { ...fx, n: job.runtime === 'ours-native' ? n : peerN, warmup, threads: job.threads, tag, out };
    process.stderr.write(`bench: ${job.runtime}, ${job.threads} thread(s) ...\n`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--peer', job.runtime, '--ctx', JSON.stringify(ctx),
      '--size', `${IMAGE_W}x${IMAGE_H}`],
      { encoding: 'utf8', maxBuffer: 1 << 26, timeout: PEER_TIMEOUT_MS });
    if (r.status !== 0) {
      process.stderr.write(`bench: ${tag} failed (${r.status ?? r.signal})\n${r.stdout}\n${r.stderr}\n`);
      results.push({ ...job, tag, error: (r.stderr || '').trim().split('\n').pop() || `exit ${r.status ?? r.signal}` });
      continue;
    }
    const result = { ...job, tag, ...JSON.parse(r.stdout.trim().split('\n').pop()) };
    results.push(result);
    // Ours in WASM: also the same setImage calls up to the embedding, the
    // work the ONNX encoder does (its peers' time covers session.run only).
    if (result.encoder) {
      results.push({ ...job, runtime: `${job.runtime} (encoder)`, tag, ...result.encoder,
        info: 'the setImage calls above up to the embedding (preprocessing + encoder), without the decoder\'s per-image state' });
      delete result.encoder;
    }
  }

  // Check every embedding against ours (WASM in Node, else native on the fewest threads), then
  // print the table.
  const ok = results.filter((r) => !r.error);
  const ref = ok.find((r) => r.runtime === 'ours-wasm-node') ??
    ok.filter((r) => r.runtime === 'ours-native').sort((a, b) => a.threads - b.threads)[0];
  const refData = ref ? readF32(path.join(out, `${ref.tag}.f32`)) : null;
  let failed = false;
  for (const r of results) {
    if (r.error) { failed = true; continue; }
    if (!refData) { r.check = 'no reference'; continue; }
    r.rel_l2 = relL2(readF32(path.join(out, `${r.tag}.f32`)), refData);
    r.check = r.rel_l2 < MAX_REL_L2 ? `ok (${r.rel_l2.toExponential(1)})` : `FAIL (rel L2 ${r.rel_l2.toExponential(2)})`;
    if (r.rel_l2 >= MAX_REL_L2) failed = true;
  }
  const macs = spec.macs;
  const find = (name, t) => ok.find((r) => r.runtime === name && r.threads === t);
  const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout.trim() ? '+changes' : '';
  const scale = spec.unit === 's' ? 1e3 : 1, digits = spec.unit === 's' ? 2 : 0;
  console.log(`${spec.title}, ${IMAGE_W}x${IMAGE_H} image (1024x1024 input, ${(macs / 1e9).toFixed(1)} G multiply-adds), threads ${threads.join(',')}`);
  console.log(`machine: ${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} cores), node ${process.version}, commit ${git}${dirty}; ` +
    `n=${n} (ours native), ${peerN} (others), warmup=${warmup}`);
  console.log(peak ? `single-core GEMM peak: ${peak.gflops.toFixed(1)} GFLOP/s (build/tests/test_gemm --bench, best ${peak.variant}); ` +
    '% peak = GFLOP/s / (threads x peak)' : 'single-core GEMM peak: build/tests/test_gemm is missing');
  const rows = [['runtime', 'threads', `median ${spec.unit}`, `min ${spec.unit}`, 'GFLOP/s', '% peak', 'vs ours-wasm',
    'vs ours-wasm encoder', 'vs ours-native', 'check', 'info']];
  for (const r of results) {
    if (r.error) { rows.push([r.runtime, r.threads, '-', '-', '-', '-', '-', '-', '-', 'FAILED', r.error]); continue; }
    const ratio = (o) => (o ? (r.median_ms / o.median_ms).toFixed(2) : '-');
    const gflops = 2 * macs / r.median_ms / 1e6;
    rows.push([r.runtime, r.threads, (r.median_ms / scale).toFixed(digits), (r.min_ms / scale).toFixed(digits), gflops.toFixed(1),
      peak ? `${(100 * gflops / (r.threads * peak.gflops)).toFixed(0)}%` : '-',
      ratio(find('ours-wasm-node', 1)), ratio(find('ours-wasm-node (encoder)', 1)), ratio(find('ours-native', r.threads)),
      r.check, r.info]);
  }
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => String(row[j]).length)));
  for (const row of rows) console.log(row.map((c, j) => String(c).padEnd(widths[j])).join('  ').trimEnd());
  // The same comparison within the browser.
  const [oursC, encC, ortC] = ['ours-wasm-chromium', 'ours-wasm-chromium (encoder)', 'ort-web-chromium'].map((k) => find(k, 1));
  if (ortC && (oursC || encC)) {
    console.log(`in Chromium: onnxruntime-web / ours = ${encC ? `${(ortC.median_ms / encC.median_ms).toFixed(2)} (to the embedding), ` : ''}` +
      `${oursC ? `${(ortC.median_ms / oursC.median_ms).toFixed(2)} (all of setImage)` : ''}`);
  }
  if (args.json) {
    fs.writeFileSync(args.json, JSON.stringify({ model: modelName, image: `${IMAGE_W}x${IMAGE_H}`, macs, n, peer_n: peerN, warmup, threads,
      gemm_peak: peak, commit: git + dirty, results }, null, 1));
  }
  fs.rmSync(out, { recursive: true, force: true });
  if (failed) process.exitCode = 1;
}

main().catch((e) => { console.error(e); process.exit(1); });
