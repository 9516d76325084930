// web/masks.js: COCO RLE against pycocotools' algorithm (known answers
// derived by hand from maskApi.c's rleEncode / rleToString, and round
// trips), PNG decodable by Pillow, polygons with holes on hand-made masks.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cocoRLEToMask, maskToCocoRLE, maskToPNG, maskToPolygons, maskToRGBA } from '../web/masks.js';
import { PYTHON, runOk, tmpDir } from './helpers.mjs';
import { decodePng } from './png.mjs';

// Builds a row-major 0/1 mask from rows of '#' (1) and '.' (0).
function fromRows(rows) {
  const height = rows.length, width = rows[0].length;
  const data = new Uint8Array(width * height);
  rows.forEach((r, y) => [...r].forEach((c, x) => { data[y * width + x] = c === '#' ? 1 : 0; }));
  return { data, width, height };
}

function column(bits) {  // a w = 1 mask from a string of 0/1
  return { data: Uint8Array.from(bits, Number), width: 1, height: bits.length };
}

function randomMask(width, height, seed, density = 0.5) {
  let s = seed >>> 0;
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 < density ? 1 : 0;
  }
  return { data, width, height };
}

test('COCO RLE: pycocotools layout (column-major, zeros first, LEB-like string)', () => {
  const cases = [
    // [mask, counts (runs), string]
    [fromRows(['.#', '##']), [1, 3], '13'],
    [fromRows(['##.']), [0, 2, 1], '021'],
    [fromRows(['#..', '##.']), [0, 2, 1, 1, 2], '021O1'],   // 1 - 2 = -1 -> 'O'
    [column('0'.repeat(5) + '11' + '000' + '1'), [5, 2, 3, 1], '523O'],
    [column('0'.repeat(100)), [100], 'T3'],                // 5-bit groups: 4 | 0x20, 3
    [column('0'.repeat(16)), [16], '`0'],                 // 16 has the sign bit: needs a second char
    [column('0' + '1'.repeat(30) + '00' + '1'.repeat(10)), [1, 30, 2, 10], '1n02\\O'],  // 10 - 30 = -20
  ];
  for (const [m, runs, str] of cases) {
    const rle = maskToCocoRLE(m.data, m.width, m.height);
    assert.deepEqual(rle, { size: [m.height, m.width], counts: str }, `runs ${runs}`);
    assert.deepEqual(cocoRLEToMask(rle).data, m.data);
    assert.deepEqual(cocoRLEToMask({ size: [m.height, m.width], counts: runs }).data, m.data);
  }
});

test('COCO RLE round-trips random and large masks', () => {
  for (const [w, h, seed, density] of [[37, 23, 1, 0.5], [640, 427, 2, 0.02], [1000, 700, 3, 0.98], [5, 1, 4, 0]]) {
    const m = randomMask(w, h, seed, density);
    const rle = maskToCocoRLE(m.data, w, h);
    assert.match(rle.counts, /^[0-o]*$/);
    const back = cocoRLEToMask(rle);
    assert.equal(back.width, w);
    assert.equal(back.height, h);
    assert.deepEqual(back.data, m.data);
  }
  assert.throws(() => cocoRLEToMask({ size: [2, 2], counts: '15' }), /cover 6 pixels/);
});

test('maskToPNG decodes with Pillow (8-bit grey, 0/255) and with a zlib decoder', () => {
  const dir = tmpDir('masks');
  for (const [w, h, seed, density] of [[37, 23, 1, 0.5], [640, 427, 2, 0.1], [1, 1, 3, 1]]) {
    const m = randomMask(w, h, seed, density);
    const png = maskToPNG(m.data, w, h);
    const mine = decodePng(Buffer.from(png));
    assert.deepEqual(mine.data, Uint8Array.from(m.data, (v) => v * 255));
    const file = path.join(dir, `m_${w}x${h}.png`);
    fs.writeFileSync(file, png);
    const out = runOk(PYTHON, ['-c', `
import sys, hashlib
from PIL import Image
im = Image.open(sys.argv[1]); im.load()
print(im.mode, im.size[0], im.size[1], hashlib.sha256(im.tobytes()).hexdigest())`, file]).stdout.trim();
    const hash = createHash('sha256').update(Buffer.from(mine.data)).digest('hex');
    assert.equal(out, `L ${w} ${h} ${hash}`);
  }
  // Long runs compress: a 1024x768 mask with one rectangle stays small.
  const big = new Uint8Array(1024 * 768);
  for (let y = 100; y < 600; y++) big.fill(1, y * 1024 + 200, y * 1024 + 900);
  assert.ok(maskToPNG(big, 1024, 768).length < 16384, `${maskToPNG(big, 1024, 768).length} bytes`);
});

