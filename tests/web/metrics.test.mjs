// /metrics of a real daemon after some traffic, checked by promtool.
//
//   node tests/web/metrics.test.mjs DAEMON
//
// Drives the daemon through successes and errors, then runs
// `promtool check metrics` (Debian's prometheus package) on the exposition
// and checks that the families the API names are there with the counts the
// traffic implies.
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

  for (const family of ['batchnormd_http_requests_total', 'batchnormd_http_request_duration_seconds',
    'batchnormd_layers', 'batchnormd_train_steps_total', 'batchnormd_store_commit_duration_seconds', 'process_start_time_seconds']) {
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
