// Drawing helpers for the demo: mask overlay with outline, prompt markers, candidate thumbnails.
// Masks are Uint8Array(h*w) of 0/1 at the image's original size; the canvases may be smaller.

export const COLORS = {
  mask: [30, 144, 255], // committed mask (dodger blue)
  hover: [255, 196, 0], // hover preview (amber)
  fg: '#22c55e',
  bg: '#ef4444',
  box: '#38bdf8',
};

// Samples the mask (mw x mh) at the canvas resolution (nearest) and draws a translucent fill
// with an opaque outline. Returns the number of covered canvas pixels.
export function drawMask(ctx, mask, mw, mh, rgb, { fill = 0.42, outline = 1, clear = true } = {}) {
  const { width: dw, height: dh } = ctx.canvas;
  if (clear) ctx.clearRect(0, 0, dw, dh);
  if (!mask || !dw || !dh) return 0;
  const sx = mw / dw, sy = mh / dh;
  // Outline width in canvas pixels scales with the canvas so it stays visible when shrunk.
  const t = Math.max(1, Math.round(outline * Math.max(dw, dh) / 800));
  // Nearest-sampled mask at the canvas size, with a zero border of t pixels for the edge test.
  const W = dw + 2 * t, H = dh + 2 * t;
  const m = new Uint8Array(W * H);
  const cols = new Int32Array(dw);
  for (let x = 0; x < dw; x++) cols[x] = Math.min(mw - 1, Math.floor((x + 0.5) * sx));
  let covered = 0;
  for (let y = 0; y < dh; y++) {
    const row = Math.min(mh - 1, Math.floor((y + 0.5) * sy)) * mw;
    const o = (y + t) * W + t;
    for (let x = 0; x < dw; x++) {
      const v = mask[row + cols[x]] ? 1 : 0;
      m[o + x] = v;
      covered += v;
    }
  }
  if (!covered) return 0;
  const img = ctx.createImageData(dw, dh);
  const px = img.data;
  const [r, g, b] = rgb;
  const fillA = Math.round(fill * 255);
  for (let y = 0; y < dh; y++) {
    const o = (y + t) * W + t;
    for (let x = 0; x < dw; x++) {
      const i = o + x;
      if (!m[i]) continue;
      let edge = false;
      for (let d = 1; d <= t && !edge; d++) {
        edge = !m[i - d] || !m[i + d] || !m[i - d * W] || !m[i + d * W];
      }
      const p = (y * dw + x) * 4;
      if (edge) {
        px[p] = 255; px[p + 1] = 255; px[p + 2] = 255; px[p + 3] = 235;
      } else {
        px[p] = r; px[p + 1] = g; px[p + 2] = b; px[p + 3] = fillA;
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  return covered;
}

// Draws the prompts (points and box, in image coordinates) on the prompt layer.
// `scale` maps image pixels to canvas pixels; `unit` is one CSS pixel in canvas pixels.
export function drawPrompts(ctx, prompts, { scale, unit, dragBox = null, hover = null }) {
  const { width, height } = ctx.canvas;
  ctx.clearRect(0, 0, width, height);
  const boxes = prompts.filter((p) => p.type === 'box').map((p) => p.box);
  if (dragBox) boxes.push(dragBox);
  for (const [x0, y0, x1, y1] of boxes) {
    const x = Math.min(x0, x1) * scale, y = Math.min(y0, y1) * scale;
    const w = Math.abs(x1 - x0) * scale, h = Math.abs(y1 - y0) * scale;
    ctx.lineWidth = 2 * unit;
    ctx.setLineDash([6 * unit, 4 * unit]);
    ctx.strokeStyle = 'rgba(0,0,0,0.6)';
    ctx.strokeRect(x + unit, y + unit, w, h);
    ctx.strokeStyle = COLORS.box;
    ctx.strokeRect(x, y, w, h);
    ctx.setLineDash([]);
  }
  const points = prompts.filter((p) => p.type === 'point');
  if (hover) points.push({ ...hover, ghost: true });
  for (const p of points) {
    const cx = p.x * scale, cy = p.y * scale, r = 8 * unit;
    ctx.globalAlpha = p.ghost ? 0.55 : 1;
    ctx.beginPath();
    ctx.arc(cx, cy, r + 1.5 * unit, 0, 2 * Math.PI);
    ctx.fillStyle = 'rgba(0,0,0,0.45)';
    ctx.fill();
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.fillStyle = p.label ? COLORS.fg : COLORS.bg;
    ctx.fill();
    ctx.lineWidth = 2 * unit;
    ctx.strokeStyle = '#fff';
    ctx.stroke();
    // + for foreground, - for background
    ctx.beginPath();
    const a = r * 0.5;
    ctx.moveTo(cx - a, cy);
    ctx.lineTo(cx + a, cy);
    if (p.label) {
      ctx.moveTo(cx, cy - a);
      ctx.lineTo(cx, cy + a);
    }
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
}

// A thumbnail: the image (from the display canvas) with the mask on top.
export function drawThumb(canvas, imageCanvas, mask, mw, mh) {
  const maxW = 160;
  const s = Math.min(1, maxW / imageCanvas.width);
  canvas.width = Math.max(1, Math.round(imageCanvas.width * s));
  canvas.height = Math.max(1, Math.round(imageCanvas.height * s));
  const ctx = canvas.getContext('2d');
  ctx.drawImage(imageCanvas, 0, 0, canvas.width, canvas.height);
  const layer = document.createElement('canvas');
  layer.width = canvas.width;
  layer.height = canvas.height;
  drawMask(layer.getContext('2d'), mask, mw, mh, COLORS.mask, { fill: 0.55, outline: 2 });
  ctx.drawImage(layer, 0, 0);
}

// The cut-out: the original pixels where the mask is set, transparent elsewhere.
export function cutoutImageData(imageData, mask) {
  const { width, height, data } = imageData;
  const out = new ImageData(width, height);
  const o = out.data;
  for (let i = 0, n = width * height; i < n; i++) {
    if (!mask[i]) continue;
    const p = i * 4;
    o[p] = data[p]; o[p + 1] = data[p + 1]; o[p + 2] = data[p + 2]; o[p + 3] = data[p + 3];
  }
  return out;
}

// Area (pixels) and XYWH bounding box of a mask, as the official generator reports them.
export function maskStats(mask, w, h) {
  let area = 0, x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (!mask[row + x]) continue;
      area++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return { area, bbox: area ? [x0, y0, x1 - x0 + 1, y1 - y0 + 1] : [0, 0, 0, 0] };
}

// Everything mode: every mask in its own colour (masks drawn largest first, so smaller ones stay
// visible on top), the selected one in the committed-mask colour with a white outline.
// masks: [{data: Uint8Array (h*w, 0/1), width, height}] at the image size.
export function drawMasks(ctx, masks, selected = -1) {
  const { width: dw, height: dh } = ctx.canvas;
  ctx.clearRect(0, 0, dw, dh);
  if (!masks.length || !dw || !dh) return 0;
  const { width: mw, height: mh } = masks[0];
  const cols = new Int32Array(dw), rows = new Int32Array(dh);
  for (let x = 0; x < dw; x++) cols[x] = Math.min(mw - 1, Math.floor(((x + 0.5) * mw) / dw));
  for (let y = 0; y < dh; y++) rows[y] = Math.min(mh - 1, Math.floor(((y + 0.5) * mh) / dh)) * mw;
  const img = ctx.createImageData(dw, dh);
  const px = img.data;
  const owner = new Int32Array(dw * dh).fill(-1);
  const order = masks.map((m, i) => [m.area ?? 0, i]).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  for (const i of order) {
    const m = masks[i].data;
    for (let y = 0, p = 0; y < dh; y++) for (let x = 0; x < dw; x++, p++) if (m[rows[y] + cols[x]]) owner[p] = i;
  }
  // Golden-angle hues: neighbours in the list get distant colours.
  const rgb = masks.map((_, i) => {
    const h = (i * 137.508) % 360, f = (n) => { const k = (n + h / 30) % 12; return 255 * (0.55 - 0.45 * Math.max(-1, Math.min(k - 3, 9 - k, 1))); };
    return [f(0), f(8), f(4)];
  });
  let covered = 0;
  for (let p = 0; p < owner.length; p++) {
    const i = owner[p];
    if (i < 0) continue;
    covered++;
    const [r, g, b] = i === selected ? COLORS.mask : rgb[i];
    px[4 * p] = r; px[4 * p + 1] = g; px[4 * p + 2] = b; px[4 * p + 3] = i === selected ? 190 : 120;
  }
  if (selected >= 0) {
    // White outline of the selected mask (also where smaller masks cover it).
    const m = masks[selected].data;
    const inside = (x, y) => x >= 0 && y >= 0 && x < dw && y < dh && m[rows[y] + cols[x]];
    for (let y = 0, p = 0; y < dh; y++) for (let x = 0; x < dw; x++, p++) {
      if (!inside(x, y) || (inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))) continue;
      px[4 * p] = 255; px[4 * p + 1] = 255; px[4 * p + 2] = 255; px[4 * p + 3] = 240;
    }
  }
  ctx.putImageData(img, 0, 0);
  return covered;
}
