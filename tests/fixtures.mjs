// Checkpoints and images the suites share, made once per `npm test` run in
// the cache folder (random weights in the official layout; generated images).
import fs from 'node:fs';
import path from 'node:path';
import { CACHE, python, runOk, SAM } from './helpers.mjs';

function once(file, make) {
  if (!fs.existsSync(file)) {
    // Keep the extension last: the writers choose the format from it.
    const ext = path.extname(file);
    const partial = `${file.slice(0, -ext.length)}.partial-${process.pid}${ext}`;
    make(partial);
    fs.renameSync(partial, file);
  }
  return file;
}

// name -> make_checkpoint.py arguments
const CHECKPOINTS = {
  vit_b: ['--type', 'vit_b', '--seed', '1'],
  // ViT-L and ViT-H widths, heads and global-attention pattern at reduced depth.
  vit_l_d4: ['--type', 'vit_l', '--depth', '4', '--global-attn', '1,3', '--seed', '2'],
  vit_h_d4: ['--type', 'vit_h', '--depth', '4', '--global-attn', '1,3', '--seed', '3'],
  // Small configs for fast tests (and the sanitizer build): window 5 on a
  // 16-token grid pads windows, as the official 14 on 64 does.
  tiny: ['--type', 'tiny', '--window', '5', '--global-attn', '1', '--seed', '4'],
  tiny_other: ['--type', 'tiny', '--window', '5', '--global-attn', '1', '--seed', '5'],
  // The shipped demo model's config (decoder width 128, 512 input, 128x128 low-res masks).
  demo: ['--type', 'demo', '--img-size', '512', '--seed', '7'],
  // MobileSAM (TinyViT encoder): exactly the keys and shapes of mobile_sam.pt.
  vit_t: ['--type', 'vit_t', '--seed', '6'],
};

export function checkpoint(name) {
  const args = CHECKPOINTS[name];
  if (!args) throw new Error(`unknown fixture checkpoint ${name}`);
  return once(path.join(CACHE, `${name}.pth`), (out) =>
    python('tools/sam_ref/make_checkpoint.py', [...args, '--out', out]));
}

export function safetensors(name, dtype = 'f32') {
  const pth = checkpoint(name);
  return once(path.join(CACHE, `${name}.${dtype}.safetensors`), (out) =>
    runOk(SAM, ['convert', pth, out, '--dtype', dtype]));
}

export function image(width, height, seed = 0, mode = 'rgb') {
  return once(path.join(CACHE, `img_${width}x${height}_${seed}_${mode}.png`), (out) =>
    python('tools/sam_ref/make_images.py', ['--size', `${width}x${height}`, '--seed', String(seed),
      '--mode', mode, '--out', out]));
}
