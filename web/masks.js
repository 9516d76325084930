// masks.js: helpers for the binary masks sam.predict returns (Uint8Array
// of height*width, row-major, 0 or 1 -- any non-zero byte counts as 1).
// DOM-free (maskToPNGBlob only needs Blob), no dependencies.
//
//   maskToRGBA(mask, w, h, [r, g, b, a])  -> Uint8ClampedArray overlay (w*h*4)
//   maskToPNG(mask, w, h)                 -> Uint8Array, 8-bit grey PNG, 0/255
//   maskToPNGBlob(mask, w, h)             -> Blob 'image/png'
//   maskToCocoRLE(mask, w, h)             -> {size: [h, w], counts: string}
//   cocoRLEToMask(rle)                    -> {data, width, height}
//   maskToPolygons(mask, w, h)            -> [{outer: [...], holes: [[...], ...]}]

// ---------------------------------------------------------------------------
// Overlay

// Pixels in the mask get `color`, others are transparent (0, 0, 0, 0).
export function maskToRGBA(mask, width, height, color = [30, 144, 255, 153]) {
  checkMask(mask, width, height);
  const out = new Uint8ClampedArray(width * height * 4);
  const [r, g, b, a = 255] = color;
  for (let i = 0; i < width * height; i++) {
    if (!mask[i]) continue;
    out[4 * i] = r; out[4 * i + 1] = g; out[4 * i + 2] = b; out[4 * i + 3] = a;
  }
  return out;
}

function checkMask(mask, width, height) {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new Error(`mask size must be positive integers, got ${width}x${height}`);
  }
  if (!mask || mask.length !== width * height) {
    throw new Error(`mask has ${mask ? mask.length : 0} values; ${width}x${height} needs ${width * height}`);
  }
}

// ---------------------------------------------------------------------------
// PNG: 8-bit greyscale (0 / 255, as the CLI's mask_K.png), zlib stream with
// one fixed-Huffman deflate block whose only matches are runs (distance 1):
// binary masks are long runs, so this stays small without a real LZ77.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes, start, end) {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

class BitWriter {
  constructor(capacity) { this.buf = new Uint8Array(capacity); this.pos = 0; this.bit = 0; this.acc = 0; }
  grow() { const b = new Uint8Array(this.buf.length * 2); b.set(this.buf); this.buf = b; }
  // value's low n bits, least significant first (deflate's bit order).
  bits(value, n) {
    for (let i = 0; i < n; i++) {
      this.acc |= ((value >>> i) & 1) << this.bit;
      if (++this.bit === 8) {
        if (this.pos === this.buf.length) this.grow();
        this.buf[this.pos++] = this.acc; this.acc = 0; this.bit = 0;
      }
    }
  }
  // A Huffman code of n bits, most significant bit first.
  code(value, n) { for (let i = n - 1; i >= 0; i--) this.bits((value >>> i) & 1, 1); }
  finish() { if (this.bit) this.bits(0, 8 - this.bit); return this.buf.subarray(0, this.pos); }
}

// Fixed literal/length code (RFC 1951 3.2.6).
function writeSymbol(w, sym) {
  if (sym < 144) w.code(0x30 + sym, 8);
  else if (sym < 256) w.code(0x190 + sym - 144, 9);
  else if (sym < 280) w.code(sym - 256, 7);
  else w.code(0xc0 + sym - 280, 8);
}

const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];

function writeRun(w, len) {  // a match of length 3..258 at distance 1
  let i = LEN_BASE.length - 1;
  while (LEN_BASE[i] > len) i--;
  writeSymbol(w, 257 + i);
  w.bits(len - LEN_BASE[i], LEN_EXTRA[i]);
  w.code(0, 5);  // distance code 0 = distance 1, no extra bits
}

function deflateRuns(data) {
  const w = new BitWriter(1024 + (data.length >> 4));
  w.bits(1, 1);  // BFINAL
  w.bits(1, 2);  // BTYPE = fixed Huffman
  let i = 0;
  while (i < data.length) {
    let run = 0;
    if (i > 0) while (i + run < data.length && run < 258 && data[i + run] === data[i - 1]) run++;
    if (run >= 3) { writeRun(w, run); i += run; } else { writeSymbol(w, data[i]); i++; }
  }
  writeSymbol(w, 256);
  return w.finish();
}

