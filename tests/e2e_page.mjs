// Functions the e2e test runs inside the page (page.evaluate): they must be self-contained.

// Finds a distinct object in the image at `url`: flood fills of similar colour (on a blurred
// copy) from a grid of seeds; keeps the largest compact region that does not touch the border.
// Returns the click point (the region's most interior pixel) and keeps the region for
// measureOverlay in window.__e2eRegion. With `clickAt` ([x, y], on a known object) the
// region is the one grown from that point.
export async function findObject([url, clickAt]) {
  const bitmap = await createImageBitmap(await (await fetch(url)).blob());
  const W = bitmap.width, H = bitmap.height, N = W * H;
  const cv = new OffscreenCanvas(W, H);
  const cx = cv.getContext('2d');
  cx.drawImage(bitmap, 0, 0);
  const px = cx.getImageData(0, 0, W, H).data;
  // 5x5 box blur per channel (two separable passes), to smooth pixel noise and fine texture.
  const ch = [0, 1, 2].map((c) => {
    const a = new Float32Array(N), b = new Float32Array(N);
    for (let i = 0; i < N; i++) a[i] = px[4 * i + c];
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      let s = 0, n = 0;
      for (let d = -2; d <= 2; d++) { const xx = x + d; if (xx >= 0 && xx < W) { s += a[y * W + xx]; n++; } }
      b[y * W + x] = s / n;
    }
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      let s = 0, n = 0;
      for (let d = -2; d <= 2; d++) { const yy = y + d; if (yy >= 0 && yy < H) { s += b[yy * W + x]; n++; } }
      a[y * W + x] = s / n;
    }
    return a;
  });
  const diff = (i, j) => Math.abs(ch[0][i] - ch[0][j]) + Math.abs(ch[1][i] - ch[1][j]) + Math.abs(ch[2][i] - ch[2][j]);
  const label = new Int32Array(N).fill(-1);
  const regions = [];
  const step = Math.max(4, Math.round(Math.min(W, H) / 40));
  const seeds = [];
  if (clickAt) seeds.push(Math.round(clickAt[1]) * W + Math.round(clickAt[0]));
  else for (let sy = step; sy < H - step; sy += step) for (let sx = step; sx < W - step; sx += step) seeds.push(sy * W + sx);
  const stack = new Int32Array(N);
  for (const seed of seeds) {
    if (label[seed] >= 0) continue;
    const id = regions.length;
    let top = 0, area = 0, x0 = W, y0 = H, x1 = 0, y1 = 0, edge = 0, drift = 0;
    stack[top++] = seed;
    label[seed] = id;
    while (top) {
      const i = stack[--top];
      const x = i % W, y = (i / W) | 0;
      area++;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
      for (const j of [x > 0 ? i - 1 : -1, x < W - 1 ? i + 1 : -1, y > 0 ? i - W : -1, y < H - 1 ? i + W : -1]) {
        if (j < 0 || label[j] >= 0) continue;
        if (diff(i, j) >= 10) edge++;
        else if (diff(seed, j) >= 45) drift++;
        else {
          label[j] = id;
          stack[top++] = j;
        }
      }
    }
    // Objects end at sharp edges; patches of a smooth background end where the colour drifts.
    regions.push({ id, area, bbox: [x0, y0, x1, y1], sharp: edge / Math.max(1, edge + drift) });
  }
  const fits = (minArea, minSharp) => regions.filter((r) => {
    const [x0, y0, x1, y1] = r.bbox;
    const boxArea = (x1 - x0 + 1) * (y1 - y0 + 1);
    return r.area >= minArea * N && r.area <= 0.15 * N && x0 > 2 && y0 > 2 && x1 < W - 3 && y1 < H - 3 &&
      r.area / boxArea > 0.35 && r.sharp > minSharp;
  });
  let good = clickAt ? regions : fits(0.004, 0.8);
  if (!good.length) good = fits(0.001, 0.8);
  if (!good.length) good = fits(0.0005, 0.6);
  if (!good.length) throw new Error('no distinct object found in the sample image');
  const best = good.reduce((a, b) => (b.area > a.area ? b : a));
  // Chamfer distance to the region's outside; the click goes to the most interior pixel.
  const dist = new Float32Array(N);
  for (let i = 0; i < N; i++) dist[i] = label[i] === best.id ? 1e9 : 0;
  const at = (x, y) => (x < 0 || y < 0 || x >= W || y >= H ? 0 : dist[y * W + x]);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const i = y * W + x;
    if (dist[i]) dist[i] = Math.min(dist[i], at(x - 1, y) + 1, at(x, y - 1) + 1, at(x - 1, y - 1) + 1.414, at(x + 1, y - 1) + 1.414);
  }
  let bi = 0;
  for (let y = H - 1; y >= 0; y--) for (let x = W - 1; x >= 0; x--) {
    const i = y * W + x;
    if (dist[i]) dist[i] = Math.min(dist[i], at(x + 1, y) + 1, at(x, y + 1) + 1, at(x + 1, y + 1) + 1.414, at(x - 1, y + 1) + 1.414);
    if (dist[i] > dist[bi]) bi = i;
  }
  const maxDist = dist[bi];
  // The core: region pixels well inside (robust to the mask's edge and the blur).
  const core = new Uint8Array(N);
  for (let i = 0; i < N; i++) core[i] = dist[i] >= Math.max(3, 0.25 * maxDist) ? 1 : 0;
  const x = bi % W, y = (bi / W) | 0;
  window.__e2eRegion = { core, W, H, click: [x, y], bbox: best.bbox };
  return { x, y, width: W, height: H, area: best.area, bbox: best.bbox, maxDist, sharp: best.sharp };
}

