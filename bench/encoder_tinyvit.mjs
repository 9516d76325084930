// MobileSAM image encoder (TinyViT, vit_t) benchmark: ours side by side with its peers in one run.
//
//   node bench/encoder_tinyvit.mjs [--n 5] [--warmup 1] [--only a,b] [--skip a,b] [--json FILE]
//
// Fixtures, made once and cached in build/bench-cache/ (delete it to remake them): a
// random-weight MobileSAM checkpoint in the layout of mobile_sam.pt
// (tools/sam_ref/make_checkpoint.py --type vit_t, seed 6), a generated 1024x683 image (the one
// bench/decoder.mjs uses), its RGB bytes, and an ONNX export of the reference's image encoder
// with the same weights (tools/sam_ref/export_encoder_onnx.py).
//
// Each runtime encodes the same image on one thread, in its own process after loading, `warmup`
// untimed runs then `n` timed ones:
//   ours-wasm-node  build/wasm through web/sam.js in Node (SamPredictor.setImage: preprocessing,
//                   encoder, the decoder's per-image state)
//   ours-native     build/bench/encode_bench (bench/c/encode_bench.c, sam_image_encode, same work)
//   ort-web-node    onnxruntime-web (wasm backend, SIMD, numThreads 1) in Node on the ONNX export
//   ort-node        onnxruntime-node (CPU, intra/inter-op threads 1) on the ONNX export
//   pytorch         tools/sam_ref Predictor.set_image (PIL resize, normalise, pad, encoder),
//                   torch.set_num_threads(1)
// The ONNX runtimes get the normalised, padded (1, 3, 1024, 1024) input, built once in JS; their
// time covers session.run only.
//
// Before the table, every runtime's embedding is checked against ours (WASM in Node, or native):
// relative L2 < 1e-3. A failed check is marked and makes the exit status 1. The table gives the
// median and minimum in ms, the median's GFLOP/s (2 x the encoder's multiply-adds, counted from
// the config) and its ratio to ours in WASM and ours native (above 1: slower than ours).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, runOk, once, timeLoop } from './common.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = path.join(ROOT, 'build');
const CACHE = path.resolve(ROOT, process.env.SAM_BENCH_CACHE || 'build/bench-cache');
const PYTHON = process.env.SAM_PYTHON || '/usr/bin/python3';
const IMAGE_W = 1024, IMAGE_H = 683;
const PEER_TIMEOUT_MS = 600e3;
const MAX_REL_L2 = 1e-3;
const PEERS = ['ours-wasm-node', 'ours-native', 'ort-web-node', 'ort-node', 'pytorch'];
const OURS = ['ours-wasm-node', 'ours-native'];
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

function decodePngRgb(file, decodePng) {
  const img = decodePng(fs.readFileSync(file));
  const n = img.width * img.height, rgb = new Uint8Array(3 * n);
  const ch = img.data.length / n;
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = img.data[ch * i + Math.min(c, ch - 1)];
  return { width: img.width, height: img.height, rgb };
}