function zlib(data) {
  const body = deflateRuns(data);
  let a = 1, b = 0;
  for (let i = 0; i < data.length; i++) { a = (a + data[i]) % 65521; b = (b + a) % 65521; }
  const out = new Uint8Array(body.length + 6);
  out[0] = 0x78; out[1] = 0x01;  // deflate, 32K window, no dictionary (0x7801 % 31 == 0)
  out.set(body, 2);
  const adler = ((b << 16) | a) >>> 0;
  new DataView(out.buffer).setUint32(out.length - 4, adler);
  return out;
}

export function maskToPNG(mask, width, height) {
  checkMask(mask, width, height);
  const raw = new Uint8Array((width + 1) * height);  // filter byte 0 per row
  for (let y = 0; y < height; y++) {
    const row = y * (width + 1) + 1;
    for (let x = 0; x < width; x++) raw[row + x] = mask[y * width + x] ? 255 : 0;
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width); dv.setUint32(4, height);
  ihdr[8] = 8; ihdr[9] = 0;  // bit depth 8, greyscale; compression, filter, interlace 0
  const chunks = [['IHDR', ihdr], ['IDAT', zlib(raw)], ['IEND', new Uint8Array(0)]];
  const size = 8 + chunks.reduce((s, [, d]) => s + 12 + d.length, 0);
  const png = new Uint8Array(size);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(png.buffer);
  let at = 8;
  for (const [type, data] of chunks) {
    view.setUint32(at, data.length);
    for (let k = 0; k < 4; k++) png[at + 4 + k] = type.charCodeAt(k);
    png.set(data, at + 8);
    view.setUint32(at + 8 + data.length, crc32(png, at + 4, at + 8 + data.length));
    at += 12 + data.length;
  }
  return png;
}

export function maskToPNGBlob(mask, width, height) {
  return new Blob([maskToPNG(mask, width, height)], { type: 'image/png' });
}

// ---------------------------------------------------------------------------
// COCO RLE, exactly as pycocotools (maskApi.c rleEncode + rleToString):
// runs over the column-major (Fortran) pixel order, alternating 0s and 1s
// and starting with a (possibly empty) run of 0s; each count, minus the
// count two before it from the fourth on, is written 5 bits per character
// (+48, 0x20 = more follows, 0x10 of the last = sign).

export function maskToCocoRLE(mask, width, height) {
  checkMask(mask, width, height);
  const counts = [];
  let prev = 0, run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== prev) { counts.push(run); run = 0; prev = v; }
      run++;
    }
  }
  counts.push(run);
  let s = '';
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x = Math.floor(x / 32);  // arithmetic shift, as C's signed >> 5
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return { size: [height, width], counts: s };
}

