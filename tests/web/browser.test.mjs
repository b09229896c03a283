// The dashboard in a real browser, against the real daemon.
//
//   node tests/web/browser.test.mjs DAEMON SCREENSHOT-DIR
//
// Starts DAEMON on port 0 with a temporary database, creates and trains
// layers over the API, opens the page in Debian's headless chromium through
// playwright-core, and checks that what the page prints is what the API
// returned, that the chart over steps has one vertex per step, that the
// train-vs-eval view shows PyTorch's numbers for the API's worked example
// (golden.json, written by golden.py), that warnings appear when they should,
// that a refresh keeps the view, and that the page asks no other host for
// anything. Saves screenshots in SCREENSHOT-DIR. Exit status 0 when all pass.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon, client } from './daemon.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [exe, shots] = process.argv.slice(2);
if (!exe || !shots) {
  console.error('usage: node browser.test.mjs DAEMON SCREENSHOT-DIR');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
  console.log(`not ok - no browser at ${CHROMIUM}: run tests/web/setup (apt-get install chromium)`);
  process.exit(1);
}
const { chromium } = await import('playwright-core').catch(() => {
  console.log('not ok - playwright-core is not installed: run tests/web/setup (npm ci in tests/web)');
  process.exit(1);
});
const golden = JSON.parse(fs.readFileSync(path.join(here, 'golden.json'), 'utf8')).worked_example;

let failures = 0;
let checks = 0;
function check(ok, what, detail) {
  checks++;
  if (ok) return;
  failures++;
  console.log(`not ok - ${what}${detail === undefined ? '' : ': ' + detail}`);
}
function note(what) { console.log('# ' + what); }

// The numbers of one array exactly as the server spelled them, from the raw JSON text.
function rawArray(text, key) {
  const m = new RegExp('"' + key + '"\\s*:\\s*\\[([^\\]]*)\\]').exec(text);
  if (!m) throw new Error(`no array "${key}" in ${text.slice(0, 200)}`);
  return m[1].split(',').map((s) => s.trim());
}

// Relative distance in float32 units in the last place.
function ulps(a, b) {
  const fa = new Float32Array([a]), fb = new Float32Array([b]);
  const ia = new Int32Array(fa.buffer)[0], ib = new Int32Array(fb.buffer)[0];
  return Math.abs(ia - ib);
}

