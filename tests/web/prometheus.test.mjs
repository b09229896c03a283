// /metrics as a real Prometheus server ingests it.
//
//   node tests/web/prometheus.test.mjs DAEMON
//
// promtool reads one exposition and does not notice two samples with the
// same name and labels; a Prometheus server keeps one of them and drops the
// rest without a word. So this starts DAEMON on port 0, sends every method
// of /v1/layers/{name} and the other routes a known number of times, starts
// Debian's prometheus (PROMETHEUS, default /usr/bin/prometheus) on a free
// loopback port with a temporary config and database scraping the daemon
// every second, waits for two scrapes, and asks its HTTP API whether every
// route and method has its request counter and duration histogram with the
// counts sent, whether the scrapes went without error or dropped sample,
// whether every sample of /metrics became a series, and whether the build
// and process series are there. Stops both by PID and removes its
// directories. Exit status 0 when all pass.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, client } from './daemon.mjs';

const exe = process.argv[2];
if (!exe) {
  console.error('usage: node prometheus.test.mjs DAEMON');
  process.exit(2);
}
const PROMETHEUS = process.env.PROMETHEUS || '/usr/bin/prometheus';
if (!fs.existsSync(PROMETHEUS)) {
  console.log(`not ok - no prometheus at ${PROMETHEUS}: run tests/web/setup (apt-get install prometheus)`);
  process.exit(1);
}
const WAIT_MS = 90000; /* generous: the machine is shared */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let failures = 0;
let checks = 0;
function check(ok, what, detail) {
  checks++;
  if (ok) return;
  failures++;
  console.log(`not ok - ${what}${detail !== undefined ? ': ' + detail : ''}`);
}

// The traffic: [method, path, body, status, route]. Counts are derived from it.
const L = '/v1/layers/{name}';
const x = { input: [[0.0, 1.0], [2.0, 5.0]] };
const traffic = [
  ['PUT', '/v1/layers/a', { num_features: 2 }, 201, L],
  ['PUT', '/v1/layers/b', { num_features: 2 }, 201, L],
  ['PUT', '/v1/layers/a', { num_features: 2 }, 200, L],
  ['GET', '/v1/layers/a', undefined, 200, L],
  ['GET', '/v1/layers/a', undefined, 200, L],
  ['GET', '/v1/layers/a', undefined, 200, L],
  ['GET', '/v1/layers/nope', undefined, 404, L],
  ['HEAD', '/v1/layers/a', undefined, 200, L],
  ['PATCH', '/v1/layers/a', { momentum: 0.2 }, 200, L],
  ['PATCH', '/v1/layers/a', { eps: 0.001 }, 200, L],
  ['PATCH', '/v1/layers/a', { num_features: 3 }, 422, L],
  ['DELETE', '/v1/layers/b', undefined, 204, L],
  ['DELETE', '/v1/layers/b', undefined, 404, L],
  ['POST', '/v1/layers/a/train', x, 200, L + '/train'],
  ['POST', '/v1/layers/a/train', x, 200, L + '/train'],
  ['POST', '/v1/layers/a/eval', x, 200, L + '/eval'],
  ['GET', '/v1/layers/a/state', undefined, 200, L + '/state'],
  ['GET', '/v1/layers/a/history', undefined, 200, L + '/history'],
  ['POST', '/v1/layers/a/reset', undefined, 200, L + '/reset'],
  ['GET', '/v1/layers', undefined, 200, '/v1/layers'],
  ['POST', '/v1/layers/a', undefined, 405, 'unmatched'],
  ['GET', '/no/such/path', undefined, 404, 'unmatched'],
];

// A free loopback port: bind port 0, read it, let it go.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startPrometheus(dir, target) {
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(config, [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    '  - job_name: batchnormd',
    '    static_configs:',
    `      - targets: ['${target}']`,
    '',
  ].join('\n'));
  const port = await freePort();
  const child = spawn(PROMETHEUS, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig)));
  child.on('error', (e) => { log += String(e); });
  return { child, exited, base: `http://127.0.0.1:${port}`, log: () => log };
}

