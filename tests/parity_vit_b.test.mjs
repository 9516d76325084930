// End-to-end parity of the native CLI with the PyTorch reference on the
// official ViT-B architecture (random weights in the official layout):
// image embedding, then every kind of prompt on non-square images.
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkpoint } from './fixtures.mjs';
import { tmpDir } from './helpers.mjs';
import { checkImage } from './parity.mjs';

describe('ViT-B parity with the PyTorch reference', { concurrency: false }, () => {
  const dir = tmpDir('vitb');
  const sizes = [[640, 427], [300, 500], [1500, 200], [97, 61]];
  for (const [w, h] of sizes) {
    test(`${w}x${h}: embedding and every prompt kind`, () => {
      const results = checkImage(checkpoint('vit_b'), w, h, dir);
      fs.writeFileSync(path.join(dir, `metrics_${w}x${h}.json`), JSON.stringify(results, null, 1));
    });
  }
});