// Decodes {size: [h, w], counts} (string as above, or an array of run
// lengths as pycocotools' uncompressed RLE) into a row-major 0/1 mask.
export function cocoRLEToMask(rle) {
  const [height, width] = rle.size;
  let counts = rle.counts;
  if (typeof counts === 'string') {
    const s = counts;
    counts = [];
    let p = 0;
    while (p < s.length) {
      let x = 0, k = 0, more = true;
      while (more) {
        if (p >= s.length) throw new Error('COCO RLE string ends inside a count');
        const c = s.charCodeAt(p++) - 48;
        x += (c & 0x1f) * 2 ** (5 * k);
        more = (c & 0x20) !== 0;
        k++;
        if (!more && (c & 0x10)) x -= 2 ** (5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
  }
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== width * height || counts.some((c) => c < 0)) {
    throw new Error(`COCO RLE counts cover ${total} pixels; size ${height}x${width} needs ${width * height}`);
  }
  const data = new Uint8Array(width * height);
  let at = 0;
  for (let i = 0; i < counts.length; i++) {
    if (i & 1) {
      for (let j = at; j < at + counts[i]; j++) {
        const x = Math.floor(j / height), y = j - x * height;
        data[y * width + x] = 1;
      }
    }
    at += counts[i];
  }
  return { data, width, height };
}

// ---------------------------------------------------------------------------
// Polygons: the mask's pixel-edge boundaries ("crack following"). Pixel
// (x, y) covers the square [x, x+1] x [y, y+1]; ring vertices are pixel
// corners, listed flat as [x0, y0, x1, y1, ...], only where the direction
// changes, the closing point not repeated.
//
// Returns one entry per 4-connected component of the mask, in scan order of
// each component's first pixel: {outer: ring, holes: [ring, ...]}. Outer
// rings run clockwise on screen (y down; shoelace area > 0), hole rings
// counter-clockwise; the foreground is always on the right of the direction
// of travel. Diagonally touching pixels are separate components; background
// pixels touching diagonally belong to one hole (8-connected background).

const DX = [1, 0, -1, 0], DY = [0, 1, 0, -1];  // right, down, left, up

export function maskToPolygons(mask, width, height) {
  checkMask(mask, width, height);
  const on = (x, y) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  const W = width + 1;
  const out = new Uint8Array(W * (height + 1));  // bit d: an edge leaves the vertex in direction d
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!on(x, y)) continue;
      if (!on(x, y - 1)) out[y * W + x] |= 1;            // top: (x,y) -> (x+1,y)
      if (!on(x + 1, y)) out[y * W + x + 1] |= 2;        // right: (x+1,y) -> (x+1,y+1)
      if (!on(x, y + 1)) out[(y + 1) * W + x + 1] |= 4;  // bottom: (x+1,y+1) -> (x,y+1)
      if (!on(x - 1, y)) out[(y + 1) * W + x] |= 8;      // left: (x,y+1) -> (x,y)
    }
  }
  const label = labelComponents(mask, width, height);
  const groups = new Map();  // component -> {outer, holes}
  for (let v = 0; v < out.length; v++) {
    while (out[v]) {
      const d0 = 31 - Math.clz32(out[v] & -out[v]);
      const { ring, area } = traceRing(out, W, v, d0);
      // The pixel right of the first edge is in the ring's component.
      const x = v % W, y = (v - x) / W;
      const px = [x, x - 1, x - 1, x][d0], py = [y, y, y - 1, y - 1][d0];
      const comp = label[py * width + px];
      if (!groups.has(comp)) groups.set(comp, { outer: null, holes: [] });
      if (area > 0) groups.get(comp).outer = ring;
      else groups.get(comp).holes.push(ring);
    }
  }
  return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
}

// Follows unused edges from vertex v leaving in direction d until the ring
// closes, preferring right turns (keeps hugging the same pixel at a vertex
// shared by two diagonal pixels: 4-connected foreground).
function traceRing(out, W, v, d0) {
  const ring = [];
  let area2 = 0;
  let x = v % W, y = (v - x) / W;
  const x0 = x, y0 = y;
  let d = d0, prev = -1;
  for (;;) {
    out[y * W + x] &= ~(1 << d);
    if (d !== prev) ring.push(x, y);
    const nx = x + DX[d], ny = y + DY[d];
    area2 += x * ny - nx * y;
    x = nx; y = ny; prev = d;
    // Back at the start, the (used) first edge counts as present: the ring
    // closes when the turn rule would take it again.
    const start = x === x0 && y === y0;
    const bits = out[y * W + x] | (start ? 1 << d0 : 0);
    if (bits & (1 << ((d + 1) & 3))) d = (d + 1) & 3;
    else if (bits & (1 << d)) { /* straight on */ }
    else if (bits & (1 << ((d + 3) & 3))) d = (d + 3) & 3;
    else throw new Error('maskToPolygons: open boundary (internal error)');
    if (start && d === d0) break;
  }
  // The start vertex is no corner when the last edge runs straight into the first.
  if (prev === d0) ring.splice(0, 2);
  return { ring, area: area2 / 2 };
}

// 4-connected component labels (1, 2, ... in scan order; 0 background).
function labelComponents(mask, width, height) {
  const label = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  let next = 0;
  for (let start = 0; start < width * height; start++) {
    if (!mask[start] || label[start]) continue;
    label[start] = ++next;
    let top = 0;
    stack[top++] = start;
    while (top) {
      const i = stack[--top], x = i % width;
      const nbrs = [x > 0 ? i - 1 : -1, x < width - 1 ? i + 1 : -1, i - width, i + width];
      for (const j of nbrs) {
        if (j >= 0 && j < width * height && mask[j] && !label[j]) { label[j] = next; stack[top++] = j; }
      }
    }
  }
  return label;
}
