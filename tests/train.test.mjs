// tools/train/train.py in fine-tuning mode: a random-weight ViT-B-shaped checkpoint
// (the official vit_b layout, fixtures.mjs) fine-tuned for a few steps on a tiny folder
// of generated images + masks (tools/train/scenes.py); the loss must fall and the result
// must load in the C runtime. The input size is overridden to 256 (--img-size resizes
// pos_embed and the global blocks' rel-pos tables) and the encoder is frozen, which keeps
// this well under a minute on two cores.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { checkpoint } from './fixtures.mjs';
import { python, runOk, SAM, tmpDir } from './helpers.mjs';

test('fine-tuning a ViT-B-shaped checkpoint on a folder lowers the loss', { timeout: 180_000 }, () => {
  const dir = tmpDir('train');
  const data = path.join(dir, 'data');
  fs.mkdirSync(path.join(data, 'images'), { recursive: true });
  for (let i = 0; i < 2; i++) {
    python('tools/train/scenes.py', ['--seed', String(2_000_000_000 + i), '--size', '160x120',
      '--out', path.join(data, 'images', `s${i}.png`), '--masks-dir', path.join(data, 'masks')]);
  }
  assert.ok(fs.readdirSync(path.join(data, 'masks')).length >= 2);
  const out = path.join(dir, 'out');
  const r = python('tools/train/train.py', [
    '--init', checkpoint('vit_b'), '--data', data, '--out', out, '--img-size', '256',
    '--freeze-encoder', '--steps', '24', '--batch', '2', '--targets', '3', '--max-rounds', '2',
    '--lr', '3e-4', '--warmup', '3', '--seed', '1', '--val-every', '0']);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.equal(summary.steps, 24);
  assert.ok(summary.last_loss < 0.8 * summary.first_loss,
    `loss ${summary.first_loss} -> ${summary.last_loss}`);
  // The result keeps the official layout (at the new input size) and runs in the runtime.
  const info = JSON.parse(runOk(SAM, ['info', '--model', path.join(out, 'final_sam.pth')]).stdout);
  assert.equal(info.img_size, 256);
  assert.equal(info.embed_dim, 768);
  assert.deepEqual(info.global_attn_indexes, [2, 5, 8, 11]);
  fs.rmSync(dir, { recursive: true, force: true });
});
