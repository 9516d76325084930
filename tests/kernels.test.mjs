// Compute kernels, the ViT encoder and the decoder attention: the C unit
// tests (every SIMD variant against its scalar reference; the encoder against
// a naive double-precision transcription of image_encoder.py; the rearranged
// decoder attentions and the factored transformer against the
// straightforward forms), natively and with SAM_SCALAR=1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { BUILD, ROOT, runOk } from './helpers.mjs';

const PROGRAMS = ['test_gemm', 'test_simd_ops', 'test_vit_encoder', 'test_decoder_attention',
  'test_decoder_lowrank', 'test_thread_pool', 'test_winograd', 'test_tinyvit_band'];
// The same programs built with address and undefined-behaviour sanitizers.
const BUILDS = [['', BUILD], [' [sanitizers]', path.join(ROOT, 'build/asan')]]
  .filter(([, dir]) => fs.existsSync(path.join(dir, 'tests')));

for (const [label, dir] of BUILDS) for (const name of PROGRAMS) {
  for (const scalar of ['0', '1']) {
    test(`${name}${scalar === '1' ? ' (SAM_SCALAR=1)' : ''}${label}`, () => {
      const env = { ...process.env, SAM_SCALAR: scalar };
      const { stdout } = runOk(path.join(dir, 'tests', name), [], { env });
      const m = /(\d+) passed, (\d+) failed/.exec(stdout);
      assert.ok(m, `${name}: no summary line\n${stdout}`);
      assert.equal(Number(m[2]), 0, stdout);
      assert.ok(Number(m[1]) > 0, stdout);
    });
  }
}

test('SAM_SCALAR=1 selects the scalar GEMM and softmax/GELU', () => {
  const env = { ...process.env, SAM_SCALAR: '1' };
  for (const name of ['test_gemm', 'test_simd_ops']) {
    const { stdout } = runOk(path.join(BUILD, 'tests', name), [], { env });
    assert.match(stdout, /active variant: scalar/, `${name}\n${stdout}`);
  }
});
