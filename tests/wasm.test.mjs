// The WebAssembly build (build/wasm/, web/sam.js in-process under Node)
// against the native CLI: the same embedding and prompts give the same
// low-res logits (1e-4) and identical masks; setImage matches `sam encode`;
// conversion is byte-identical; bad input rejects and leaves the predictor
// usable; latest-wins scheduling; the wasm simd128 GEMM, softmax, GELU and
// LayerNorms against their scalar references.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SamPredictor } from '../web/sam.js';
import { checkpoint, image, safetensors } from './fixtures.mjs';
import { readNpy, ROOT, run, runOk, SAM, tmpDir } from './helpers.mjs';
import { decodePng } from './png.mjs';

const WASM = path.join(ROOT, 'build/wasm');
const LOGITS_ATOL = 1e-4;
// Native (AVX2/AVX-512 FMA, SIMD erf) and WASM (mul+add, libm erff) round
// differently; through the 2-block tiny encoder that stays near 1e-7.
const EMBEDDING_REL_L2 = 1e-5;

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / den);
}

function maxAbs(a, b) {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// The float32 `image_embeddings` tensor of an embedding file.
function embeddingOf(bytes) {
  const buf = Buffer.from(bytes);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + len));
  const t = header.image_embeddings;
  assert.equal(t.dtype, 'F32');
  const body = buf.subarray(8 + len + t.data_offsets[0], 8 + len + t.data_offsets[1]);
  return new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length));
}

function readPng(file) {
  return decodePng(fs.readFileSync(file));
}

test('build/wasm exists (./build.sh wasm)', () => {
  for (const f of ['sam_wasm.mjs', 'sam_wasm.wasm', 'tests/test_gemm.cjs', 'tests/test_simd_ops.cjs']) {
    assert.ok(fs.existsSync(path.join(WASM, f)), `missing build/wasm/${f}: run ./build.sh wasm`);
  }
});