// Stop a child by its PID: SIGTERM, then SIGKILL if it lingers.
async function stopChild(child, exited) {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  process.kill(child.pid, 'SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(15000).then(() => false)]);
  if (!done && child.exitCode === null && child.signalCode === null) {
    process.kill(child.pid, 'SIGKILL');
    await exited;
  }
}

async function until(what, fn, prom) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { /* not up yet */ }
    if (prom.child.exitCode !== null) throw new Error(`prometheus exited while waiting for ${what}:\n${prom.log()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${WAIT_MS} ms:\n${prom.log()}`);
    await sleep(250);
  }
}

// An instant query; the result vector.
async function query(prom, q) {
  const res = await fetch(`${prom.base}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = await res.json();
  if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`);
  return body.data.result;
}

// The one series of the vector whose labels (besides __name__, job, instance) are exactly these.
function find(vector, labels) {
  const matches = vector.filter((s) => {
    const own = Object.entries(s.metric).filter(([k]) => !['__name__', 'job', 'instance'].includes(k));
    return own.length === Object.keys(labels).length && own.every(([k, v]) => labels[k] === v);
  });
  return matches.length === 1 ? Number(matches[0].value[1]) : matches.length ? NaN : undefined;
}

function countBy(keyOf) {
  const m = new Map();
  for (const t of traffic) m.set(keyOf(t), (m.get(keyOf(t)) || 0) + 1);
  return m;
}

async function checkHttpSeries(prom) {
  const durations = await query(prom, 'batchnormd_http_request_duration_seconds_count{job="batchnormd"}');
  for (const [key, n] of countBy((t) => `${t[4]}\t${t[0]}`)) {
    const [route, method] = key.split('\t');
    const got = find(durations, { route, method });
    check(got === n, `duration histogram of ${method} ${route} counts ${n}`, String(got));
  }
  const totals = await query(prom, 'batchnormd_http_requests_total{job="batchnormd"}');
  for (const [key, n] of countBy((t) => `${t[4]}\t${t[0]}\t${t[3]}`)) {
    const [route, method, status] = key.split('\t');
    const got = find(totals, { route, method, status });
    check(got === n, `requests_total of ${method} ${route} ${status} is ${n}`, String(got));
  }
  const metrics = find(durations, { route: '/metrics', method: 'GET' });
  check(metrics >= 1, 'the scrapes themselves are timed under GET /metrics', String(metrics));
  const buckets = await query(prom, `count by (route, method) (batchnormd_http_request_duration_seconds_bucket{job="batchnormd",route="${L}"})`);
  check(buckets.length === 5 && buckets.every((s) => Number(s.value[1]) === 15),
    `one set of 15 buckets for each of GET, HEAD, PUT, PATCH, DELETE of ${L}`,
    JSON.stringify(buckets.map((s) => [s.metric.method, s.value[1]])));
}

