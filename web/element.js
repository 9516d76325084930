// <sam-segmenter>: Segment Anything with one tag.
//
//   <script type="module" src="/web/element.js"></script>
//   <sam-segmenter src="photo.jpg" model="sam_vit_b.f16.safetensors"></sam-segmenter>
//
// Attributes (changing src / model / embedding reloads):
//   src        image URL (anything createImageBitmap decodes)
//   model      .safetensors or official .pth URL (loaded once per value)
//   embedding  optional: URL of an embedding from `build/sam encode` for this image; the
//              encoder then does not run in the browser
//   mask-color optional CSS-like "r,g,b" overlay colour (default 30,144,255)
// Interaction: click starts a new selection with one foreground point; Ctrl/Cmd-click adds a
// foreground point, Shift-click or right-click a background point; Esc clears.
// Events (bubbling, composed):
//   progress  detail {stage: 'model' | 'image' | 'embedding', done, total}
//   ready     detail {width, height, modelInfo}: the image is embedded, clicks segment
//   mask      detail {mask (Uint8Array h*w, 0/1), width, height, score, stability, index,
//                     masks (all candidates), points ([[x, y, label], ...])}
//   error     detail {error}
// Properties and methods:
//   .predictor           the headless SamPredictor (web/sam.js), after `ready`
//   .segment(points)     predict for [[x, y, label], ...] in image pixels; resolves the mask detail
//   .clear()             removes the points and the overlay
import { SamPredictor } from './sam.js';

const STYLE = `
:host { display: inline-block; position: relative; line-height: 0; max-width: 100%; }
canvas { display: block; width: 100%; height: auto; }
canvas.layer { position: absolute; inset: 0; width: 100%; height: 100%; }
canvas.top { cursor: crosshair; touch-action: none; }
.bar { position: absolute; left: 0; right: 0; bottom: 0; height: 4px; background: rgba(0,0,0,.25); }
.bar > div { height: 100%; width: 0; background: rgb(30,144,255); transition: width .15s; }
.bar[hidden] { display: none; }
`;

export class SamSegmenter extends HTMLElement {
  static get observedAttributes() {
    return ['src', 'model', 'embedding'];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = `<style>${STYLE}</style><canvas part="image"></canvas>` +
      `<canvas class="layer" part="overlay"></canvas><canvas class="layer top" part="prompts"></canvas>` +
      `<div class="bar" hidden><div></div></div>`;
    [this._image, this._overlay, this._prompts] = root.querySelectorAll('canvas');
    this._bar = root.querySelector('.bar');
    this._predictor = null;
    this._points = [];
    this._size = null;
    this._gen = 0;
    this._prompts.addEventListener('contextmenu', (ev) => ev.preventDefault());
    this._prompts.addEventListener('pointerup', (ev) => this._onPointer(ev));
    this.addEventListener('keydown', (ev) => ev.key === 'Escape' && this.clear());
    if (!this.hasAttribute('tabindex')) this.tabIndex = 0;
  }

  get predictor() {
    return this._predictor;
  }

  connectedCallback() {
    this._schedule();
  }

  attributeChangedCallback() {
    if (this.isConnected) this._schedule();
  }

  disconnectedCallback() {
    // Frees the model when the element leaves the page for good (not when it is only moved).
    queueMicrotask(() => {
      if (this.isConnected || !this._predictor) return;
      this._predictor.dispose();
      this._predictor = null;
      this._modelUrl = null;
      this._ready = false;
    });
  }

