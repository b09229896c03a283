// A throwaway stand-in for batchnormd, for working on the dashboard without
// the daemon: it serves dashboard/ and a small in-memory subset of the API
// (create, list, inspect, train, load state, history). It is not the
// contract and no test runs against it; the tests start the real daemon.
//
//   node tests/web/standin.mjs [PORT]
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dash = path.join(here, '..', '..', 'dashboard');
const layers = new Map();
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
const now = () => new Date().toISOString();
// float32, held as the double of its shortest decimal so JSON prints it as the daemon does.
const f32 = (v) => {
  const f = Math.fround(v);
  for (let p = 1; p < 9; p++) if (Math.fround(Number(f.toPrecision(p))) === f) return Number(f.toPrecision(p));
  return Number(f.toPrecision(9));
};

function send(res, status, body, headers = {}) {
  const text = body === null ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': status >= 400 ? 'application/problem+json' : 'application/json', ...headers });
  res.end(text);
}
const problem = (res, status, code, detail) => send(res, status, { type: 'about:blank', title: code, status, detail, code });

function flatten(t) {
  if (t && t.shape) return { shape: t.shape, data: t.data };
  const shape = [];
  for (let x = t; Array.isArray(x); x = x[0]) shape.push(x.length);
  return { shape, data: t.flat(Infinity) };
}

function view(l) {
  return { name: l.name, config: l.config, state: l.state, created_at: l.created_at, updated_at: l.updated_at };
}

function train(l, input) {
  const { shape, data } = flatten(input);
  const C = shape[1], N = shape[0], S = data.length / (N * C);
  const n = N * S;
  const bm = [], bv = [];
  for (let c = 0; c < C; c++) {
    let s = 0, q = 0;
    for (let i = 0; i < N; i++) for (let j = 0; j < S; j++) s += data[(i * C + c) * S + j];
    const m = s / n;
    for (let i = 0; i < N; i++) for (let j = 0; j < S; j++) q += (data[(i * C + c) * S + j] - m) ** 2;
    bm.push(f32(m)); bv.push(f32(q / n));
  }
  const st = l.state, cfg = l.config;
  if (cfg.track_running_stats) {
    st.num_batches_tracked += 1;
    const f = cfg.momentum === null ? 1 / st.num_batches_tracked : cfg.momentum;
    for (let c = 0; c < C; c++) {
      st.running_mean[c] = f32((1 - f) * st.running_mean[c] + f * bm[c]);
      st.running_var[c] = f32((1 - f) * st.running_var[c] + f * bv[c] * n / (n - 1));
    }
  }
  l.step += 1;
  l.updated_at = now();
  l.etag++;
  const h = { step: l.step, at: l.updated_at, count: n, num_batches_tracked: st.num_batches_tracked,
    batch_mean: bm, batch_var: bv };
  if (cfg.track_running_stats) { h.running_mean = st.running_mean.slice(); h.running_var = st.running_var.slice(); }
  l.history.push(h);
  return { output: input, batch_mean: bm, batch_var: bv, num_batches_tracked: st.num_batches_tracked,
    running_mean: st.running_mean, running_var: st.running_var };
}

async function body(req) {
  let s = '';
  for await (const chunk of req) s += chunk;
  return s ? JSON.parse(s) : null;
}

http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const p = url.pathname;
  if (req.method === 'GET' && (p === '/' || /^\/[\w.-]+\.(js|css|svg|html)$/.test(p))) {
    const f = path.join(dash, p === '/' ? 'index.html' : p.slice(1));
    if (fs.existsSync(f)) {
      res.writeHead(200, { 'Content-Type': types[path.extname(f)] });
      return res.end(fs.readFileSync(f));
    }
  }
  if (p === '/readyz' || p === '/livez') return send(res, 200, { status: 'ok' });
  if (p === '/v1/layers' && req.method === 'GET') {
    const list = [...layers.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((l) => ({
      name: l.name, config: l.config, num_batches_tracked: l.state.num_batches_tracked, updated_at: l.updated_at }));
    return send(res, 200, { layers: list });
  }
  const m = /^\/v1\/layers\/([^/]+)(?:\/(train|eval|state|history))?$/.exec(p);
  if (!m) return problem(res, 404, 'not_found', 'no such path');
  const name = decodeURIComponent(m[1]);
  let l = layers.get(name);
  if (!m[2] && req.method === 'PUT') {
    const b = await body(req);
    const config = { num_features: b.num_features, eps: b.eps ?? 1e-5, momentum: b.momentum === undefined ? 0.1 : b.momentum,
      affine: b.affine ?? true, track_running_stats: b.track_running_stats ?? true };
    const C = config.num_features;
    const state = {};
    if (config.affine) { state.weight = Array(C).fill(1); state.bias = Array(C).fill(0); }
    if (config.track_running_stats) { state.running_mean = Array(C).fill(0); state.running_var = Array(C).fill(1); state.num_batches_tracked = 0; }
    l = { name, config, state, created_at: now(), updated_at: now(), history: [], step: 0, etag: 1 };
    layers.set(name, l);
    return send(res, 201, view(l), { Location: p, ETag: `"${l.etag}"` });
  }
  if (!l) return problem(res, 404, 'layer_not_found', `no layer named ${name}`);
  if (!m[2] && req.method === 'GET') return send(res, 200, view(l), { ETag: `"${l.etag}"` });
  if (m[2] === 'train' && req.method === 'POST') {
    const r = train(l, (await body(req)).input);
    return send(res, 200, r, { ETag: `"${l.etag}"` });
  }
  if (m[2] === 'eval' && req.method === 'POST') {
    const { shape, data } = flatten((await body(req)).input);
    const C = shape[1], S = data.length / (shape[0] * C);
    const out = data.map((x, i) => {
      const c = Math.floor(i / S) % C;
      return Math.fround((Math.fround(x - l.state.running_mean[c])) / Math.sqrt(l.state.running_var[c] + l.config.eps));
    });
    if (!out.every(Number.isFinite)) return problem(res, 422, 'not_finite', 'output is not finite in float32');
    return send(res, 200, { output: { shape, data: out.map(f32) } }, { ETag: `"${l.etag}"` });
  }
  if (m[2] === 'state' && req.method === 'PUT') {
    Object.assign(l.state, await body(req));
    l.updated_at = now();
    l.etag++;
    return send(res, 200, l.state, { ETag: `"${l.etag}"` });
  }
  if (m[2] === 'history' && req.method === 'GET') {
    const after = Number(url.searchParams.get('after') || 0);
    const limit = Number(url.searchParams.get('limit') || 100);
    const rest = l.history.filter((h) => h.step > after);
    const steps = rest.slice(0, limit);
    return send(res, 200, { steps, next_after: rest.length > limit ? steps[steps.length - 1].step : null });
  }
  return problem(res, 405, 'method_not_allowed', 'method not allowed');
}).listen(Number(process.argv[2]) || 0, '127.0.0.1', function () {
  console.log(`listening on http://127.0.0.1:${this.address().port}`);
});
