// Checkpoint I/O: the C unit tests, and real torch.save files read back by
// tests/c/pth_dump and compared with the sums PyTorch computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, ROOT, run, runOk, PYTHON, tmpDir } from './helpers.mjs';

const TEST_IO = path.join(BUILD, 'tests', 'test_io');
const PTH_DUMP = path.join(BUILD, 'tests', 'pth_dump');

// Writes the checkpoints into argv[1] and prints the reference per tensor.
const MAKE_CHECKPOINTS = String.raw`
import json, os, sys, torch
out = sys.argv[1]
torch.manual_seed(0)
sd = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2)).state_dict()
base = torch.randn(4, 5)
sd['f32'] = torch.randn(4, 5)
sd['f16'] = torch.randn(3, 7).half()
sd['f16_special'] = torch.tensor([6e-8, -6.1e-5, 65504.0, -0.0, 1e-7], dtype=torch.float16)
sd['bf16'] = torch.randn(6).bfloat16()
sd['f64'] = torch.randn(2, 2).double()
sd['i64'] = torch.arange(5)
sd['flag'] = torch.tensor([True, False, True])
sd['transposed'] = torch.randn(3, 4).t()
sd['slice'] = base[1:, 2:]
sd['base'] = base
sd['param'] = torch.nn.Parameter(torch.randn(2, 3))
sd['scalar'] = torch.tensor(3.5)
sd['empty'] = torch.zeros(0, 3)
assert not sd['transposed'].is_contiguous() and not sd['slice'].is_contiguous()
torch.save(sd, os.path.join(out, 'state.pth'))
torch.save({'model': sd, 'epoch': 3}, os.path.join(out, 'wrapped.pth'))
torch.save(sd, os.path.join(out, 'legacy.pth'), _use_new_zipfile_serialization=False)

class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + os.path.join(out, 'pwned'),))
torch.save({'w': torch.zeros(2), 'x': Evil()}, os.path.join(out, 'evil.pth'))

names = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
         torch.int64: 'I64', torch.bool: 'BOOL'}
print(json.dumps([{'name': k, 'dtype': names[v.dtype], 'shape': list(v.shape),
                   'sum': v.detach().double().sum().item()} for k, v in sd.items()]))
`;

function dump(file) {
  return runOk(PTH_DUMP, [file]).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function assertSameTensors(got, want) {
  assert.deepEqual(got.map((t) => t.name), want.map((t) => t.name), 'tensor names in state_dict order');
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    assert.equal(g.dtype, w.dtype, `${w.name} dtype`);
    assert.deepEqual(g.shape, w.shape, `${w.name} shape`);
    const tol = 1e-9 * Math.max(1, Math.abs(w.sum));
    assert.ok(Math.abs(g.sum - w.sum) <= tol, `${w.name} sum ${g.sum} vs torch ${w.sum}`);
  }
}

test('C I/O unit tests pass', () => {
  const r = runOk(TEST_IO, []);
  assert.match(r.stdout, /\n\d+ passed, 0 failed\n?$/);
});

// Every truncation and corruption case again under the sanitizers.
const ASAN_TEST_IO = path.join(ROOT, 'build/asan/tests/test_io');
test('C I/O unit tests pass under address and undefined-behaviour sanitizers',
  { skip: !fs.existsSync(ASAN_TEST_IO) && 'build/asan missing (./build.sh asan)' }, () => {
    const r = runOk(ASAN_TEST_IO, []);
    assert.match(r.stdout, /\n\d+ passed, 0 failed\n?$/);
  });

test('real torch.save checkpoints', async (t) => {
  const dir = tmpDir('io');
  const ref = JSON.parse(runOk(PYTHON, ['-c', MAKE_CHECKPOINTS, dir]).stdout);
  try {
    await t.test('state_dict with f32/f16/bf16/f64/int/bool, strided views and a Parameter', () => {
      assertSameTensors(dump(path.join(dir, 'state.pth')), ref);
    });

    await t.test('training checkpoint wrapping the state_dict under "model"', () => {
      assertSameTensors(dump(path.join(dir, 'wrapped.pth')), ref);
    });

    await t.test('pickle calling os.system is refused, never executed', () => {
      const r = run(PTH_DUMP, [path.join(dir, 'evil.pth')]);
      assert.notEqual(r.status, 0);
      // os.system pickles as posix.system on Linux.
      assert.match(r.stderr, /checkpoint refuses pickle global '(os|posix)\.system'/);
      assert.equal(fs.existsSync(path.join(dir, 'pwned')), false);
    });

    await t.test('legacy (pre-1.6) format is refused with a hint', () => {
      const r = run(PTH_DUMP, [path.join(dir, 'legacy.pth')]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /legacy pre-1\.6 torch\.save format not supported/);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