test('maskToRGBA colours mask pixels and leaves others transparent', () => {
  const m = fromRows(['#.', '.#']);
  assert.deepEqual([...maskToRGBA(m.data, 2, 2, [1, 2, 3, 4])], [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  assert.throws(() => maskToRGBA(m.data, 3, 2), /needs 6/);
});

test('maskToPolygons: outer rings and holes on hand-made masks', () => {
  const ring = fromRows(['.....', '.###.', '.#.#.', '.###.', '.....']);
  assert.deepEqual(maskToPolygons(ring.data, 5, 5),
    [{ outer: [1, 1, 4, 1, 4, 4, 1, 4], holes: [[2, 2, 2, 3, 3, 3, 3, 2]] }]);
  // A full mask: the image border.
  assert.deepEqual(maskToPolygons(new Uint8Array(6).fill(1), 3, 2), [{ outer: [0, 0, 3, 0, 3, 2, 0, 2], holes: [] }]);
  // Diagonal neighbours are separate components (4-connectivity).
  assert.deepEqual(maskToPolygons(fromRows(['#.', '.#']).data, 2, 2), [
    { outer: [0, 0, 1, 0, 1, 1, 0, 1], holes: [] },
    { outer: [1, 1, 2, 1, 2, 2, 1, 2], holes: [] },
  ]);
  // An L shape: only the corners.
  assert.deepEqual(maskToPolygons(fromRows(['#..', '#..', '###']).data, 3, 3),
    [{ outer: [0, 0, 1, 0, 1, 2, 3, 2, 3, 3, 0, 3], holes: [] }]);
  // A ring with an island in its hole, and a hole with a diagonal pinch
  // (8-connected background: one hole ring).
  const nested = fromRows([
    '.........',
    '.#######.',
    '.#.....#.',
    '.#.....#.',
    '.#..#..#.',
    '.#.....#.',
    '.#.....#.',
    '.#######.',
    '.........',
  ]);
  assert.deepEqual(maskToPolygons(nested.data, 9, 9), [
    { outer: [1, 1, 8, 1, 8, 8, 1, 8], holes: [[2, 2, 2, 7, 7, 7, 7, 2]] },
    { outer: [4, 4, 5, 4, 5, 5, 4, 5], holes: [] },
  ]);
  const pinch = fromRows(['####', '#.##', '##.#', '####']);
  const p = maskToPolygons(pinch.data, 4, 4);
  assert.equal(p.length, 1);
  assert.equal(p[0].holes.length, 1);
  assert.deepEqual(p[0].holes[0], [1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 2, 2, 2, 2, 1]);
});

// Shoelace area of a flat ring (y down: outer rings > 0, holes < 0).
function area(r) {
  let a = 0;
  for (let i = 0; i < r.length; i += 2) {
    const j = (i + 2) % r.length;
    a += r[i] * r[j + 1] - r[j] * r[i + 1];
  }
  return a / 2;
}

test('maskToPolygons: ring areas add up to the pixel count on random masks', () => {
  for (const [w, h, seed, density] of [[30, 20, 5, 0.5], [64, 48, 6, 0.7], [17, 41, 7, 0.3]]) {
    const m = randomMask(w, h, seed, density);
    const polys = maskToPolygons(m.data, w, h);
    let total = 0;
    for (const { outer, holes } of polys) {
      assert.ok(area(outer) > 0);
      total += area(outer);
      for (const hole of holes) { assert.ok(area(hole) < 0); total += area(hole); }
      for (const r of [outer, ...holes]) {
        assert.equal(r.length % 2, 0);
        for (let i = 0; i < r.length; i += 2) assert.ok(r[i] >= 0 && r[i] <= w && r[i + 1] >= 0 && r[i + 1] <= h);
      }
    }
    assert.equal(total, m.data.reduce((a, b) => a + b, 0));
  }
  assert.deepEqual(maskToPolygons(new Uint8Array(4), 2, 2), []);
});
