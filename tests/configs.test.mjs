// Config inference from tensor shapes (ViT-L and ViT-H widths, heads and
// global-attention patterns at reduced depth; a small custom config) and
// encoder parity on each. The tiny config also runs under the sanitizer build.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkpoint } from './fixtures.mjs';
import { ROOT, runOk, SAM, tmpDir } from './helpers.mjs';
import { checkImage } from './parity.mjs';

const ASAN_SAM = path.join(ROOT, 'build/asan/sam');

function info(model, sam = SAM) {
  return JSON.parse(runOk(sam, ['info', '--model', model]).stdout);
}

describe('config inference', () => {
  test('ViT-L widths and heads at depth 4', () => {
    const c = info(checkpoint('vit_l_d4'));
    assert.deepEqual([c.embed_dim, c.depth, c.num_heads, c.head_dim, c.window_size, c.mlp_dim],
      [1024, 4, 16, 64, 14, 4096]);
    assert.deepEqual(c.global_attn_indexes, [1, 3]);
    assert.equal(c.model_type, 'vit_custom');
  });
  test('ViT-H widths and heads at depth 4', () => {
    const c = info(checkpoint('vit_h_d4'));
    assert.deepEqual([c.embed_dim, c.depth, c.num_heads, c.head_dim, c.window_size, c.mlp_dim],
      [1280, 4, 16, 80, 14, 5120]);
    assert.deepEqual(c.global_attn_indexes, [1, 3]);
  });
  test('official ViT-B is recognised from its shapes', () => {
    const c = info(checkpoint('vit_b'));
    assert.equal(c.model_type, 'vit_b');
    assert.deepEqual(c.global_attn_indexes, [2, 5, 8, 11]);
    assert.deepEqual([c.img_size, c.num_heads, c.prompt_dim, c.decoder_depth, c.num_mask_tokens],
      [1024, 12, 256, 2, 4]);
  });
  test('the demo model\'s config', () => {
    const c = info(checkpoint('demo'));
    assert.deepEqual([c.img_size, c.embed_dim, c.depth, c.prompt_dim, c.decoder_heads],
      [512, 160, 6, 128, 8]);
  });
  test('a small custom config', () => {
    const c = info(checkpoint('tiny'));
    assert.deepEqual([c.img_size, c.embed_dim, c.depth, c.window_size], [256, 96, 2, 5]);
    assert.deepEqual(c.global_attn_indexes, [1]);
  });
  test('the file name plays no part: a ViT-H checkpoint named like ViT-B', () => {
    const dir = tmpDir('names');
    const renamed = path.join(dir, 'sam_vit_b_01ec64.pth');
    fs.copyFileSync(checkpoint('vit_h_d4'), renamed);
    assert.equal(info(renamed).embed_dim, 1280);
  });
});

describe('encoder parity on other configs', { concurrency: false }, () => {
  const dir = tmpDir('configs');
  test('ViT-L shapes (depth 4)', () => {
    checkImage(checkpoint('vit_l_d4'), 300, 500, dir, { prompts: ['point'] });
  });
  test('ViT-H shapes (depth 4)', () => {
    checkImage(checkpoint('vit_h_d4'), 640, 427, dir, { prompts: ['box'] });
  });
  test('small config, every prompt kind', () => {
    checkImage(checkpoint('tiny'), 97, 61, dir);
  });
  test('the demo model\'s config (decoder width 128, input 512), every prompt kind', () => {
    checkImage(checkpoint('demo'), 640, 480, dir);
  });
  test('small config under address and undefined-behaviour sanitizers', { skip: !fs.existsSync(ASAN_SAM) && 'build/asan missing (./build.sh asan)' }, () => {
    checkImage(checkpoint('tiny'), 640, 427, dir, { sam: ASAN_SAM });
  });
});
