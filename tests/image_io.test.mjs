// The CLI's image decoder (src/cli/image_io.c: libjpeg-turbo for JPEG,
// stb_image for PNG, BMP, TGA) against Pillow, which the official pipeline's
// PIL path uses: Image.open(f).convert("RGB") must give the same bytes for
// baseline and progressive JPEGs (4:2:0, 4:4:4, grey, Adobe CMYK) and 8-bit
// PNGs (RGB, RGBA, palette, grey, an empty IDAT chunk) and BMP.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BUILD, PYTHON, runOk, tmpDir } from './helpers.mjs';

const IMAGE_DUMP = path.join(BUILD, 'tests', 'image_dump');

const MAKE_IMAGES = `
import sys, numpy as np
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(5)
yy, xx = np.mgrid[0:45, 0:67]
base = np.stack([(xx * 4) % 256, (yy * 5) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
noisy = np.clip(base.astype(int) + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
img = Image.fromarray(noisy, "RGB")
img.save(f"{out}/q90.jpg", quality=90)
img.save(f"{out}/q75_444.jpg", quality=75, subsampling=0)
img.save(f"{out}/progressive.jpg", quality=85, progressive=True)
img.convert("L").save(f"{out}/grey.jpg", quality=90)
img.convert("CMYK").save(f"{out}/cmyk.jpg", quality=90)
img.save(f"{out}/rgb.png")
img.convert("RGBA").save(f"{out}/rgba.png")
img.convert("P").save(f"{out}/palette.png")
img.convert("L").save(f"{out}/grey.png")
img.save(f"{out}/rgb.bmp")
# An empty IDAT chunk before the data (legal; stb would offset a NULL buffer).
import zlib, struct
png = open(f"{out}/rgb.png", "rb").read()
at = png.index(b"IDAT") - 4
empty = struct.pack(">I", 0) + b"IDAT" + struct.pack(">I", zlib.crc32(b"IDAT"))
open(f"{out}/empty_idat.png", "wb").write(png[:at] + empty + png[at:])
for name in ["q90.jpg", "q75_444.jpg", "progressive.jpg", "grey.jpg", "cmyk.jpg", "rgb.png", "rgba.png", "palette.png", "grey.png", "rgb.bmp", "empty_idat.png"]:
    open(f"{out}/{name}.pil.rgb", "wb").write(np.asarray(Image.open(f"{out}/{name}").convert("RGB")).tobytes())
    print(name)
`;

test('decoded pixels equal Pillow\'s convert("RGB") byte for byte', () => {
  const dir = tmpDir('image-io');
  try {
    const names = runOk(PYTHON, ['-c', MAKE_IMAGES, dir]).stdout.trim().split('\n');
    assert.equal(names.length, 11);
    for (const name of names) {
      const file = path.join(dir, name);
      const r = runOk(IMAGE_DUMP, [file, `${file}.ours.rgb`]);
      assert.equal(r.stdout.trim(), '67 45', name);
      const ours = fs.readFileSync(`${file}.ours.rgb`);
      const pil = fs.readFileSync(`${file}.pil.rgb`);
      let differ = 0;
      for (let i = 0; i < ours.length; i++) differ += ours[i] !== pil[i];
      assert.equal(differ, 0, `${name}: ${differ} of ${ours.length} bytes differ from Pillow`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
