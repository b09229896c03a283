// Start batchnormd on port 0 with a fresh database in a temporary directory,
// wait until /readyz answers, and give back its base URL and a stop().
// Shared by the browser test, the metrics checks and the access log test.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export async function startDaemon(exe, { timeoutMs = 30000, extraArgs = [] } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnd-web-'));
  const args = ['--listen', '127.0.0.1:0', '--db', path.join(dir, 'layers.db'), ...extraArgs];
  /* A .mjs is the development stand-in, run by node. */
  const child = exe.endsWith('.mjs')
    ? spawn(process.execPath, [exe, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no "listening on" line within ${timeoutMs} ms; stderr:\n${log}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`daemon exited (${code ?? sig}); stderr:\n${log}`)); });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
  }).catch((e) => { stop(); throw e; });
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(base + '/readyz');
      if (r.status === 200) break;
    } catch (e) { /* not accepting yet */ }
    if (Date.now() > until) { stop(); throw new Error('/readyz never answered 200'); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { base, stop, stderr: () => log };
}

// A small JSON client that throws on an unexpected status.
export function client(base) {
  return async function call(method, p, body, { expect = [200, 201, 204], headers = {} } = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(base + p, init);
    const text = await res.text();
    if (!expect.includes(res.status)) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    const isJson = /json/.test(res.headers.get('content-type') || '');
    return { status: res.status, text, json: isJson && text ? JSON.parse(text) : null, headers: res.headers };
  };
}
