// The CLI's contract: conversion (f32 exact, f16 close), embeddings written
// once and reused, result.json and the output files, default output counts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkpoint, image, safetensors } from './fixtures.mjs';
import { BUILD, readNpy, ROOT, run, runOk, SAM, tmpDir } from './helpers.mjs';

// f16 weights round each parameter by up to 2^-11 relative; through the
// encoder and decoder that moves logits by ~1e-3 relative on random weights.
const F16_LOGITS_REL_L2 = 2e-2;

function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / den);
}

function readSafetensorsHeader(file) {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return JSON.parse(buf.toString('utf8', 8, 8 + len));
}

describe('sam CLI', () => {
  const dir = tmpDir('cli');
  const pth = checkpoint('tiny');
  const img = image(97, 61, 11);

  test('convert keeps the official names and records the config', () => {
    const header = readSafetensorsHeader(safetensors('tiny'));
    assert.equal(header.__metadata__.model_type, 'vit_custom');
    assert.match(header.__metadata__.config, /embed_dim=96,depth=2/);
    assert.deepEqual(header['image_encoder.pos_embed'].shape, [1, 16, 16, 96]);
    assert.equal(header['mask_decoder.iou_token.weight'].dtype, 'F32');
    const half = readSafetensorsHeader(safetensors('tiny', 'f16'));
    assert.equal(half['mask_decoder.iou_token.weight'].dtype, 'F16');
    assert.ok(fs.statSync(safetensors('tiny', 'f16')).size < 0.6 * fs.statSync(safetensors('tiny')).size);
  });

  test('.pth and its f32 safetensors give identical masks; f16 stays close', () => {
    const outs = {};
    for (const [name, model] of [['pth', pth], ['f32', safetensors('tiny')], ['f16', safetensors('tiny', 'f16')]]) {
      const out = path.join(dir, `same-${name}`);
      runOk(SAM, ['predict', '--model', model, '--image', img, '--point', '40,30,1', '--out', out]);
      outs[name] = out;
    }
    const a = readNpy(path.join(outs.pth, 'low_res_logits.npy'));
    const b = readNpy(path.join(outs.f32, 'low_res_logits.npy'));
    assert.deepEqual(Buffer.from(a.data.buffer), Buffer.from(b.data.buffer));
    for (let k = 0; k < 3; k++) {
      assert.deepEqual(fs.readFileSync(path.join(outs.pth, `mask_${k}.png`)),
        fs.readFileSync(path.join(outs.f32, `mask_${k}.png`)));
    }
    const c = readNpy(path.join(outs.f16, 'low_res_logits.npy'));
    assert.ok(relL2(c.data, a.data) < F16_LOGITS_REL_L2, `f16 logits rel L2 ${relL2(c.data, a.data)}`);
  });

  test('an embedding is written once and decodes like the image', () => {
    const emb = path.join(dir, 'emb.safetensors');
    runOk(SAM, ['encode', '--model', pth, '--image', img, '--out', emb]);
    const header = readSafetensorsHeader(emb);
    assert.equal(header.__metadata__.format, 'sam-embedding');
    assert.equal(header.__metadata__.original_size, '61,97');
    assert.equal(header.__metadata__.input_size, '161,256');
    assert.deepEqual(header.image_embeddings.shape, [1, 256, 16, 16]);
    const fromImage = path.join(dir, 'from-image');
    const fromEmb = path.join(dir, 'from-emb');
    runOk(SAM, ['predict', '--model', pth, '--image', img, '--box', '10,10,60,50', '--out', fromImage]);
    runOk(SAM, ['predict', '--model', safetensors('tiny'), '--embedding', emb, '--box', '10,10,60,50', '--out', fromEmb]);
    assert.deepEqual(fs.readFileSync(path.join(fromImage, 'low_res_logits.npy')),
      fs.readFileSync(path.join(fromEmb, 'low_res_logits.npy')));
    // An f16 embedding of the same model is accepted too.
    const emb16 = path.join(dir, 'emb16.safetensors');
    runOk(SAM, ['encode', '--model', safetensors('tiny', 'f16'), '--image', img, '--out', emb16, '--dtype', 'f16']);
    runOk(SAM, ['predict', '--model', pth, '--embedding', emb16, '--point', '5,5,1', '--out', path.join(dir, 'e16')]);
  });

  test('encode --images DIR: every image, the same bytes as one by one, skips what exists, reports bad files', () => {
    const inDir = path.join(dir, 'folder-in');
    const outDir = path.join(dir, 'folder-out');
    fs.mkdirSync(inDir, { recursive: true });
    fs.copyFileSync(img, path.join(inDir, 'a.png'));
    fs.copyFileSync(image(64, 48, 3, 'rgba'), path.join(inDir, 'b.PNG'));
    fs.writeFileSync(path.join(inDir, 'broken.png'), 'not an image');
    fs.writeFileSync(path.join(inDir, 'notes.txt'), 'not listed');
    const first = run(SAM, ['encode', '--model', pth, '--images', inDir, '--out', outDir, '--threads', '2']);
    assert.equal(first.status, 1, 'a failed image makes the exit status 1');
    assert.match(first.stderr, /broken\.png: .*not a readable/);
    assert.match(first.stderr, /2 encoded, 0 already there \(skipped\), 1 failed/);
    assert.match(first.stderr, /\[#+\] 3\/3 images, [\d.]+ images\/min, ETA/);
    assert.deepEqual(fs.readdirSync(outDir).sort(), ['a.png.safetensors', 'b.PNG.safetensors']);
    for (const name of ['a.png', 'b.PNG']) {
      const single = path.join(dir, `single-${name}.safetensors`);
      runOk(SAM, ['encode', '--model', pth, '--image', path.join(inDir, name), '--out', single]);
      assert.deepEqual(fs.readFileSync(path.join(outDir, `${name}.safetensors`)), fs.readFileSync(single), name);
    }
    // A second run skips the embeddings already written (and still reports the bad file).
    const before = fs.statSync(path.join(outDir, 'a.png.safetensors')).mtimeMs;
    fs.rmSync(path.join(inDir, 'broken.png'));
    const second = runOk(SAM, ['encode', '--model', pth, '--images', inDir, '--out', outDir]);
    assert.match(second.stderr, /0 encoded, 2 already there \(skipped\), 0 failed/);
    assert.equal(fs.statSync(path.join(outDir, 'a.png.safetensors')).mtimeMs, before);
    assert.match(run(SAM, ['encode', '--model', pth, '--images', path.join(dir, 'no-such-folder'), '--out', outDir]).stderr,
      /cannot read the folder/);
    assert.match(run(SAM, ['encode', '--model', pth, '--images', inDir, '--image', img, '--out', outDir]).stderr,
      /one of --image or --images/);
  });

  test('result.json describes each mask; default counts follow the official notebook', () => {
    const one = path.join(dir, 'one-point');
    runOk(SAM, ['predict', '--model', pth, '--image', img, '--point', '50,30,1', '--out', one]);
    const r = JSON.parse(fs.readFileSync(path.join(one, 'result.json'), 'utf8'));
    assert.deepEqual(r.image_size, [61, 97]);
    assert.equal(r.masks.length, 3);
    const logits = readNpy(path.join(one, 'low_res_logits.npy'));
    assert.deepEqual(logits.shape, [3, 64, 64]);
    for (const m of r.masks) {
      assert.ok(fs.existsSync(path.join(one, m.file)));
      assert.ok(Number.isFinite(m.score) && m.stability >= 0 && m.stability <= 1);
      assert.ok(m.area >= 0 && m.area <= 97 * 61);
      if (m.area > 0) assert.ok(m.bbox[0] + m.bbox[2] < 97 && m.bbox[1] + m.bbox[3] < 61);
    }
    const two = path.join(dir, 'two-points');
    runOk(SAM, ['predict', '--model', pth, '--image', img, '--point', '50,30,1', '--point', '10,10,0', '--out', two]);
    assert.equal(JSON.parse(fs.readFileSync(path.join(two, 'result.json'), 'utf8')).masks.length, 1);
    const forced = path.join(dir, 'forced');
    runOk(SAM, ['predict', '--model', pth, '--image', img, '--box', '1,2,50,40', '--multimask', '--out', forced]);
    assert.equal(JSON.parse(fs.readFileSync(path.join(forced, 'result.json'), 'utf8')).masks.length, 3);
  });

  test('a point outside the image is accepted with a warning', () => {
    const r = run(SAM, ['predict', '--model', pth, '--image', img, '--point', '-20,500,1', '--out', path.join(dir, 'outside')]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /outside/);
  });

  // Threads split independent blocks of work only: each output element gets
  // the same operations in the same order, so the bytes cannot differ.
  test('--threads 1, 2 and 3 give bit-identical embeddings (ViT and MobileSAM)', () => {
    for (const [name, model, im] of [['vit', pth, img], ['vit_t', checkpoint('vit_t'), image(300, 200, 21)]]) {
      const bytes = [1, 2, 3].map((threads) => {
        const out = path.join(dir, `threads-${name}-${threads}.safetensors`);
        runOk(SAM, ['encode', '--model', model, '--image', im, '--out', out, '--threads', String(threads)]);
        return fs.readFileSync(out);
      });
      assert.ok(bytes[0].equals(bytes[1]), `${name}: 1 vs 2 threads`);
      assert.ok(bytes[0].equals(bytes[2]), `${name}: 1 vs 3 threads`);
    }
  });

  test('sam_model_set_threads: default, limits, same bytes when changed between encodes', () => {
    const builds = [BUILD, path.join(ROOT, 'build/asan')].filter((dir) => fs.existsSync(path.join(dir, 'tests', 'test_threads_api')));
    for (const dir of builds) for (const model of [pth, checkpoint('vit_t')]) {
      const { stdout } = runOk(path.join(dir, 'tests', 'test_threads_api'), [model]);
      const m = /(\d+) passed, (\d+) failed/.exec(stdout);
      assert.ok(m && Number(m[2]) === 0 && Number(m[1]) > 0, `${dir} ${model}\n${stdout}`);
    }
  });

  test('--threads takes an integer from 1 to 256', () => {
    for (const bad of ['0', '-1', '257', 'two', '1.5', '']) {
      const r = run(SAM, ['encode', '--model', pth, '--image', img, '--out', path.join(dir, 'bad.safetensors'), '--threads', bad]);
      assert.equal(r.status, 1, `--threads '${bad}'`);
      assert.match(r.stderr, /--threads must be an integer from 1 to 256/);
    }
    const r = run(SAM, ['everything', '--model', pth, '--image', img, '--out', path.join(dir, 'bad.json'), '--threads', '0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--threads must be an integer from 1 to 256/);
  });

  test('grey and RGBA images are read as RGB', () => {
    for (const mode of ['grey', 'rgba']) {
      const out = path.join(dir, `mode-${mode}`);
      runOk(SAM, ['predict', '--model', pth, '--image', image(64, 48, 3, mode), '--point', '20,20,1', '--out', out]);
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'result.json'), 'utf8')).masks.length, 3);
    }
  });
});
