// worker.js: runs web/engine.js in a module Web Worker for web/sam.js, so
// the page never blocks on the encoder or decoder.
//
// Protocol (the same requests sam.js hands to the engine in-process):
//   page -> worker  {id, op, ...args}  |  {op: 'cancel', token} (no reply)
//   worker -> page  {id, progress: {stage, done, total}}   (0..n times)
//                   {id, ok: true, result} | {id, ok: false, error: {name, message}}
// Requests are handled one at a time in arrival order; result buffers are
// transferred, not copied.
import { Engine } from './engine.js';

const engine = new Engine();
let chain = Promise.resolve();

function transferables(result) {
  const list = [];
  for (const v of Object.values(result || {})) {
    if (ArrayBuffer.isView(v) && !list.includes(v.buffer)) list.push(v.buffer);
  }
  return list;
}

self.onmessage = (event) => {
  const msg = event.data;
  // {op: 'cancel', token} is served out of turn: it stops the running
  // everything with that token between two batches (engine.cancel), which
  // then rejects with AbortError.
  if (msg.op === 'cancel') { engine.cancel(msg.token); return; }
  chain = chain.then(async () => {
    try {
      const result = await engine.handle(msg, (progress) => self.postMessage({ id: msg.id, progress }));
      self.postMessage({ id: msg.id, ok: true, result }, transferables(result));
    } catch (e) {
      self.postMessage({ id: msg.id, ok: false, error: { name: e.name || 'Error', message: e.message || String(e) } });
    }
  });
};