  _schedule() {
    if (this._pending) return;
    this._pending = Promise.resolve().then(() => {
      this._pending = null;
      return this._load();
    });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  _progress(stage) {
    return (p) => {
      const done = typeof p === 'number' ? p : p?.done ?? p?.loaded ?? 0;
      const total = typeof p === 'number' ? 1 : p?.total ?? 0;
      this._bar.hidden = false;
      this._bar.firstChild.style.width = total ? `${Math.min(100, (100 * done) / total)}%` : '30%';
      this._emit('progress', { stage, done, total });
    };
  }

  async _load() {
    const src = this.getAttribute('src'), model = this.getAttribute('model');
    if (!src || !model) return;
    const gen = ++this._gen;
    this._ready = false;
    try {
      // One predictor per element (a predictor holds one image); reloaded when `model` changes.
      const modelUrl = new URL(model, document.baseURI).href;
      if (this._modelUrl !== modelUrl) {
        this._modelUrl = modelUrl;
        this._predictor?.dispose();
        this._predictor = null;
        this._loading = SamPredictor.load(modelUrl, { onProgress: this._progress('model') });
      }
      const loading = this._loading;
      const [predictor, imageData] = await Promise.all([
        loading.catch((err) => {
          if (this._loading === loading) this._modelUrl = null; // retry on the next change
          throw err;
        }),
        this._fetchImage(src),
      ]);
      if (gen !== this._gen) return;
      this._predictor = predictor;
      this._showImage(imageData);
      const embedding = this.getAttribute('embedding');
      if (embedding) {
        const res = await fetch(embedding);
        if (!res.ok) throw new Error(`${embedding}: HTTP ${res.status}`);
        await predictor.setEmbedding(new Uint8Array(await res.arrayBuffer()));
      } else {
        await predictor.setImage(imageData, { onProgress: this._progress('embedding') });
      }
      if (gen !== this._gen) return;
      this._bar.hidden = true;
      this._ready = true;
      this._emit('ready', { width: imageData.width, height: imageData.height, modelInfo: predictor.modelInfo });
    } catch (err) {
      if (gen !== this._gen) return;
      this._bar.hidden = true;
      console.error('<sam-segmenter>:', err);
      this._emit('error', { error: err });
    }
  }

  async _fetchImage(src) {
    const onProgress = this._progress('image');
    const res = await fetch(src);
    if (!res.ok) throw new Error(`${src}: HTTP ${res.status}`);
    const blob = await res.blob();
    onProgress({ done: blob.size, total: blob.size });
    const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
    const c = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = c.getContext('2d');
    ctx.drawImage(bitmap, 0, 0);
    return ctx.getImageData(0, 0, c.width, c.height);
  }

  _showImage(data) {
    this._size = { width: data.width, height: data.height };
    for (const c of [this._image, this._overlay, this._prompts]) {
      c.width = data.width;
      c.height = data.height;
    }
    this._image.getContext('2d').putImageData(data, 0, 0);
    this.clear();
  }

  _onPointer(ev) {
    if (!this._ready || (ev.pointerType === 'mouse' && ev.button !== 0 && ev.button !== 2)) return;
    const r = this._prompts.getBoundingClientRect();
    const x = ((ev.clientX - r.left) / r.width) * this._size.width;
    const y = ((ev.clientY - r.top) / r.height) * this._size.height;
    const label = ev.shiftKey || ev.button === 2 ? 0 : 1;
    const add = ev.ctrlKey || ev.metaKey || label === 0;
    const points = add ? [...this._points, [x, y, label]] : [[x, y, 1]];
    this.segment(points).catch((err) => this._emit('error', { error: err }));
  }

  async segment(points) {
    if (!this._predictor || !this._ready) throw new Error('<sam-segmenter> is not ready');
    this._points = points.map((p) => [p[0], p[1], p[2] ?? 1]);
    this._drawPoints();
    const single = this._points.length === 1;
    const result = await this._predictor.predict({ points: this._points, multimask: single });
    if (!result) return null;
    const masks = result.masks;
    const index = masks.reduce((b, m, i) => (m.score > masks[b].score ? i : b), 0);
    const best = masks[index];
    this._drawMask(best);
    const detail = { mask: best.data, width: best.width, height: best.height, score: best.score,
      stability: best.stability, index, masks, points: this._points.map((p) => [...p]) };
    this._emit('mask', detail);
    return detail;
  }

  clear() {
    this._points = [];
    for (const c of [this._overlay, this._prompts]) c.getContext('2d').clearRect(0, 0, c.width, c.height);
  }

  _drawMask(m) {
    const [r, g, b] = (this.getAttribute('mask-color') || '30,144,255').split(',').map(Number);
    const img = new ImageData(m.width, m.height);
    const px = img.data;
    const w = m.width, h = m.height, d = m.data;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (!d[i]) continue;
        const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || !d[i - 1] || !d[i + 1] || !d[i - w] || !d[i + w];
        px.set(edge ? [255, 255, 255, 230] : [r, g, b, 110], i * 4);
      }
    }
    this._overlay.getContext('2d').putImageData(img, 0, 0);
  }

  _drawPoints() {
    const ctx = this._prompts.getContext('2d');
    ctx.clearRect(0, 0, this._prompts.width, this._prompts.height);
    const rect = this._prompts.getBoundingClientRect();
    const unit = rect.width ? this._prompts.width / rect.width : 1;
    for (const [x, y, label] of this._points) {
      ctx.beginPath();
      ctx.arc(x, y, 6 * unit, 0, 2 * Math.PI);
      ctx.fillStyle = label ? '#22c55e' : '#ef4444';
      ctx.fill();
      ctx.lineWidth = 2 * unit;
      ctx.strokeStyle = '#fff';
      ctx.stroke();
    }
  }
}

if (!customElements.get('sam-segmenter')) customElements.define('sam-segmenter', SamSegmenter);