test('wasm simd128 GEMM matches the scalar reference around the tile', (t) => {
  const r = run('node', [path.join(WASM, 'tests/test_gemm.cjs')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /variant wasmsimd ok/);
  assert.match(r.stdout, /active variant: wasmsimd/);
  assert.match(r.stdout, / 0 failed/);
  const bench = run('node', [path.join(WASM, 'tests/test_gemm.cjs'), '--bench']);
  assert.equal(bench.status, 0, bench.stdout + bench.stderr);
  for (const line of bench.stdout.trim().split('\n')) t.diagnostic(line);
});

test('wasm simd128 softmax, GELU and LayerNorms match the scalar references', (t) => {
  const program = path.join(WASM, 'tests/test_simd_ops.cjs');
  const r = run('node', [program]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /variant wasmsimd ok/);
  assert.match(r.stdout, /variant scalar +ok/);
  assert.match(r.stdout, /active variant: wasmsimd/);
  assert.match(r.stdout, / 0 failed/);
  const bench = run('node', [program, '--bench']);
  assert.equal(bench.status, 0, bench.stdout + bench.stderr);
  for (const line of bench.stdout.trim().split('\n')) t.diagnostic(line);
});

test('wasm TinyViT: reused repeated rows give the embedding of computing every row, bitwise', () => {
  const r = run('node', [path.join(WASM, 'tests/test_tinyvit_band.cjs')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, / 0 failed/);
});

describe('WASM predictor vs the native CLI', () => {
  const dir = tmpDir('wasm');
  const pth = checkpoint('tiny');
  const img = image(97, 61, 11);
  const emb = path.join(dir, 'emb.safetensors');
  let sam;

  before(async () => {
    runOk(SAM, ['encode', '--model', pth, '--image', img, '--out', emb]);
    sam = await SamPredictor.load(safetensors('tiny'));
  });
  after(() => sam && sam.dispose());

  test('modelInfo names the model and its config', () => {
    assert.equal(sam.modelInfo.type, 'vit_custom');
    assert.match(sam.modelInfo.id, /^vit_custom-96x2-g16-/);
    assert.equal(sam.modelInfo.config.embed_dim, 96);
    assert.equal(sam.modelInfo.config.low_res, 64);
    assert.equal(sam.gemm, 'wasmsimd');
  });

  test('load options (wasmUrl, onProgress); getEmbedding output is read by the CLI', async () => {
    const stages = new Set();
    const other = await SamPredictor.load(pth, {
      wasmUrl: path.join(WASM, 'sam_wasm.wasm'), onProgress: (p) => stages.add(p.stage), cache: 'none',
    });
    try {
      assert.deepEqual([...stages], ['download', 'load']);
      assert.equal(other.modelInfo.id, sam.modelInfo.id);
      await other.setImage(readPng(img));
      const f16 = path.join(dir, 'wasm_emb16.safetensors');
      fs.writeFileSync(f16, await other.getEmbedding({ dtype: 'f16' }));
      runOk(SAM, ['predict', '--model', pth, '--embedding', f16, '--point', '5,5,1', '--out', path.join(dir, 'from-wasm-emb')]);
    } finally {
      other.dispose();
    }
    await assert.rejects(other.predict({ points: [[1, 1, 1]] }), /disposed/);
  });

  // name -> [CLI args, JS prompt]; the mask-input case reuses the point
  // case's logits (mask 2), as --mask-input --mask-index 2.
  const cases = [
    ['point', ['--point', '40,30,1'], { points: [[40, 30, 1]] }],
    ['3 points', ['--point', '40,30,1', '--point', '70,20,1', '--point', '10,50,0'],
      { points: [[40, 30, 1], [70, 20, 1], [10, 50, 0]] }],
    ['box', ['--box', '10,10,60,50'], { box: [10, 10, 60, 50] }],
    ['box + point', ['--box', '10,10,60,50', '--point', '30,25,0'], { box: [10, 10, 60, 50], points: [[30, 25, 0]] }],
    ['point + mask input', ['--point', '40,30,1', '--point', '80,40,1', '--mask-input', 'MASK', '--mask-index', '2'],
      { points: [[40, 30, 1], [80, 40, 1]], maskInput: 'MASK' }],
  ];

  test('same embedding, same prompts: logits within 1e-4, identical masks', async () => {
    await sam.setEmbedding(fs.readFileSync(emb));
    assert.deepEqual(sam.imageSize, { width: 97, height: 61 });
    for (const [name, args, prompt] of cases) {
      const out = path.join(dir, name.replace(/\W+/g, '_'));
      const cliArgs = args.map((a) => (a === 'MASK' ? path.join(dir, 'point', 'low_res_logits.npy') : a));
      runOk(SAM, ['predict', '--model', pth, '--embedding', emb, ...cliArgs, '--out', out]);
      const jsPrompt = { ...prompt };
      // The same mask input on both sides: the CLI's logits of the point
      // case (the WASM ones differ by ~1e-5, and random weights amplify an
      // input difference through the mask downscaling ~10x).
      if (jsPrompt.maskInput) {
        jsPrompt.maskInput = Float32Array.from(
          readNpy(path.join(dir, 'point', 'low_res_logits.npy')).data.subarray(2 * 64 * 64, 3 * 64 * 64));
      }
      const r = await sam.predict(jsPrompt);
      const ref = readNpy(path.join(out, 'low_res_logits.npy'));
      const json = JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8'));
      assert.equal(r.masks.length, json.masks.length, name);
      assert.equal(r.lowResSize, 64);
      const err = maxAbs(r.lowResLogits, ref.data);
      assert.ok(err <= LOGITS_ATOL, `${name}: low-res logits max abs diff ${err}`);
      json.masks.forEach((m, k) => {
        assert.ok(Math.abs(r.masks[k].score - m.score) < 1e-4, `${name} mask ${k}: score ${r.masks[k].score} vs ${m.score}`);
        assert.ok(Math.abs(r.masks[k].stability - m.stability) < 1e-4, `${name} mask ${k}: stability`);
        const png = readPng(path.join(out, m.file));
        assert.equal(png.width, 97);
        assert.equal(png.height, 61);
        const cli = Uint8Array.from(png.data, (v) => (v ? 1 : 0));
        assert.deepEqual(r.masks[k].data, cli, `${name}: mask ${k} differs from the CLI's`);
        assert.equal(r.masks[k].data.reduce((a, b) => a + b, 0), m.area);
      });
    }
  });

  test('setImage encodes like `sam encode` (RGB and RGBA input), and caches', async () => {
    const rgbPng = readPng(img);
    let progress = 0;
    const first = await sam.setImage(rgbPng, { onProgress: (p) => { assert.equal(p.stage, 'encode'); progress = p.done / p.total; } });
    assert.deepEqual(first, { width: 97, height: 61, cached: false });
    assert.equal(progress, 1);
    const rel = relL2(embeddingOf(await sam.getEmbedding()), embeddingOf(fs.readFileSync(emb)));
    assert.ok(rel < EMBEDDING_REL_L2, `embedding rel L2 ${rel}`);
    assert.equal((await sam.setImage(rgbPng)).cached, 'memory');

    const rgba = image(64, 48, 3, 'rgba');
    const embRgba = path.join(dir, 'emb_rgba.safetensors');
    runOk(SAM, ['encode', '--model', pth, '--image', rgba, '--out', embRgba]);
    const png = readPng(rgba);
    assert.equal(png.channels, 4);
    await sam.setImage({ data: new Uint8ClampedArray(png.data), width: 64, height: 48 });
    const relRgba = relL2(embeddingOf(await sam.getEmbedding()), embeddingOf(fs.readFileSync(embRgba)));
    assert.ok(relRgba < EMBEDDING_REL_L2, `RGBA embedding rel L2 ${relRgba}`);
  });

  test('.pth conversion in WASM is byte-identical to `sam convert`', async () => {
    for (const dtype of ['f32', 'f16']) {
      const bytes = await SamPredictor.convert(fs.readFileSync(pth), { dtype });
      assert.ok(Buffer.from(bytes).equals(fs.readFileSync(safetensors('tiny', dtype))), `${dtype} differs`);
    }
  });

  test('bad input rejects with a clear error and the predictor stays usable', async () => {
    await sam.setEmbedding(fs.readFileSync(emb));
    const good = { points: [[40, 30, 1]] };
    const expectOk = async () => assert.equal((await sam.predict(good)).masks.length, 3);

    const other = path.join(dir, 'other.safetensors');
    runOk(SAM, ['encode', '--model', checkpoint('tiny_other'), '--image', img, '--out', other]);
    await assert.rejects(sam.setEmbedding(fs.readFileSync(other)), /embedding was made by another model/);
    await expectOk();
    const embBytes = fs.readFileSync(emb);
    await assert.rejects(sam.setEmbedding(embBytes.subarray(0, embBytes.length - 100)), /cannot use the embedding: /);
    await expectOk();
    const bad = [
      [{ points: [[NaN, 3, 1]] }, /point 0 has a non-finite coordinate/],
      [{ points: [] }, /empty prompt/],
      [{}, /empty prompt/],
      [{ points: [[1, 2, 2]] }, /label 2; labels are 1 \(foreground\) or 0 \(background\)/],
      [{ points: [[1, 2]] }, /point 0 must be \[x, y, label\]/],
      [{ box: [1, 2, NaN, 4] }, /box has a non-finite coordinate/],
      [{ box: [1, 2, 3] }, /box must be/],
      [{ maskInput: new Float32Array(10) }, /maskInput must be a Float32Array of 64x64/],
      [null, /prompt must be an object/],
    ];
    for (const [prompt, message] of bad) {
      await assert.rejects(sam.predict(prompt), message, JSON.stringify(prompt));
      await expectOk();
    }
    await assert.rejects(sam.setImage({ data: new Uint8Array(10), width: 4, height: 4 }), /expected RGBA/);
    await expectOk();
    // A truncated or foreign checkpoint: load rejects with the loader's message.
    const ckpt = fs.readFileSync(pth);
    await assert.rejects(SamPredictor.load(ckpt.subarray(0, ckpt.length >> 1)), /cannot load the model: .+/);
    await assert.rejects(SamPredictor.load(new Uint8Array(100)), /not a checkpoint/);
    await expectOk();
    // Limits: 65 points, an image wider than 16384 pixels.
    await assert.rejects(sam.predict({ points: Array.from({ length: 65 }, () => [1, 2, 1]) }), /65 points; at most 64/);
    await assert.rejects(sam.setImage({ data: new Uint8Array(3 * 16385), width: 16385, height: 1 }), /16385x1 is outside 1\.\.16384/);
    await sam.setEmbedding(fs.readFileSync(emb));
    await expectOk();
  });

  test('WASM memory: an allocation beyond the 4 GiB maximum fails with NULL, not an abort', async () => {
    // The module's malloc returns NULL when the memory cannot grow (every caller
    // in the core turns that into an "out of memory" error); the tab survives.
    const engine = sam._transport.engine;
    assert.equal(engine.M._malloc(4095 * 1024 * 1024), 0);
    const block = engine.M._malloc(1 << 20);
    assert.notEqual(block, 0);
    engine.M._free(block);
    await sam.setEmbedding(fs.readFileSync(emb));
    assert.equal((await sam.predict({ points: [[40, 30, 1]] })).masks.length, 3);
  });

  test("output 'best' and 'lowres' return a subset of 'all', unchanged", async () => {
    await sam.setEmbedding(fs.readFileSync(emb));
    const prompt = { points: [[40, 30, 1]] };
    const all = await sam.predict(prompt);
    const best = await sam.predict(prompt, { output: 'best' });
    const low = await sam.predict(prompt, { output: 'lowres' });
    const top = all.masks.reduce((b, m, i) => (m.score > all.masks[b].score ? i : b), 0);
    assert.equal(best.masks.length, 1);
    assert.equal(best.masks[0].index, top);
    assert.deepEqual(best.masks[0].data, all.masks[top].data);
    assert.equal(best.masks[0].stability, all.masks[top].stability);
    assert.equal(low.masks.length, 0);
    for (const r of [best, low]) {
      assert.deepEqual(r.scores, all.scores);
      assert.deepEqual(r.lowResLogits, all.lowResLogits);
    }
    await assert.rejects(sam.predict(prompt, { output: 'everything' }), /output must be one of all, best, lowres/);
  });

  test('latest-wins: of 5 quick predicts only the first and the last complete', async () => {
    await sam.setEmbedding(fs.readFileSync(emb));
    const calls = [0, 1, 2, 3, 4].map((i) => sam.predict({ points: [[10 + 10 * i, 30, 1]] }, { latest: true })
      .then((r) => r.masks.length, (e) => e.name));
    assert.deepEqual(await Promise.all(calls), [3, 'AbortError', 'AbortError', 'AbortError', 3]);
    // The last one decoded its own prompt.
    const last = await sam.predict({ points: [[50, 30, 1]] });
    const again = await sam.predict({ points: [[50, 30, 1]] }, { latest: true });
    assert.deepEqual(again.lowResLogits, last.lowResLogits);
  });
});

// The browser's parsers are the same C, but WASM has a 32-bit size_t: the
// fuzz targets' checkpoint and embedding inputs (seeds and reproducers) go
// through the module too. Each loads or is refused with a message; the
// module keeps working after every one.
test('fuzz inputs through the WASM module (32-bit size_t): loaded or refused, never an abort', async () => {
  const fuzzDir = path.join(ROOT, 'tests/fuzz');
  const inputs = (target) => ['corpus', 'regressions'].flatMap((d) => {
    const dir = path.join(fuzzDir, d, target);
    return fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
  });
  const sam = await SamPredictor.load(path.join(ROOT, 'demo/models/sam_demo.safetensors'));
  try {
    let refused = 0, loaded = 0;
    for (const file of [...inputs('safetensors'), ...inputs('pth'), ...inputs('zip')]) {
      try {
        (await SamPredictor.load(fs.readFileSync(file))).dispose();
        loaded++;
      } catch (e) {
        assert.match(e.message, /\S+: \S/, `${file}: ${e.message}`);
        assert.doesNotMatch(e.message, /abort|RuntimeError|unreachable|memory access out of bounds/i, file);
        refused++;
      }
    }
    for (const file of inputs('embedding')) {
      try {
        await sam.setEmbedding(fs.readFileSync(file));
        assert.equal((await sam.predict({ points: [[10, 10, 1]] })).masks.length, 3);
        loaded++;
      } catch (e) {
        assert.doesNotMatch(e.message, /abort|RuntimeError|unreachable|memory access out of bounds/i, file);
        refused++;
      }
    }
    assert.ok(refused > 10 && loaded >= 1, `refused ${refused}, loaded ${loaded}`);
  } finally {
    sam.dispose();
  }
});