// Reads the demo's canvases: fraction of the object core under the mask overlay, fraction of
// the image covered, coverage of the corners far from the object, number of marker pixels.
export function measureOverlay() {
  const read = (id) => {
    const c = document.getElementById(id);
    return { w: c.width, h: c.height, d: c.getContext('2d').getImageData(0, 0, c.width, c.height).data };
  };
  const m = read('mask-layer'), p = read('prompt-layer');
  let total = 0;
  for (let i = 3; i < m.d.length; i += 4) if (m.d[i]) total++;
  let markers = 0;
  for (let i = 3; i < p.d.length; i += 4) if (p.d[i]) markers++;
  const out = { total: total / (m.w * m.h), markers, coreCovered: NaN, farCorners: [] };
  const r = window.__e2eRegion;
  if (!r) return out;
  const alphaAt = (ix, iy) => m.d[(Math.min(m.h - 1, Math.floor(((iy + 0.5) * m.h) / r.H)) * m.w +
    Math.min(m.w - 1, Math.floor(((ix + 0.5) * m.w) / r.W))) * 4 + 3];
  let n = 0, hit = 0;
  for (let iy = 0; iy < r.H; iy++) for (let ix = 0; ix < r.W; ix++) {
    if (!r.core[iy * r.W + ix]) continue;
    n++;
    if (alphaAt(ix, iy)) hit++;
  }
  out.coreCovered = n ? hit / n : 0;
  // Corner patches (4% of the short side) farther than a quarter diagonal from the object's box.
  const s = Math.max(4, Math.round(0.04 * Math.min(r.W, r.H)));
  const [bx0, by0, bx1, by1] = r.bbox;
  const diag = Math.hypot(r.W, r.H);
  for (const [cx, cy] of [[0, 0], [r.W - s, 0], [0, r.H - s], [r.W - s, r.H - s]]) {
    const dx = Math.max(bx0 - (cx + s), cx - bx1, 0), dy = Math.max(by0 - (cy + s), cy - by1, 0);
    if (Math.hypot(dx, dy) < diag / 4) continue;
    let c = 0;
    for (let iy = cy; iy < cy + s; iy++) for (let ix = cx; ix < cx + s; ix++) if (alphaAt(ix, iy)) c++;
    out.farCorners.push(c / (s * s));
  }
  return out;
}
