// `npm run bench`: runs the benchmarks one after another, each in its own Node process.
//
//   npm run bench                       every benchmark
//   npm run bench -- decoder            only the named ones
//   npm run bench -- decoder --n 50     arguments after the names go to each benchmark
//
// Benchmarks (add new ones here):
//   decoder   bench/decoder.mjs: the mask decoder, ours (WASM in Node and Chromium, native)
//             side by side with onnxruntime-web, onnxruntime-node and PyTorch
//   encoder_tinyvit  bench/encoder.mjs --model vit_t: MobileSAM's image encoder (TinyViT), ours
//             (WASM in Node, native) side by side with onnxruntime-web, onnxruntime-node and
//             PyTorch, one thread
//   encoder_vit  bench/encoder.mjs --model vit_b: SAM's ViT-B image encoder, ours native against
//             onnxruntime-node and PyTorch on 1 and 2 threads, with the single-core GEMM peak
//   amg       bench/amg.mjs: the automatic mask generator (32x32 grid, ViT-B), native and WASM
//             against the official pipeline in PyTorch, decode side
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// name: script, or [script, ...arguments that come before the user's]
const BENCHMARKS = {
  decoder: 'decoder.mjs',
  encoder_tinyvit: ['encoder.mjs', '--model', 'vit_t'],
  encoder_vit: ['encoder.mjs', '--model', 'vit_b'],
  amg: 'amg.mjs',
};

const argv = process.argv.slice(2);
const names = [];
while (argv.length && !argv[0].startsWith('--')) names.push(argv.shift());
for (const name of names) {
  if (!BENCHMARKS[name]) {
    console.error(`unknown benchmark ${name}; benchmarks: ${Object.keys(BENCHMARKS).join(', ')}`);
    process.exit(2);
  }
}
let status = 0;
for (const name of names.length ? names : Object.keys(BENCHMARKS)) {
  const [script, ...fixed] = [BENCHMARKS[name]].flat();
  console.log(`\n=== ${name} (bench/${[script, ...fixed].join(' ')}) ===`);
  const r = spawnSync(process.execPath, [path.join(HERE, script), ...fixed, ...argv], { stdio: 'inherit' });
  if (r.status !== 0) status = 1;
}
process.exit(status);
