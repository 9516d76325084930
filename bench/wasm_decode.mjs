// Times the WASM build through web/sam.js in Node: model load, optionally
// setImage (ViT encoder), and the prompt decode (median of N) for a point,
// checked first against the native CLI's low-res logits when given.
//
//   node bench/wasm_decode.mjs --model M.pth --embedding E.safetensors
//        [--image IMG.png] [--point X,Y] [--n 50] [--cli-logits low_res_logits.npy]
import fs from 'node:fs';
import os from 'node:os';
import { SamPredictor } from '../web/sam.js';
import { readNpy } from '../tests/helpers.mjs';
import { decodePng } from '../tests/png.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) =>
  (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const n = Number(args.n || 50);
const [px, py] = (args.point || '320,200').split(',').map(Number);

let t = performance.now();
const sam = await SamPredictor.load(args.model);
console.log(`model ${sam.modelInfo.id}, gemm ${sam.gemm}: load ${(performance.now() - t).toFixed(0)} ms`);
if (args.image) {
  const img = decodePng(fs.readFileSync(args.image));
  t = performance.now();
  await sam.setImage(img);
  console.log(`setImage ${img.width}x${img.height} (ViT encoder in WASM): ${(performance.now() - t).toFixed(0)} ms`);
}
if (args.embedding) await sam.setEmbedding(fs.readFileSync(args.embedding));
const prompt = { points: [[px, py, 1]] };
const first = await sam.predict(prompt);
if (args['cli-logits']) {
  const ref = readNpy(args['cli-logits']).data;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - first.lowResLogits[i]));
  console.log(`low-res logits vs CLI: max abs diff ${worst.toExponential(2)}`);
  if (!(worst <= 1e-4)) process.exit(1);
}
const times = [];
for (let i = 0; i < n; i++) {
  t = performance.now();
  await sam.predict(prompt);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(`predict (1 point, 3 masks of ${first.masks[0].width}x${first.masks[0].height}): ` +
  `median ${times[n >> 1].toFixed(1)} ms, min ${times[0].toFixed(1)} ms over ${n} (${os.cpus()[0].model}, node ${process.version})`);
sam.dispose();
