// Bad input never crashes, hangs or answers silently: every case below must
// exit with status 1 and a message naming the problem. Each runs on the
// release build and on the address/undefined-sanitizer build.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkpoint, image, safetensors } from './fixtures.mjs';
import { PYTHON, ROOT, run, SAM, tmpDir } from './helpers.mjs';

const ASAN_SAM = path.join(ROOT, 'build/asan/sam');
const BINARIES = [['release', SAM], ['sanitizers', ASAN_SAM]].filter(([, bin]) => fs.existsSync(bin));

function crc32(bytes) {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

// A PNG whose IHDR claims width x height (and no pixel data).
function pngHeader(width, height) {
  const ihdr = Buffer.alloc(17);
  ihdr.write('IHDR', 0, 'latin1');
  ihdr.writeUInt32BE(width, 4);
  ihdr.writeUInt32BE(height, 8);
  ihdr.set([8, 2, 0, 0, 0], 12);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(13);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(ihdr));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), len, ihdr, crc]);
}

// Rewrites a safetensors header with edit(header) applied.
function editSafetensors(src, dst, edit) {
  const buf = fs.readFileSync(src);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + n));
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(dst, Buffer.concat([len, json, buf.subarray(8 + n)]));
}

function makeCases(dir) {
  const pth = checkpoint('tiny');
  const st = safetensors('tiny');
  const img = image(97, 61, 11);
  const file = (name, data) => { const p = path.join(dir, name); fs.writeFileSync(p, data); return p; };
  const whole = fs.readFileSync(pth);
  const pklAt = whole.indexOf('data.pkl') + 100;  // inside the pickle's bytes
  const corruptPickle = Buffer.from(whole);
  for (let i = 0; i < 16; i++) corruptPickle[pklAt + i] ^= 0x5a;
  const corruptStorage = Buffer.from(whole);
  corruptStorage[Math.floor(whole.length * 0.6)] ^= 0xff;
  // A zip that is not a checkpoint, and a checkpoint whose pickle calls os.system.
  const marker = path.join(dir, 'pwned');
  const py = `
import io, os, pickle, sys, zipfile
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ${marker}',))
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED) as z:
    z.writestr('notes/readme.txt', 'hello')
with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_STORED) as z:
    z.writestr('archive/data.pkl', pickle.dumps({'x': Evil()}, protocol=2))
    z.writestr('archive/version', '3\\n')
`;
  const notCkpt = path.join(dir, 'not_a_checkpoint.zip');
  const evil = path.join(dir, 'evil.pth');
  const r = run(PYTHON, ['-c', py, notCkpt, evil]);
  assert.equal(r.status, 0, r.stderr);
  const lying = path.join(dir, 'lying.safetensors');
  editSafetensors(st, lying, (h) => { h['mask_decoder.iou_token.weight'].data_offsets[1] += 1 << 30; });
  const overlapping = path.join(dir, 'short.safetensors');
  editSafetensors(st, overlapping, (h) => {
    const o = h['mask_decoder.iou_token.weight'].data_offsets; o[1] = o[0] + 4;
  });
  const wrongShape = path.join(dir, 'wrong_shape.safetensors');
  editSafetensors(st, wrongShape, (h) => { h['mask_decoder.iou_token.weight'].shape = [2, 128]; });
  const predict = (model, extra) => ['predict', '--model', model, '--image', img, ...extra, '--out', path.join(dir, 'out')];
  const embOther = path.join(dir, 'other.safetensors');
  return {
    marker,
    cases: [
      ['truncated checkpoint (half)', predict(file('half.pth', whole.subarray(0, whole.length >> 1)), ['--point', '5,5,1']), /tiny|zip|truncat|archive|end of central/i],
      ['truncated checkpoint (last byte missing)', predict(file('minus1.pth', whole.subarray(0, whole.length - 1)), ['--point', '5,5,1']), /zip|truncat|central|end/i],
      ['corrupt pickle bytes', predict(file('corrupt_pkl.pth', corruptPickle), ['--point', '5,5,1']), /pickle|crc|corrupt|opcode|data\.pkl/i],
      ['corrupt storage bytes', predict(file('corrupt_data.pth', corruptStorage), ['--point', '5,5,1']), /crc|corrupt|checksum/i],
      ['a zip that is not a checkpoint', predict(notCkpt, ['--point', '5,5,1']), /data\.pkl|not a (PyTorch )?checkpoint/i],
      ['a pickle naming os.system', predict(evil, ['--point', '5,5,1']), /os\.system|posix\.system/],
      ['random bytes as a checkpoint', predict(file('random.pth', Buffer.alloc(4096, 7)), ['--point', '5,5,1']), /not a checkpoint/],
      ['safetensors offsets beyond the file', predict(lying, ['--point', '5,5,1']), /offset|beyond|out of range|exceed/i],
      ['safetensors offsets disagreeing with the shape', predict(overlapping, ['--point', '5,5,1']), /offset|size|bytes|shape/i],
      ['a tensor of the wrong shape', predict(wrongShape, ['--point', '5,5,1']), /mask_decoder\.iou_token\.weight.*\[2,128\].*\[1,256\]/],
      ['missing model file', predict(path.join(dir, 'nope.pth'), ['--point', '5,5,1']), /cannot open/],
      ['a 0-byte image', ['predict', '--model', pth, '--image', file('empty.png', ''), '--point', '1,1,1', '--out', dir], /empty/],
      ['an image header claiming 30000x30000', ['predict', '--model', pth, '--image', file('huge.png', pngHeader(30000, 30000)), '--point', '1,1,1', '--out', dir], /30000|too large|limit/i],
      ['an image header claiming 12000x9000 (108 MP, sides within limits)', ['predict', '--model', pth, '--image', file('many.png', pngHeader(12000, 9000)), '--point', '1,1,1', '--out', dir], /12000x9000.*100000000 in all/],
      ['a PNG chunk claiming 2 GB', ['predict', '--model', pth, '--image', file('idat.png', Buffer.concat([pngHeader(8, 8), Buffer.from([0x7f, 0xff, 0xff, 0xff]), Buffer.from('IDAT')])), '--point', '1,1,1', '--out', dir], /chunk 'IDAT' claims 2147483647 bytes/],
      ['a corrupt JPEG', ['predict', '--model', pth, '--image', path.join(ROOT, 'tests/fuzz/regressions/image/jpeg_dht_over_256_codes.jpg'), '--point', '1,1,1', '--out', dir], /JPEG: /],
      ['a truncated PNG', ['predict', '--model', pth, '--image', file('trunc.png', fs.readFileSync(img).subarray(0, 200)), '--point', '1,1,1', '--out', dir], /image/],
      ['random bytes as an image', ['predict', '--model', pth, '--image', file('noise.jpg', Buffer.alloc(999, 0x33)), '--point', '1,1,1', '--out', dir], /image/],
      ['a NaN coordinate', predict(pth, ['--point', 'nan,5,1']), /--point/],
      ['an infinite coordinate', predict(pth, ['--point', '5,inf,1']), /--point/],
      ['an infinite box', predict(pth, ['--box', '0,0,1e999,5']), /--box/],
      ['a coordinate beyond float range (1e39)', predict(pth, ['--point', '1e39,5,1']), /--point/],
      ['65 points', predict(pth, Array.from({ length: 65 }, () => ['--point', '1,1,1']).flat()), /at most 64 --point/],
      ['an unknown label', predict(pth, ['--point', '5,5,2']), /label/],
      ['no prompt at all', predict(pth, []), /prompt/],
      ['an embedding from another model', ['encode', '--model', checkpoint('tiny_other'), '--image', img, '--out', embOther], null],
      ['... refused by this model', ['predict', '--model', pth, '--embedding', embOther, '--point', '5,5,1', '--out', dir], /another model/],
      ['a checkpoint given as the embedding', ['predict', '--model', pth, '--embedding', st, '--point', '5,5,1', '--out', dir], /embedding/],
      ['a mask input of the wrong size', predict(pth, ['--mask-input', st]), /mask input|npy/i],
    ],
  };
}

for (const [label, bin] of BINARIES) {
  describe(`bad input (${label} build)`, { concurrency: false }, () => {
    const dir = tmpDir(`bad-${label}`);
    const { cases, marker } = makeCases(dir);
    for (const [name, args, message] of cases) {
      test(name, () => {
        const r = run(bin, args, { timeout: 120000 });
        assert.doesNotMatch(r.stderr, /Sanitizer|runtime error/, r.stderr);
        if (message === null) {
          assert.equal(r.status, 0, r.stderr);
          return;
        }
        assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
        assert.equal(r.status, 1, `exit ${r.status}: ${r.stderr}`);
        assert.match(r.stderr, /^sam: /m);
        assert.match(r.stderr, message);
      });
    }
    test('the refused pickle executed nothing', () => {
      assert.equal(fs.existsSync(marker), false);
    });
  });
}
