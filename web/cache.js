// cache.js: embedding caches for web/sam.js. Keys name the pixels and the
// model (pixelKey); values are embedding files (safetensors bytes as
// `sam encode` writes them), so a hit is one setEmbedding away.

// 2 x 32-bit FNV-1a style hashes (different offsets and multipliers) over
// the RGB bytes, plus the size: a collision needs both to collide.
export function pixelKey(rgb, width, height, modelId) {
  let h1 = 0x811c9dc5, h2 = 0x9e3779b9;
  const n = rgb.length;
  for (let i = 0; i < n; i++) {
    const b = rgb[i];
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  const hex = (h) => (h >>> 0).toString(16).padStart(8, '0');
  return `${modelId}|${width}x${height}|${hex(h1)}${hex(h2)}`;
}

// In-memory LRU bounded by total bytes (a Map keeps insertion order; a hit
// re-inserts the entry at the end).
export class LruBytes {
  constructor(maxBytes) { this.maxBytes = maxBytes; this.bytes = 0; this.map = new Map(); }

  get(key) {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key, value) {
    if (value.byteLength > this.maxBytes) return;
    if (this.map.has(key)) { this.bytes -= this.map.get(key).byteLength; this.map.delete(key); }
    this.map.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.byteLength;
    }
  }

  clear() { this.map.clear(); this.bytes = 0; }
}

// IndexedDB store (browsers only): database 'sam-runtime', object store
// 'embeddings', values Uint8Array. Every failure degrades to a miss.
export class IdbBytes {
  static available() { return typeof indexedDB !== 'undefined'; }

  constructor(dbName = 'sam-runtime') { this.dbName = dbName; this.db = null; }

  open() {
    if (!this.db) {
      this.db = new Promise((resolve, reject) => {
        const req = indexedDB.open(this.dbName, 1);
        req.onupgradeneeded = () => req.result.createObjectStore('embeddings');
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    }
    return this.db;
  }

  async request(mode, fn) {
    try {
      const db = await this.open();
      return await new Promise((resolve, reject) => {
        const req = fn(db.transaction('embeddings', mode).objectStore('embeddings'));
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    } catch {
      return undefined;
    }
  }

  get(key) { return this.request('readonly', (s) => s.get(key)); }
  set(key, value) { return this.request('readwrite', (s) => s.put(value, key)); }
}
