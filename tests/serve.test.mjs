// The demo's static server (demo/serve.mjs): paths it serves, MIME types, security headers,
// refusal of path traversal and of files outside demo/, web/ and build/wasm/.
import assert from 'node:assert/strict';
import http from 'node:http';
import test from 'node:test';
import { startServer } from '../demo/serve.mjs';

// Raw GET without URL normalisation (fetch would resolve "..").
function get(port, rawPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('demo server: MIME types, redirects, traversal refused, localhost only', async (t) => {
  const server = await startServer({ port: 0 });
  t.after(() => server.close());
  const { port, address } = server.address();
  assert.equal(address, '127.0.0.1');

  const root = await get(port, '/');
  assert.equal(root.status, 302);
  assert.equal(root.headers.location, '/demo/');
  const page = await get(port, '/demo/');
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'], /^text\/html/);
  assert.match(page.headers['content-security-policy'], /default-src 'self'/);
  for (const [p, type] of [['/demo/app.js', 'text/javascript'], ['/web/sam.js', 'text/javascript'],
    ['/demo/style.css', 'text/css'], ['/web/element.js', 'text/javascript']]) {
    const r = await get(port, p);
    assert.equal(r.status, 200, p);
    assert.match(r.headers['content-type'], new RegExp('^' + type), p);
  }
  const wasm = await get(port, '/build/wasm/sam_wasm.wasm');
  if (wasm.status === 200) assert.equal(wasm.headers['content-type'], 'application/wasm');

  for (const bad of ['/demo/../package.json', '/demo/%2e%2e/package.json', '/web/..%2fpackage.json',
    '/web/%2e%2e%2f%2e%2e%2fetc/passwd', '/build/wasm/../sam', '/src/sam.c', '/package.json',
    '/demo/..\\package.json', '/demo/%00', '/%2e%2e/%2e%2e/etc/passwd', '/demo/%E0%A4%A']) {
    const r = await get(port, bad);
    assert.ok(r.status === 404 || r.status === 400, `${bad}: ${r.status}`);
    assert.ok(!r.body.toString().includes('"name": "sam-runtime"'), bad);
  }
  await assert.rejects(startServer({ port: 0, host: '0.0.0.0' }), /localhost only/);
});
