// The access log on stderr, as people and log shippers read it.
//
//   node tests/web/access_log.test.mjs DAEMON
//
// Starts DAEMON on port 0 with 4 worker threads and sends requests of
// several methods, then a burst of concurrent requests whose paths are long
// and unique. Checks that every request has exactly one line,
// `TIME METHOD PATH STATUS DURATIONus`, TIME being RFC 3339 UTC with
// milliseconds within the test's own clock window, and that no line is cut
// or mixed with another (each is written whole by one write). Exit status 0
// when all pass.
import { startDaemon, client } from './daemon.mjs';

const exe = process.argv[2];
if (!exe) {
  console.error('usage: node access_log.test.mjs DAEMON');
  process.exit(2);
}
const BURST = 600;       /* requests in the concurrent burst */
const PARALLEL = 24;     /* of them in flight at once */
const WAIT_MS = 30000;

let failures = 0;
let checks = 0;
function check(ok, what, detail) {
  checks++;
  if (ok) return;
  failures++;
  console.log(`not ok - ${what}${detail !== undefined ? ': ' + detail : ''}`);
}

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\/\S*) (\d{3}|aborted \(\d+\)) (\d+)us$/;

// The access lines of the daemon's stderr (its other lines start with a word and a colon).
function accessLines(stderr) {
  return stderr.split('\n').filter((l) => l && !/^[a-z]+( [0-9.]+)?:/.test(l));
}

// A unique path of 190 bytes: no route has it, so each is a quick 404.
const longPath = (i) => `/burst/${String(i).padStart(6, '0')}/`.padEnd(190, 'x');

let d;
try {
  const t0 = Date.now();
  d = await startDaemon(exe, { extraArgs: ['--threads', '4'] });
  const api = client(d.base);
  const sent = [
    ['PUT', '/v1/layers/a', { num_features: 2 }, 201],
    ['GET', '/v1/layers/a', undefined, 200],
    ['HEAD', '/v1/layers/a', undefined, 200],
    ['PATCH', '/v1/layers/a', { momentum: 0.2 }, 200],
    ['POST', '/v1/layers/a/eval', { input: [[1.0, 2.0]] }, 200],
    ['GET', '/v1/layers/nope', undefined, 404],
    ['DELETE', '/v1/layers/a', undefined, 204],
  ];
  for (const [method, p, body, status] of sent) await api(method, p, body, { expect: [status] });
  let next = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < BURST) {
      const i = next++;
      await api('GET', longPath(i), undefined, { expect: [404] });
    }
  }));
  const expected = sent.length + BURST;

  /* A line is written when the request completes, just after the answer is sent. */
  const deadline = Date.now() + WAIT_MS;
  const readyz = () => accessLines(d.stderr()).filter((l) => / \/readyz /.test(l)).length;
  while (accessLines(d.stderr()).length - readyz() < expected && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const t1 = Date.now();
  const lines = accessLines(d.stderr()).filter((l) => !/ \/readyz /.test(l));
  check(lines.length === expected, `one access line per request (${expected})`, String(lines.length));

  const bad = lines.filter((l) => !LINE.test(l));
  check(bad.length === 0, 'every line is TIME METHOD PATH STATUS DURATIONus', `${bad.length} not, first: ${JSON.stringify(bad[0])}`);
  const parsed = lines.map((l) => LINE.exec(l)).filter(Boolean);
  const outside = parsed.filter((m) => {
    const t = Date.parse(m[1]);
    return !(t >= t0 - 2000 && t <= t1 + 2000);
  });
  check(outside.length === 0, 'every time is within the test\'s own clock window', outside[0] && outside[0][0]);
  for (let k = 0; k < sent.length; k++) {
    const [method, p, , status] = sent[k];
    const m = parsed[k];
    check(m && m[2] === method && m[3] === p && m[4] === String(status), `line ${k + 1} is ${method} ${p} ${status}`, m && m[0]);
  }
  const seen = new Map();
  for (const m of parsed)
    if (m[3].startsWith('/burst/')) seen.set(m[3], (seen.get(m[3]) || 0) + 1);
  let missing = 0;
  for (let i = 0; i < BURST; i++)
    if (seen.get(longPath(i)) !== 1 || !parsed.some((m) => m[3] === longPath(i) && m[2] === 'GET' && m[4] === '404')) missing++;
  check(missing === 0 && seen.size === BURST, 'each burst request has exactly one whole line: GET PATH 404',
    `${missing} without, ${seen.size} distinct burst paths`);
  console.log(`# ${lines.length} lines, ${checks} checks, ${failures} failures`);
} catch (e) {
  failures++;
  console.log(`not ok - ${e.stack || e}`);
} finally {
  if (d) d.stop();
}
process.exit(failures ? 1 : 0);
