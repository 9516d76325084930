// Helpers shared by the benchmark scripts (bench/*.mjs): arguments, child
// processes, cached fixtures, timing loops and their summaries.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

// --key value / --flag arguments into an object.
export function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    const key = argv[i].slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[key] = true;
    else { out[key] = next; i++; }
  }
  return out;
}

export function runOk(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`.trim());
  }
  return r;
}

// Makes `file` with make(partialPath) unless it exists (atomic rename; keeps the extension last).
export function once(file, make) {
  if (fs.existsSync(file)) return file;
  const ext = path.extname(file);
  const partial = `${file.slice(0, -ext.length)}.partial-${process.pid}${ext}`;
  make(partial);
  fs.renameSync(partial, file);
  return file;
}

export function median(sorted) {
  const n = sorted.length;
  return n % 2 ? sorted[n >> 1] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

export function summarize(times) {
  const s = [...times].sort((a, b) => a - b);
  return { n: s.length, median_ms: median(s), min_ms: s[0], mean_ms: s.reduce((a, b) => a + b, 0) / s.length };
}

// ctx.warmup untimed calls of fn, then ctx.n timed ones.
export async function timeLoop(ctx, fn) {
  for (let i = 0; i < ctx.warmup; i++) await fn();
  const times = [];
  for (let i = 0; i < ctx.n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return summarize(times);
}

// onnxruntime-web on one thread (wasm backend, SIMD, no proxy worker) with
// the model at onnxPath, as the ONNX peers of the benchmarks run it in Node.
export async function ortWebSession(onnxPath) {
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  const session = await ort.InferenceSession.create(new Uint8Array(fs.readFileSync(onnxPath)),
    { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  return { ort, session };
}

// Headless Chromium for the browser peers, as the end-to-end tests run it.
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run'];

// A static server on 127.0.0.1 for the browser peers: an empty page, web/, build/wasm/,
// onnxruntime-web's dist/ (at /ort/) and the given files (URL -> path). Nothing else is reachable.
export function serveForBrowser(root, files) {
  const mounts = {
    '/web/': path.join(root, 'web'),
    '/build/wasm/': path.join(root, 'build/wasm'),
    '/ort/': path.join(root, 'node_modules/onnxruntime-web/dist'),
  };
  const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><meta charset="utf-8"><title>bench</title>');
      return;
    }
    let file = files[url];
    if (!file) {
      const prefix = Object.keys(mounts).find((p) => url.startsWith(p));
      if (prefix) {
        const base = mounts[prefix];
        const f = path.resolve(base, `.${url.slice(prefix.length - 1)}`);
        if (f.startsWith(base + path.sep)) file = f;
      }
    }
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream',
      'Content-Length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}`,
      close: () => server.close() }));
  });
}