async function checkProcessSeries(prom) {
  const one = async (name) => {
    const v = await query(prom, `${name}{job="batchnormd"}`);
    return v.length === 1 ? Number(v[0].value[1]) : undefined;
  };
  const info = await query(prom, 'batchnormd_build_info{job="batchnormd"}');
  const version = (spawnSync(exe, ['--version'], { encoding: 'utf8' }).stdout || '').trim().split(' ')[1];
  check(info.length === 1 && Number(info[0].value[1]) === 1, 'one batchnormd_build_info series of value 1', JSON.stringify(info));
  if (info.length === 1) {
    const m = info[0].metric;
    check(m.version === version, 'build_info version is what --version prints', `${m.version} vs ${version}`);
    check(/^3\.\d+\.\d+/.test(m.sqlite || ''), 'build_info names the SQLite version', m.sqlite);
    check(/^\d+\.\d+\.\d+/.test(m.microhttpd || ''), 'build_info names the libmicrohttpd version', m.microhttpd);
  }
  const cpu = await one('process_cpu_seconds_total');
  const rss = await one('process_resident_memory_bytes');
  const vsz = await one('process_virtual_memory_bytes');
  const fds = await one('process_open_fds');
  const maxFds = await one('process_max_fds');
  const start = await one('process_start_time_seconds');
  check(cpu > 0 && cpu < 3600, 'process_cpu_seconds_total is a plausible CPU time', String(cpu));
  check(rss > 1e6 && rss < vsz, 'process_resident_memory_bytes is over 1 MB and under the virtual size', `${rss} / ${vsz}`);
  check(fds >= 3 && fds < maxFds, 'process_open_fds is at least stdio and under process_max_fds', `${fds} / ${maxFds}`);
  check(start > 1.6e9 && start <= Date.now() / 1000 + 1, 'process_start_time_seconds is a plausible epoch time', String(start));
}

// Every sample line of /metrics should be one series in Prometheus: none merged or dropped.
async function checkNothingDropped(prom, daemonBase) {
  const text = await (await fetch(daemonBase + '/metrics')).text();
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
  const series = await query(prom, 'count({job="batchnormd",__name__!~"up|scrape_.+"})');
  const kept = series.length ? Number(series[0].value[1]) : 0;
  check(kept === lines.length, 'every sample line of /metrics is a series of its own in Prometheus',
    `${lines.length} lines, ${kept} series`);
  /* Prometheus's own counters of samples it refused, from its own /metrics. */
  const own = await (await fetch(prom.base + '/metrics')).text();
  for (const name of ['prometheus_target_scrapes_sample_duplicate_timestamp_total',
    'prometheus_target_scrapes_sample_out_of_order_total', 'prometheus_target_scrapes_sample_out_of_bounds_total']) {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(own);
    check(m && Number(m[1]) === 0, `Prometheus counted no sample dropped (${name})`, m ? m[1] : 'absent');
  }
  const targets = await (await fetch(prom.base + '/api/v1/targets')).json();
  const active = (targets.data && targets.data.activeTargets) || [];
  check(active.length === 1, 'one active target', String(active.length));
  for (const t of active) {
    check(t.health === 'up', 'the target is up', t.health);
    check(t.lastError === '', 'the last scrape had no error', t.lastError);
  }
  const up = await query(prom, 'up{job="batchnormd"}');
  check(up.length === 1 && up[0].value[1] === '1', 'up == 1', JSON.stringify(up.map((s) => s.value[1])));
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnd-prom-'));
let d;
let prom;
try {
  d = await startDaemon(exe);
  const api = client(d.base);
  for (const [method, p, body, status] of traffic) await api(method, p, body, { expect: [status] });
  /* Once before Prometheus starts, so that no series appears between its scrapes. */
  await api('GET', '/metrics');
  traffic.push(['GET', '/metrics', undefined, 200, '/metrics']);

  prom = await startPrometheus(dir, new URL(d.base).host);
  await until('prometheus ready', async () => (await fetch(prom.base + '/-/ready')).status === 200, prom);
  const scrapes = await until('two scrapes', async () => {
    const v = await query(prom, 'count_over_time(up{job="batchnormd"}[5m])');
    return v.length === 1 && Number(v[0].value[1]) >= 2 ? Number(v[0].value[1]) : 0;
  }, prom);
  traffic.pop(); /* GET /metrics has grown with every scrape: checked as at least one */

  await checkHttpSeries(prom);
  await checkProcessSeries(prom);
  await checkNothingDropped(prom, d.base);
  console.log(`# ${scrapes} scrapes, ${checks} checks, ${failures} failures`);
} catch (e) {
  failures++;
  console.log(`not ok - ${e.stack || e}`);
} finally {
  if (prom) await stopChild(prom.child, prom.exited);
  if (d) d.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(failures ? 1 : 0);
