// Shared helpers for the node:test suites: paths, running the CLI and the
// PyTorch reference, and a per-run scratch folder.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// SAM_BUILD=build/asan runs the suite against the sanitizer build.
export const BUILD = path.resolve(ROOT, process.env.SAM_BUILD || 'build');
export const SAM = path.join(BUILD, 'sam');
// Debian's python3 has torch; the first python3 on PATH may not.
export const PYTHON = process.env.SAM_PYTHON || '/usr/bin/python3';

// Removed when the test file's process exits (a run left ~1 GB of
// checkpoints and embeddings behind, and repeated runs filled the disk);
// SAM_KEEP_TMP=1 keeps them for inspection.
export function tmpDir(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `sam-${name}-`));
  if (process.env.SAM_KEEP_TMP !== '1') process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Runs a command, returns {status, stdout, stderr}. Never throws on non-zero.
export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// Runs and throws with the full output when the exit status is not 0.
export function runOk(cmd, args, opts = {}) {
  const r = run(cmd, args, opts);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status} ${r.signal || ''}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

export function python(script, args, opts = {}) {
  return runOk(PYTHON, [path.join(ROOT, script), ...args], opts);
}

// A cache folder shared by the suites of one `npm test` run, for checkpoints
// and reference outputs that several tests use.
export const CACHE = path.resolve(ROOT, process.env.SAM_TEST_CACHE || 'build/test-cache');
fs.mkdirSync(CACHE, { recursive: true });

// Minimal .npy reader (little-endian float32 / uint8, C order) for tests.
export function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file} is not .npy`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').filter((s) => s.trim()).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const body = buf.subarray(start);
  let data;
  if (descr === '<f4') data = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length));
  else if (descr === '|u1' || descr === '|b1') data = new Uint8Array(body);
  else throw new Error(`${file}: unsupported dtype ${descr}`);
  return { shape, data };
}
