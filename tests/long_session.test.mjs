// Long sessions: 50 image switches and 1000 predictions in a row, natively
// (tests/c/test_long_session.c: heap in use exactly flat; under the sanitizer
// build LeakSanitizer checks for leaks) and in WASM through SamPredictor in
// Node: after a warm-up, the C heap in use inside the module is flat, the
// module's memory does not grow, and the embedding cache stays within its
// cap. The numbers are printed (test diagnostics) for the record.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SamPredictor } from '../web/sam.js';
import { safetensors } from './fixtures.mjs';
import { BUILD, ROOT, run } from './helpers.mjs';

const IMAGES = 50;
const PREDICTIONS_PER_IMAGE = 20;
const CACHE_CAP = 4 * 1024 * 1024;  // room for a few tiny-model embeddings, so the LRU evicts
const SIZES = [[97, 61], [64, 120], [130, 130]];

function makeImage(width, height, seed) {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = (i * 7 + seed * 13) & 255;
    data[3 * i + 1] = ((i % width) * 5 + seed * 29) & 255;
    data[3 * i + 2] = (Math.floor(i / width) ^ seed) & 255;
  }
  return { data, width, height };
}

async function session(sam, first, count, log) {
  let previous = null;
  for (let i = first; i < first + count; i++) {
    const [w, h] = SIZES[i % SIZES.length];
    // Every third image comes back once (a cache hit); the rest are new.
    const seed = i % 3 === 2 ? i - 2 : i;
    await sam.setImage(makeImage(w, h, seed));
    for (let k = 0; k < PREDICTIONS_PER_IMAGE; k++) {
      const kind = k % 5;
      const prompt = {
        points: kind === 2 ? [] : [[w / 2, h / 2, 1], [w / 5, h / 3, 0]].slice(0, 1 + (k % 2)),
        box: kind === 2 || kind === 3 ? [w * 0.1, h * 0.2, w * 0.7, h * 0.8] : undefined,
        maskInput: kind === 4 && previous ? previous : undefined,
      };
      const r = await sam.predict(prompt, { output: ['all', 'best', 'lowres'][k % 3] });
      previous = r.lowResLogits.slice(0, r.lowResSize * r.lowResSize);
      log.predictions++;
    }
    log.switches++;
  }
}

test('native: 50 image switches and 1000 predictions, heap in use flat', () => {
  const model = safetensors('tiny');
  for (const build of new Set([BUILD, path.join(ROOT, 'build/asan')])) {
    const bin = path.join(build, 'tests/test_long_session');
    if (!fs.existsSync(bin)) continue;
    const r = run(bin, [model, String(IMAGES)]);
    const lines = r.stdout.split('\n').filter((l) => /session|heap|RSS/.test(l));
    console.log(`${path.relative(ROOT, build)}: ${lines.join('; ')}`);
    assert.equal(r.status, 0, r.stdout + r.stderr);  // includes LeakSanitizer's exit status
    assert.match(r.stdout, new RegExp(`session: ${IMAGES} image switches, ${IMAGES * PREDICTIONS_PER_IMAGE} predictions`));
    assert.match(r.stdout, /\n\d+ passed, 0 failed\n?$/);
  }
});

test('WASM: 50 image switches and 1000 predictions, memory flat and cache within its cap', async () => {
  const sam = await SamPredictor.load(safetensors('tiny'), { cacheBytes: CACHE_CAP });
  try {
    const log = { switches: 0, predictions: 0 };
    await session(sam, 1000, 6, log);  // warm-up: every size and prompt kind
    const before = await sam.memoryUsage();
    const rssBefore = process.memoryUsage().rss;
    log.switches = log.predictions = 0;
    await session(sam, 0, IMAGES, log);
    const after = await sam.memoryUsage();
    const rssAfter = process.memoryUsage().rss;
    const mb = (b) => (b / 1048576).toFixed(1);
    console.log(`WASM: ${log.switches} switches, ${log.predictions} predictions; C heap in use ${before.heapInUse} -> ${after.heapInUse} bytes; `
      + `WASM memory ${mb(before.memoryBytes)} -> ${mb(after.memoryBytes)} MiB; cache ${mb(before.cacheBytes)} -> ${mb(after.cacheBytes)} MiB (cap ${mb(CACHE_CAP)}); `
      + `process RSS ${mb(rssBefore)} -> ${mb(rssAfter)} MiB`);
    assert.equal(log.predictions, IMAGES * PREDICTIONS_PER_IMAGE);
    assert.equal(after.heapInUse, before.heapInUse, 'C heap in use inside the module grew');
    assert.equal(after.memoryBytes, before.memoryBytes, 'WASM memory grew');
    assert.ok(after.cacheBytes <= CACHE_CAP && after.cacheBytes > 0, `cache ${after.cacheBytes} bytes`);
  } finally {
    sam.dispose();
  }
});
