// Replays the fuzz targets' committed seed corpora and crash reproducers
// (tests/fuzz/corpus/<target>, tests/fuzz/regressions/<target>) under the
// address + undefined-behaviour sanitizer build: no crash, no sanitizer
// report, no leak, and every refused input comes with a message (the targets
// assert it). Fuzzing itself is tests/fuzz/run.sh, not part of npm test.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT, run } from './helpers.mjs';

const FUZZ_DIR = path.join(ROOT, 'tests/fuzz');
const REPLAY_DIR = path.join(ROOT, 'build/asan/fuzz');
const TARGETS = fs.readdirSync(FUZZ_DIR).filter((f) => /^fuzz_.*\.c$/.test(f)).map((f) => f.slice(5, -2)).sort();

function files(dir) {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
}

describe('fuzz corpora replayed under sanitizers', { skip: !fs.existsSync(REPLAY_DIR) && 'build/asan missing (./build.sh asan)' }, () => {
  test('every parser of untrusted bytes has a target with seeds', () => {
    for (const t of ['safetensors', 'pth', 'zip', 'pickle', 'npy', 'embedding', 'image', 'rle', 'cli_args']) {
      assert.ok(TARGETS.includes(t), `fuzz target ${t} missing`);
    }
    for (const t of TARGETS) assert.ok(files(path.join(FUZZ_DIR, 'corpus', t)).length > 0, `no seeds for ${t}`);
  });

  for (const t of TARGETS) {
    test(t, () => {
      const dirs = ['corpus', 'regressions'].map((d) => path.join(FUZZ_DIR, d, t)).filter((d) => fs.existsSync(d));
      const expected = dirs.reduce((n, d) => n + files(d).length, 0);
      const r = run(path.join(REPLAY_DIR, `fuzz_${t}`), dirs, {
        cwd: ROOT,
        env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1' },
      });
      assert.doesNotMatch(r.stderr, /Sanitizer|runtime error|property failed/, r.stderr);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), `replayed ${expected} inputs`);
    });
  }
});
