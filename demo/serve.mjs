// Static server for the browser demo: `npm start`, then open http://localhost:8080/
//
// Serves, under the same paths as in the repository (so relative imports work):
//   /demo/...       the demo page (demo/index.html, app.js, style.css, models, sample)
//   /web/...        the JS library (sam.js, worker.js, masks.js, element.js)
//   /build/wasm/... the WebAssembly build (`./build.sh wasm`)
// and redirects / to /demo/. Nothing else in the repository is reachable.
// Listens on 127.0.0.1 only. Environment:
//   PORT=8080              port (0 picks a free one; the URL is printed either way)
//   HOST=127.0.0.1         bind address (localhost addresses only)
//   SAM_DEMO_MODEL=FILE    serve FILE as /demo/models/sam_demo.safetensors (development, tests)
//   SAM_DEMO_IMAGE=FILE    serve FILE as /demo/sample.png
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MOUNTS = ['demo', 'web', 'build/wasm'];
const OVERRIDES = {
  '/demo/models/sam_demo.safetensors': process.env.SAM_DEMO_MODEL,
  '/demo/sample.png': process.env.SAM_DEMO_IMAGE,
};
const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
  '.pth': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};
// The page may talk only to its own origin; the headers make the browser enforce it.
// Cross-origin isolation also allows SharedArrayBuffer (threaded WASM).
const SECURITY_HEADERS = {
  'Content-Security-Policy': [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval' blob:",
    "worker-src 'self' blob:",
    "img-src 'self' blob: data:",
    "connect-src 'self' blob: data:",
    "style-src 'self' 'unsafe-inline'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; '),
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
};

// Maps a URL path to a file inside one of the mounts, or null (traversal, outside the mounts).
export function resolvePath(urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  if (decoded.split('/').some((seg) => seg === '..' || seg === '.')) return null;
  const override = OVERRIDES[decoded];
  if (override) return path.resolve(override);
  const rel = path.posix.normalize(decoded).replace(/^\/+/, '');
  const mount = MOUNTS.find((m) => rel === m || rel.startsWith(m + '/'));
  if (!mount) return null;
  const base = path.join(ROOT, mount);
  const file = path.resolve(ROOT, rel);
  if (file !== base && !file.startsWith(base + path.sep)) return null;
  // Refuse symlinks that lead outside the mount.
  try {
    const real = fs.realpathSync(file);
    const realBase = fs.realpathSync(base);
    if (real !== realBase && !real.startsWith(realBase + path.sep)) return null;
  } catch {
    /* missing: answered 404 below */
  }
  return file;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}

function handle(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  }
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/' || url.pathname === '/demo') {
    return send(res, 302, '', { Location: '/demo/' + url.search });
  }
  if (url.pathname === '/favicon.ico') return send(res, 204, '');
  let file = resolvePath(url.pathname);
  if (!file) return send(res, 404, 'not found\n');
  let stat;
  try {
    stat = fs.statSync(file);
    if (stat.isDirectory()) {
      if (!url.pathname.endsWith('/')) return send(res, 301, '', { Location: url.pathname + '/' + url.search });
      file = path.join(file, 'index.html');
      stat = fs.statSync(file);
    }
  } catch {
    return send(res, 404, 'not found\n');
  }
  if (!stat.isFile()) return send(res, 404, 'not found\n');
  const type = MIME[path.extname(file).toLowerCase()] || 'application/octet-stream';
  const headers = {
    ...SECURITY_HEADERS,
    'Content-Type': type,
    'Content-Length': stat.size,
    'Cache-Control': 'no-cache',
    'Last-Modified': stat.mtime.toUTCString(),
  };
  if (req.headers['if-modified-since'] && new Date(req.headers['if-modified-since']) >= new Date(stat.mtime.toUTCString())) {
    res.writeHead(304, SECURITY_HEADERS);
    return res.end();
  }
  res.writeHead(200, headers);
  if (req.method === 'HEAD') return res.end();
  const stream = fs.createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

export async function startServer({ port = 8080, host = '127.0.0.1' } = {}) {
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) {
    throw new Error(`refusing to listen on ${host}: the demo server is for localhost only`);
  }
  const server = http.createServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

function checkBuild() {
  const wasmDir = path.join(ROOT, 'build', 'wasm');
  if (!fs.existsSync(wasmDir) || !fs.readdirSync(wasmDir).some((f) => f.endsWith('.wasm'))) {
    console.warn('build/wasm is missing: the page needs the WebAssembly build. Build it with:\n' +
      '  ./build.sh wasm      (or ./build.sh, which builds everything)\n');
  }
  if (!fs.existsSync(OVERRIDES['/demo/models/sam_demo.safetensors'] || path.join(ROOT, 'demo/models/sam_demo.safetensors'))) {
    console.warn('demo/models/sam_demo.safetensors is missing: the page will ask for a model file.\n');
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST || '127.0.0.1';
  checkBuild();
  startServer({ port, host }).then((server) => {
    const { port: actual } = server.address();
    const shown = host === '127.0.0.1' || host === '::1' ? 'localhost' : host;
    console.log(`SAM demo: http://${shown}:${actual}/  (Ctrl+C to stop)`);
  }).catch((err) => {
    console.error(`cannot start the demo server: ${err.message}` +
      (err.code === 'EADDRINUSE' ? ` (try PORT=8081 npm start)` : ''));
    process.exit(1);
  });
}