async function fixtures() {
  fs.mkdirSync(CACHE, { recursive: true });
  const say = (what) => process.stderr.write(`bench: making ${what} (cached in ${path.relative(ROOT, CACHE)}/)\n`);
  const model = once(path.join(CACHE, 'vit_t_seed6.pth'), (out) => {
    say('a random-weight MobileSAM checkpoint');
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_checkpoint.py'), '--type', 'vit_t', '--seed', '6', '--out', out]);
  });
  const image = once(path.join(CACHE, `img_${IMAGE_W}x${IMAGE_H}_seed7.png`), (out) => {
    say(`a ${IMAGE_W}x${IMAGE_H} image`);
    runOk(PYTHON, [path.join(ROOT, 'tools/sam_ref/make_images.py'), '--size', `${IMAGE_W}x${IMAGE_H}`, '--seed', '7', '--out', out]);
  });
  const { decodePng } = await import('../tests/png.mjs');
  const rgb = once(path.join(CACHE, `img_${IMAGE_W}x${IMAGE_H}_seed7.rgb`), (out) => {
    fs.writeFileSync(out, decodePngRgb(image, decodePng).rgb);
  });
  const onnx = once(path.join(CACHE, 'vit_t_seed6.encoder.onnx'), (out) => {
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
// peers (each in a child process: node bench/encoder_tinyvit.mjs --peer NAME --ctx JSON); each
// writes its first embedding as raw float32 to ctx.out/NAME.f32 and returns its timing.

async function ortPeer(ctx, ort, session, name, info) {
  const rgb = new Uint8Array(fs.readFileSync(ctx.rgb));
  const input = new ort.Tensor('float32', preprocess(rgb, IMAGE_W, IMAGE_H), [1, 3, 1024, 1024]);
  const first = await session.run({ input });
  writeF32(path.join(ctx.out, `${name}.f32`), first.image_embeddings.data);
  return { runtime: name, ...(await timeLoop(ctx, () => session.run({ input }))), info };
}

const peers = {
  async 'ours-wasm-node'(ctx) {
    const { SamPredictor } = await import('../web/sam.js');
    const sam = await SamPredictor.load(ctx.model, { cache: 'none' });
    const rgb = new Uint8Array(fs.readFileSync(ctx.rgb));
    const image = { width: IMAGE_W, height: IMAGE_H, data: rgb };
    await sam.setImage({ ...image, data: rgb.slice() });
    const emb = path.join(ctx.out, 'ours-wasm-node.safetensors');
    fs.writeFileSync(emb, await sam.getEmbedding());
    writeF32(path.join(ctx.out, 'ours-wasm-node.f32'), embeddingFromSafetensors(emb));
    const stats = await timeLoop(ctx, () => sam.setImage({ ...image, data: rgb.slice() }));
    sam.dispose();
    return { runtime: 'ours-wasm-node', ...stats, info: `web/sam.js setImage in-process, gemm ${sam.gemm}` };
  },

  async 'ours-native'(ctx) {
    const bin = path.join(BUILD, 'bench', 'encode_bench');
    if (!fs.existsSync(bin)) throw new Error('build/bench/encode_bench is missing: run make bench');
    const emb = path.join(ctx.out, 'ours-native.safetensors');
    const r = runOk(bin, ['--model', ctx.model, '--rgb', ctx.rgb, '--size', `${IMAGE_W}x${IMAGE_H}`,
      '--n', String(ctx.n), '--warmup', String(ctx.warmup), '--out-embedding', emb]);
    writeF32(path.join(ctx.out, 'ours-native.f32'), embeddingFromSafetensors(emb));
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    const { gemm } = JSON.parse(runOk(path.join(BUILD, 'sam'), ['info', '--model', ctx.model]).stdout);
    return { runtime: 'ours-native', n: j.n, median_ms: j.median_ms, min_ms: j.min_ms, mean_ms: j.mean_ms,
      info: `build/bench/encode_bench, sam_image_encode, gemm ${gemm}` };
  },

  async 'ort-web-node'(ctx) {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    const session = await ort.InferenceSession.create(new Uint8Array(fs.readFileSync(ctx.onnx)),
      { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    return ortPeer(ctx, ort, session, 'ort-web-node', `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm (SIMD), 1 thread`);
  },

  async 'ort-node'(ctx) {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(ctx.onnx,
      { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    return ortPeer(ctx, ort, session, 'ort-node', `onnxruntime-node ${ort.env.versions?.node ?? ''} cpu, 1 thread`);
  },

  async pytorch(ctx) {
    const npy = path.join(ctx.out, 'pytorch.npy');
    const r = runOk(PYTHON, [path.join(ROOT, 'bench/encoder_torch.py'), '--ckpt', ctx.model, '--image', ctx.image,
      '--n', String(ctx.n), '--warmup', String(ctx.warmup), '--threads', '1', '--out-embedding', npy],
    { env: { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
    writeF32(path.join(ctx.out, 'pytorch.f32'), embeddingFromNpy(npy));
    const j = JSON.parse(r.stdout.trim().split('\n').pop());
    return { runtime: 'pytorch', n: j.n, median_ms: j.median_ms, min_ms: j.min_ms, mean_ms: j.mean_ms,
      info: `torch ${j.torch}, ${j.threads} thread, Predictor.set_image` };
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
  const n = Number(args.n ?? 5), warmup = Number(args.warmup ?? 1);
  const only = args.only ? String(args.only).split(',') : PEERS;
  const skip = args.skip ? String(args.skip).split(',') : [];
  for (const p of [...only, ...skip]) if (!PEERS.includes(p)) throw new Error(`unknown runtime ${p}; runtimes: ${PEERS.join(', ')}`);
  const fx = await fixtures();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sam-bench-encoder-'));
  const ctx = { ...fx, n, warmup, out };
  const results = [];
  for (const name of PEERS.filter((p) => only.includes(p) && !skip.includes(p))) {
    process.stderr.write(`bench: ${name} ...\n`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--peer', name, '--ctx', JSON.stringify(ctx)],
      { encoding: 'utf8', maxBuffer: 1 << 26, timeout: PEER_TIMEOUT_MS });
    if (r.status !== 0) {
      process.stderr.write(`bench: ${name} failed (${r.status ?? r.signal})\n${r.stdout}\n${r.stderr}\n`);
      results.push({ runtime: name, error: (r.stderr || '').trim().split('\n').pop() || `exit ${r.status ?? r.signal}` });
      continue;
    }
    results.push(JSON.parse(r.stdout.trim().split('\n').pop()));
  }

  // Check every embedding against ours, then print the table.
  const refName = results.find((r) => r.runtime === 'ours-wasm-node' && !r.error) ? 'ours-wasm-node' : 'ours-native';
  const refFile = path.join(out, `${refName}.f32`);
  const ref = fs.existsSync(refFile) ? readF32(refFile) : null;
  let failed = false;
  for (const r of results) {
    if (r.error) { failed = true; continue; }
    if (!ref) { r.check = 'no reference'; continue; }
    r.rel_l2 = relL2(readF32(path.join(out, `${r.runtime}.f32`)), ref);
    r.check = r.rel_l2 < MAX_REL_L2 ? 'ok' : `FAIL (rel L2 ${r.rel_l2.toExponential(2)})`;
    if (r.rel_l2 >= MAX_REL_L2) failed = true;
  }
  const macs = tinyvitMacs();
  const byName = Object.fromEntries(results.map((r) => [r.runtime, r]));
  const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  console.log(`MobileSAM (vit_t) image encoder, ${IMAGE_W}x${IMAGE_H} image (1024x1024 input, ${(macs / 1e9).toFixed(1)} G multiply-adds), one thread`);
  console.log(`machine: ${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} cores), node ${process.version}, commit ${git}; n=${n}, warmup=${warmup}`);
  const rows = [['runtime', 'median ms', 'min ms', 'GFLOP/s', 'vs ours-wasm', 'vs ours-native', 'check', 'info']];
  for (const r of results) {
    if (r.error) { rows.push([r.runtime, '-', '-', '-', '-', '-', 'FAILED', r.error]); continue; }
    const ratio = (o) => (byName[o] && !byName[o].error ? (r.median_ms / byName[o].median_ms).toFixed(2) : '-');
    rows.push([r.runtime, r.median_ms.toFixed(0), r.min_ms.toFixed(0), (2 * macs / r.median_ms / 1e6).toFixed(1),
      ratio(OURS[0]), ratio(OURS[1]), r.check, r.info]);
  }
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => String(row[j]).length)));
  for (const row of rows) console.log(row.map((c, j) => String(c).padEnd(widths[j])).join('  ').trimEnd());
  if (args.json) fs.writeFileSync(args.json, JSON.stringify({ macs, n, warmup, commit: git, results }, null, 1));
  fs.rmSync(out, { recursive: true, force: true });
  if (failed) process.exitCode = 1;
}

main().catch((e) => { console.error(e); process.exit(1); });