// A deterministic (N, C, L) batch: channel c has mean about c/4 - 1 and spread about 0.2 + c/10.
function batch(seed, N, C, L) {
  let s = seed >>> 0;
  const rnd = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
  const data = [];
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let l = 0; l < L; l++) {
    const v = c / 4 - 1 + (0.2 + c / 10) * (rnd() + rnd() + rnd() - 1.5);
    data.push(Math.round(v * 1000) / 1000);
  }
  return { shape: [N, C, L], data };
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const d = await startDaemon(exe);
  const api = client(d.base);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'bnd-chromium-'));
  let context = null;
  try {
    // --- the layers, built over the API ---
    await api('PUT', '/v1/layers/bn1', golden.config);
    let trained;
    for (let i = 0; i < golden.steps; i++) trained = await api('POST', '/v1/layers/bn1/train', { input: golden.input });
    check(rawArray(trained.text, 'batch_var')[0] === golden.batch_var, 'worked example batch_var from the API', trained.text);
    let calibrated;
    for (let i = 0; i < golden.steps; i++) calibrated = await api('POST', '/v1/layers/bn1/calibration', { input: golden.input });

    await api('PUT', '/v1/layers/conv16', { num_features: 16 });
    for (let i = 0; i < 100; i++) await api('POST', '/v1/layers/conv16/train', { input: batch(i + 1, 4, 16, 3) });

    await api('PUT', '/v1/layers/fresh', { num_features: 3 });
    await api('PUT', '/v1/layers/batch-only', { num_features: 2, track_running_stats: false });
    for (let i = 0; i < 5; i++) await api('POST', '/v1/layers/batch-only/train', { input: batch(100 + i, 3, 2, 2) });

    // A state loaded with huge values: a running_mean near the float32 limit and
    // a zero running_var. Every number is finite, but eval's shift
    // -running_mean/sqrt(running_var + eps) overflows float32.
    await api('PUT', '/v1/layers/loaded', { num_features: 2, affine: false });
    await api('POST', '/v1/layers/loaded/train', { input: [[0.0, 1.0], [2.0, 5.0]] });
    await api('PUT', '/v1/layers/loaded/state', { running_mean: [3e38, 0.5], running_var: [0.0, 1.0] });
    const refused = await api('POST', '/v1/layers/loaded/eval', { input: [[1.0, 1.0], [2.0, 2.0]] }, { expect: [200, 422] });
    check(refused.status === 422, 'the daemon refuses eval whose output overflows float32', refused.text);

    for (let i = 0; i < 9; i++) await api('PUT', `/v1/layers/extra-${String(i).padStart(2, '0')}`, { num_features: 4 + i, momentum: i % 3 ? 0.1 : null });
    const list = (await api('GET', '/v1/layers')).json.layers;

    // --- the browser ---
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 800 },
    });
    const origin = new URL(d.base).origin;
    const foreign = [];
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (new URL(u).origin === origin) return route.continue();
      foreign.push(u);
      return route.abort();
    });
    const page = context.pages()[0] || await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    /* The page asks each tracking layer for its calibration: 404 when none is open is expected. */
    const expected404 = (m) => /status of 404/.test(m.text()) && /\/calibration$/.test(m.location().url || '');
    page.on('console', (m) => { if (m.type() === 'error' && !expected404(m)) errors.push(m.text()); });

    // The list: one row per layer, num_batches_tracked as the API says.
    await page.goto(d.base + '/');
    await page.waitForFunction((n) => document.querySelectorAll('#layer-rows tr').length === n, list.length);
    for (const l of list) {
      const cells = await page.locator(`#layer-rows tr[data-layer="${l.name}"] td`).allTextContents();
      check(cells[0].startsWith(l.name), `list row for ${l.name}`, cells.join(' | '));
      check(cells[6] === (l.num_batches_tracked === undefined ? '—' : String(l.num_batches_tracked)),
        `list num_batches_tracked of ${l.name}`, cells[6]);
    }
    check(await page.locator('#layer-rows tr[data-layer="fresh"] .badge').count() === 1, 'a never trained layer is marked in the list');
    await page.screenshot({ path: path.join(shots, 'layers.png'), fullPage: true });
    check(await page.locator('#filter-box').isVisible(), 'the filter box shows with many layers');
    await page.fill('#filter', 'extra-0');
    check(await page.locator('#layer-rows tr').count() === 9, 'the filter keeps the matching layers',
      String(await page.locator('#layer-rows tr').count()));
    await page.fill('#filter', '');

    // One layer, 16 channels: every number on the page is the API's, as text.
    await page.goto(d.base + '/#/layers/conv16');
    await page.waitForSelector('#ch-table td[data-k="running_mean"][data-ch="15"]');
    const layer = await api('GET', '/v1/layers/conv16');
    for (const key of ['running_mean', 'running_var', 'weight', 'bias']) {
      const want = rawArray(layer.text, key);
      const got = await page.locator(`#ch-table td[data-k="${key}"]`).allTextContents();
      check(JSON.stringify(got) === JSON.stringify(want), `conv16 ${key} on the page equals the API`, `page ${got} api ${want}`);
    }
    const nbt = await page.locator('#d-config [data-k="num_batches_tracked"] dd').textContent();
    check(nbt === String(layer.json.state.num_batches_tracked) && nbt === '100', 'conv16 num_batches_tracked', nbt);
    const hist = await api('GET', '/v1/layers/conv16/history?limit=1000');
    check(hist.json.steps.length === 100, 'history has 100 steps', String(hist.json.steps.length));
    await page.waitForSelector('#hist-charts polyline[data-series="running_mean"][data-ch="0"]');
    for (const series of ['running_mean', 'batch_mean', 'running_var', 'batch_var']) {
      const pts = await page.locator(`#hist-charts polyline[data-series="${series}"][data-ch="0"]`).getAttribute('points');
      const n = pts.trim().split(/\s+/).length;
      check(n === 100, `over-steps chart ${series}: one point per step`, String(n));
    }
    const lastEntry = hist.json.steps[hist.json.steps.length - 1];
    const bvText = await page.locator('#te-table td[data-k="batch_var"]').allTextContents();
    const histText = hist.text.slice(hist.text.lastIndexOf('"step"'));
    check(JSON.stringify(bvText) === JSON.stringify(rawArray(histText, 'batch_var')), 'conv16 last batch_var equals the history\'s', bvText.join(' '));
    check(lastEntry.step === 100, 'last step is 100', String(lastEntry.step));
    await page.screenshot({ path: path.join(shots, 'layer-16-channels.png'), fullPage: true });

    // A refresh keeps the chosen channels and the scroll position.
    await page.fill('#channels', '2,5');
    await page.locator('#hist-h').scrollIntoViewIfNeeded();
    const y0 = await page.evaluate(() => window.scrollY);
    await api('POST', '/v1/layers/conv16/train', { input: batch(999, 4, 16, 3) });
    await page.waitForFunction(() => {
      const p = document.querySelector('#hist-charts polyline[data-series="running_mean"][data-ch="2"]');
      return p && p.getAttribute('data-points') === '101';
    }, null, { timeout: 15000 });
    check(await page.locator('#hist-charts polyline[data-series="running_mean"][data-ch="5"]').count() === 1, 'chosen channel 5 is drawn');
    check(await page.locator('#hist-charts polyline[data-series="running_mean"][data-ch="0"]').count() === 0, 'unchosen channel 0 is not drawn');
    check(await page.inputValue('#channels') === '2,5', 'the channel choice survives a refresh', await page.inputValue('#channels'));
    const y1 = await page.evaluate(() => window.scrollY);
    check(Math.abs(y1 - y0) < 2, 'the scroll position survives a refresh', `${y0} -> ${y1}`);
    check((await page.evaluate(() => location.hash)) === '#/layers/conv16?ch=2%2C5', 'the view is in the URL', await page.evaluate(() => location.hash));

    // The worked example: train vs eval shows PyTorch's values.
    await page.goto(d.base + '/#/layers/bn1');
    await page.waitForSelector('#te-table td[data-k="train_scale"]');
    const cell = (k) => page.locator(`#te-table td[data-k="${k}"][data-ch="0"]`).textContent();
    check(await cell('batch_var') === golden.batch_var, 'bn1 batch_var is 0.25', await cell('batch_var'));
    check(await cell('running_mean') === golden.running_mean, 'bn1 running_mean is PyTorch\'s', await cell('running_mean'));
    check(await cell('running_var') === golden.running_var, 'bn1 running_var is PyTorch\'s', await cell('running_var'));
    const ts = Number(await cell('train_scale'));
    const es = Number(await cell('eval_scale'));
    check(ulps(ts, Number(golden.train_scale)) <= 1, 'train scale is 1/sqrt(0.25 + 1e-5)', `${ts} vs ${golden.train_scale}`);
    check(ulps(es, Number(golden.eval_scale)) <= 1, 'eval scale is 1/sqrt(running_var + 1e-5)', `${es} vs ${golden.eval_scale}`);
    const explain = await page.locator('#te-explain').textContent();
    check(/biased/.test(explain) && /unbiased/.test(explain) && /momentum 0\.1/.test(explain), 'the biased/unbiased sentence', explain);
    // The open calibration beside the running stats: the population variance 25.5/101.
    await page.waitForSelector('#cal-table td[data-k="population_var"][data-ch="0"]');
    const popVar = Number(await page.locator('#cal-table td[data-k="population_var"][data-ch="0"]').textContent());
    check(!(await page.locator('#cal').isHidden()) && Math.abs(popVar - calibrated.json.var[0]) < 1e-7 &&
      Math.abs(popVar - 25.5 / 101) < 1e-7, 'bn1 calibration shows the population var', String(popVar));
    const gap = Number(await page.locator('#cal-table td[data-k="var_gap"][data-ch="0"]').textContent());
    check(Math.abs(gap - (Number(golden.running_var) / (25.5 / 101) - 1)) < 1e-5, 'bn1 running_var / population - 1', String(gap));
    await page.locator('#cal-h').scrollIntoViewIfNeeded();
    await page.locator('#cal-h').locator('..').screenshot({ path: path.join(shots, 'calibration.png') });
    const bnPts = await page.locator('#hist-charts polyline[data-series="running_var"][data-ch="0"]').getAttribute('points');
    check(bnPts.trim().split(/\s+/).length === 51, 'bn1 over-steps chart: 51 points', bnPts.slice(0, 80));
    await page.locator('#te-h').scrollIntoViewIfNeeded();
    await page.locator('#te-h').locator('..').screenshot({ path: path.join(shots, 'train-vs-eval.png') });
    await page.setViewportSize({ width: 375, height: 812 });
    await page.waitForTimeout(200);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, 'no sideways scrolling at phone width', `${overflow}px too wide`);
    await page.screenshot({ path: path.join(shots, 'train-vs-eval-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    // Warnings.
    await page.goto(d.base + '/#/layers/loaded');
    await page.waitForSelector('#d-warnings li');
    check(await page.locator('#d-warnings li[data-kind="nan"]').count() === 1, 'a NaN/inf warning for the loaded huge state');
    check(await page.locator('#d-warnings li[data-kind="zero"]').count() >= 1, 'a near-zero variance warning');
    check(await page.locator('#te-table td.bad[data-k="eval_shift"][data-ch="0"]').textContent() === '-inf', 'the overflowing shift shows as -inf');
    await page.screenshot({ path: path.join(shots, 'warnings.png'), fullPage: true });
    await page.goto(d.base + '/#/layers/fresh');
    await page.waitForSelector('#d-warnings li');
    check(await page.locator('#d-warnings li[data-kind="idle"]').count() === 1, 'a never trained warning');
    check(await page.locator('#d-warnings li[data-kind="nan"]').count() === 0, 'no NaN warning on a fresh layer');
    await page.goto(d.base + '/#/layers/conv16');
    await page.waitForSelector('#ch-table td');
    check(await page.locator('#cal').isHidden(), 'no calibration panel without an open calibration');
    check(await page.locator('#d-warnings li').count() === 0, 'no warning on a healthy trained layer',
      (await page.locator('#d-warnings li').allTextContents()).join(' / '));

    check(foreign.length === 0, 'the page asks no other host', foreign.join(' '));
    check(errors.length === 0, 'no script errors in the page', errors.join(' / '));
  } finally {
    if (context) await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
    d.stop();
  }
  console.log(`# ${checks - failures}/${checks} checks passed; screenshots in ${shots}`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log('not ok - ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
