// /metrics of a real daemon after some traffic, checked by promtool.
//
//   node tests/web/metrics.test.mjs DAEMON
//
// Drives the daemon through successes and errors, then runs
// `promtool check metrics` (Debian's prometheus package) on the exposition
// and checks that the families the API names are there with the counts the
// traffic implies, and that no two samples share a name and label set
// (promtool lets that pass; prometheus.test.mjs shows what a server does).
import { spawnSync } from 'node:child_process';
import { startDaemon, client } from './daemon.mjs';

const exe = process.argv[2];
if (!exe) {
  console.error('usage: node metrics.test.mjs DAEMON');
  process.exit(2);
}
const PROMTOOL = process.env.PROMTOOL || 'promtool';
let failures = 0;
function check(ok, what, detail) {
  if (ok) return;
  failures++;
  console.log(`not ok - ${what}${detail ? ': ' + detail : ''}`);
}

// The value of one sample, by its exact name and label set (labels in any order).
function sample(text, name, labels) {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = {};
    for (const kv of (m[2] || '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]] = kv[2];
    if (Object.keys(labels).every((k) => got[k] === labels[k]) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

const d = await startDaemon(exe);
try {
  const api = client(d.base);
  await api('PUT', '/v1/layers/m1', { num_features: 2 });
  for (let i = 0; i < 3; i++) await api('POST', '/v1/layers/m1/train', { input: [[0.0, 1.0], [2.0, 5.0]] });
  await api('POST', '/v1/layers/m1/eval', { input: [[0.5, 1.5]] });
  await api('GET', '/v1/layers/nope', undefined, { expect: [404] });
  await api('DELETE', '/v1/layers', undefined, { expect: [405] });
  await api('POST', '/v1/layers/m1/train', { input: [[1.0, 2.0, 3.0]] }, { expect: [422] });
  await api('GET', '/');
  await api('GET', '/readyz');

  const res = await fetch(d.base + '/metrics');
  const text = await res.text();
  check(res.status === 200, 'GET /metrics is 200', String(res.status));
  check(/^text\/plain/.test(res.headers.get('content-type') || ''), 'text/plain exposition', res.headers.get('content-type'));

  const pt = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (pt.error) check(false, `${PROMTOOL} runs (apt-get install prometheus, or run tests/web/setup)`, String(pt.error));
  else check(pt.status === 0, 'promtool check metrics passes', (pt.stdout + pt.stderr).trim());

  /* promtool passes two samples of one name and label set; a Prometheus server keeps one. */
  const seen = new Map();
  for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] || '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((kv) => `${kv[1]}=${kv[2]}`).sort();
    const key = `${m[1]}{${labels.join(',')}}`;
    seen.set(key, (seen.get(key) || 0) + 1);
  }
  const twice = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
  check(twice.length === 0, 'no two samples share a name and label set', `${twice.length}, first ${twice[0]}`);
  for (const method of ['PUT', 'POST']) {
    const route = method === 'PUT' ? '/v1/layers/{name}' : '/v1/layers/{name}/train';
    const n = sample(text, 'batchnormd_http_request_duration_seconds_count', { route, method });
    check(n === (method === 'PUT' ? 1 : 4), `duration histogram of ${method} ${route} by route and method`, String(n));
  }

  for (const family of ['batchnormd_http_requests_total', 'batchnormd_http_request_duration_seconds',
    'batchnormd_layers', 'batchnormd_train_steps_total', 'batchnormd_store_commit_duration_seconds', 'process_start_time_seconds',
    'batchnormd_build_info', 'process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_virtual_memory_bytes',
    'process_open_fds', 'process_max_fds']) {
    check(new RegExp('^# TYPE ' + family + ' ', 'm').test(text), `family ${family} is exposed`);
  }
  check(sample(text, 'batchnormd_layers', {}) === 1, 'batchnormd_layers counts the one layer', String(sample(text, 'batchnormd_layers', {})));
  check(sample(text, 'batchnormd_train_steps_total', { layer: 'm1' }) === 3, 'three train steps on m1',
    String(sample(text, 'batchnormd_train_steps_total', { layer: 'm1' })));
  const trains = sample(text, 'batchnormd_http_requests_total', { route: '/v1/layers/{name}/train', method: 'POST', status: '200' });
  check(trains === 3, 'requests_total counts the three train 200s under the route pattern', String(trains));
  const bad = sample(text, 'batchnormd_http_requests_total', { route: '/v1/layers/{name}/train', method: 'POST', status: '422' });
  check(bad === 1, 'requests_total counts the 422', String(bad));
  const start = sample(text, 'process_start_time_seconds', {});
  check(start > 1.6e9 && start <= Date.now() / 1000 + 1, 'process_start_time_seconds is a plausible epoch time', String(start));
  console.log(`# ${text.split('\n').filter((l) => l && !l.startsWith('#')).length} samples, ${failures} failures`);
} finally {
  d.stop();
}
process.exit(failures ? 1 : 0);
