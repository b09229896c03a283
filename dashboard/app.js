/*
 * batchnormd dashboard: the layer list, one layer's running statistics per
 * channel and over train steps, and how train and eval normalize differently.
 *
 * Plain browser JavaScript, no dependencies, same-origin requests only. Every
 * string from the API goes into the page through textContent or an attribute,
 * never as markup. The page polls the API every few seconds and redraws only
 * what changed, so the selected layer, the chosen channels and the scroll
 * position survive a refresh. The view is in the URL: #/layers/NAME?ch=0-3.
 */
'use strict';

(function () {
  const REFRESH_MS = 3000;
  const HISTORY_PAGE = 1000;      /* the API's largest page */
  const HISTORY_KEEP = 20000;     /* steps kept in memory for the chart */
  const FILTER_FROM = 8;          /* show the filter box from this many layers */
  const TABLE_ROWS_MAX = 4096;    /* channels listed in the value tables */
  const PALETTE = ['#2563eb', '#d9480f', '#2b8a3e', '#9c36b5', '#0b7285', '#c2255c', '#5f3dc4', '#e67700'];
  const SVGNS = 'http://www.w3.org/2000/svg';

  const view = {
    layers: [],
    filter: '',
    name: null,          /* the selected layer, from the URL */
    layer: null,         /* its last GET */
    etag: null,
    history: [],         /* entries oldest first */
    historyOf: null,     /* name + created_at the history belongs to */
    channelsText: null,  /* what the channel box says, null until chosen */
    lastOk: null,
    busy: false,
    calibration: null,   /* the selected layer's open calibration, or null */
  };

  const $ = (id) => document.getElementById(id);

  /* ---------- numbers ---------- */

  /* Python-style spelling of a double whose shortest digits are known. */
  function pySpell(x) {
    if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
    const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(x.toExponential());
    const sign = m[1];
    const digits = m[2] + (m[3] || '');
    const exp = Number(m[4]);
    if (exp < -4 || exp >= 16) {
      const mant = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
      const e = Math.abs(exp) < 10 ? '0' + Math.abs(exp) : String(Math.abs(exp));
      return sign + mant + 'e' + (exp < 0 ? '-' : '+') + e;
    }
    if (exp < 0) return sign + '0.' + '0'.repeat(-exp - 1) + digits;
    if (digits.length <= exp + 1) return sign + digits + '0'.repeat(exp + 1 - digits.length) + '.0';
    return sign + digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1);
  }

  function nonFiniteText(v) {
    if (typeof v !== 'number') return v === undefined ? '—' : 'not a number (' + JSON.stringify(v) + ')';
    if (Number.isNaN(v)) return 'NaN';
    return v > 0 ? 'inf' : '-inf';
  }

  /* A float32 as the API prints it: the shortest decimal that reads back as the same float32. */
  function f32(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return nonFiniteText(v);
    const f = Math.fround(v);
    if (!Number.isFinite(f)) return nonFiniteText(f);
    for (let p = 1; p < 9; p++) {
      const s = Number(f.toPrecision(p));
      if (Math.fround(s) === f) return pySpell(s);
    }
    return pySpell(Number(f.toPrecision(9)));
  }

  /* A double (eps, momentum) in its shortest form. */
  function f64(v) {
    if (typeof v !== 'number' || !Number.isFinite(v)) return nonFiniteText(v);
    return pySpell(v);
  }

  /* Short text for axis ticks. */
  function tick(v) {
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
    return String(Number(v.toPrecision(4)));
  }

  const fin = (v) => typeof v === 'number' && Number.isFinite(v);

  /* What train and eval multiply and add, in float32 as the server computes: x̂ = scale·x + shift. */
  function scaleOf(variance, eps) {
    if (!fin(variance)) return NaN;
    return Math.fround(1 / Math.sqrt(Math.fround(variance + eps)));
  }
  function shiftOf(mean, scale) {
    if (!fin(mean)) return NaN;
    return Math.fround(-Math.fround(mean) * scale);
  }

  /* ---------- time ---------- */

  function ago(iso) {
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return '';
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  /* ---------- DOM helpers (text only) ---------- */

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, String(v));
    }
    for (const kid of kids) if (kid) e.append(kid);
    return e;
  }

  const title = (text) => svg('title', { text });

  /* ---------- API ---------- */

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem && problem.detail ? problem.detail : 'HTTP ' + status);
      this.status = status;
      this.code = problem && problem.code;
    }
  }

  async function api(path) {
    const res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new ApiError(res.status, body);
    return { body, etag: res.headers.get('ETag') };
  }

  const layerPath = (name) => '/v1/layers/' + encodeURIComponent(name);

  /* ---------- URL ---------- */

  function readUrl() {
    const m = /^#\/layers\/([^?]+)(?:\?(.*))?$/.exec(location.hash);
    let name = null;
    let ch = null;
    if (m) {
      try { name = decodeURIComponent(m[1]); } catch (e) { name = null; }
      ch = new URLSearchParams(m[2] || '').get('ch');
    } else {
      const q = new URLSearchParams(location.search);
      name = q.get('layer');
      ch = q.get('ch');
    }
    return { name, ch };
  }

  function writeUrl() {
    if (!view.name) return;
    let h = '#/layers/' + encodeURIComponent(view.name);
    if (view.channelsText) h += '?ch=' + encodeURIComponent(view.channelsText.replace(/\s+/g, ''));
    if (location.hash !== h) history.replaceState(null, '', h);
  }

  /* ---------- layer list ---------- */

  function renderList() {
    const rows = $('layer-rows');
    const want = view.filter.toLowerCase();
    const shown = view.layers.filter((l) => !want || l.name.toLowerCase().includes(want));
    $('filter-box').hidden = view.layers.length < FILTER_FROM && !view.filter;
    $('layer-count').textContent = view.layers.length
      ? (shown.length === view.layers.length ? String(view.layers.length) : shown.length + ' of ' + view.layers.length)
      : '';
    $('layers-empty').hidden = view.layers.length > 0;
    const out = shown.map((l) => {
      const c = l.config || {};
      const nbt = l.num_batches_tracked;
      const link = el('a', { href: '#/layers/' + encodeURIComponent(l.name), text: l.name });
      const nameCell = el('td', { class: 'name' }, link);
      if (nbt === 0) nameCell.append(' ', el('span', { class: 'badge', text: 'never trained' }));
      return el('tr', { class: l.name === view.name ? 'selected' : null, 'data-layer': l.name },
        nameCell,
        el('td', { class: 'num', text: String(c.num_features) }),
        el('td', { class: 'num', text: f64(c.eps) }),
        el('td', { class: 'num', text: c.momentum === null ? 'null (cumulative)' : f64(c.momentum) }),
        el('td', { text: c.affine ? 'yes' : 'no' }),
        el('td', { text: c.track_running_stats ? 'yes' : 'no' }),
        el('td', { class: 'num', text: nbt === undefined ? '—' : String(nbt) }),
        el('td', { class: 'time', title: l.updated_at, text: ago(l.updated_at) }));
    });
    rows.replaceChildren(...out);
  }

  /* ---------- charts ---------- */

  /* Round tick positions covering [lo, hi]. */
  function ticks(lo, hi, n) {
    const span = hi - lo;
    const raw = span / Math.max(1, n);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => span / s <= n) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  function range(values, withZero) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) if (fin(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (withZero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
    if (lo === hi) { const d = Math.abs(lo) * 0.1 || 1; lo -= d; hi += d; }
    const pad = (hi - lo) * 0.06;
    return [withZero && lo === 0 ? 0 : lo - pad, hi + pad];
  }

  /*
   * A frame with axes: returns the svg and the x/y mappers. The drawing is
   * 640 (phone: 360) wide in its own units and scales to the width of its box.
   */
  const narrow = window.matchMedia('(max-width: 820px)');

  function frame(opts) {
    /* On a phone the drawing is narrower in its own units, so its text stays readable when scaled down. */
    const W = narrow.matches ? 360 : 640, H = opts.height || (narrow.matches ? 210 : 240), L = 60, R = 12, T = 14, B = 42;
    const [ylo, yhi] = opts.y;
    const [xlo, xhi] = opts.x;
    const sx = (v) => L + (xhi === xlo ? 0.5 : (v - xlo) / (xhi - xlo)) * (W - L - R);
    const sy = (v) => T + (1 - (v - ylo) / (yhi - ylo)) * (H - T - B);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': opts.label });
    root.append(title(opts.label));
    const grid = svg('g', { class: 'grid' });
    for (const v of ticks(ylo, yhi, 5)) {
      const y = sy(v);
      grid.append(svg('line', { x1: L, x2: W - R, y1: y, y2: y }));
      grid.append(svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'tick', text: tick(v) }));
    }
    const xt = opts.xticks || ticks(xlo, xhi, 8).filter((v) => Number.isInteger(v));
    for (const v of xt) {
      grid.append(svg('text', { x: sx(v), y: H - B + 16, 'text-anchor': 'middle', class: 'tick', text: String(v) }));
    }
    grid.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
    grid.append(svg('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
    if (ylo < 0 && yhi > 0) grid.append(svg('line', { class: 'zero', x1: L, x2: W - R, y1: sy(0), y2: sy(0) }));
    grid.append(svg('text', { x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle', class: 'axis-label', text: opts.xlabel }));
    grid.append(svg('text', { x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', class: 'axis-label',
      transform: `rotate(-90 14 ${(T + H - B) / 2})`, text: opts.ylabel }));
    root.append(grid);
    return { root, sx, sy, W, H, L, R, T, B };
  }

  function figure(caption, chart, legend) {
    const fig = el('figure', { class: 'fig' });
    fig.append(el('figcaption', { text: caption }));
    if (legend) fig.append(legend);
    fig.append(chart);
    return fig;
  }

  /* running_mean as dots with a band of ±sqrt(running_var). */
  function meanBandChart(mean, variance) {
    const C = mean.length;
    const sd = variance.map((v) => (fin(v) && v >= 0 ? Math.sqrt(v) : NaN));
    const all = [];
    mean.forEach((m, i) => { all.push(m); if (fin(sd[i])) all.push(m - sd[i], m + sd[i]); });
    const f = frame({ label: 'running_mean per channel with ±sqrt(running_var)', x: [-0.5, C - 0.5], y: range(all, false),
      xlabel: 'channel', ylabel: 'running_mean', xticks: channelTicks(C) });
    const w = Math.max(1, Math.min(18, (f.sx(1) - f.sx(0)) * 0.6));
    const g = svg('g', { class: 'bands', 'data-series': 'running_mean' });
    mean.forEach((m, i) => {
      if (!fin(m)) return;
      const cx = f.sx(i);
      const item = svg('g', { class: 'ch', 'data-ch': i },
        title(`channel ${i}\nrunning_mean ${f32(m)}\nrunning_var ${f32(variance[i])}\n±sqrt(var) ${f32(sd[i])}`));
      if (fin(sd[i])) {
        const y1 = f.sy(m + sd[i]);
        item.append(svg('rect', { class: 'band', x: cx - w / 2, y: y1, width: w, height: Math.max(1, f.sy(m - sd[i]) - y1) }));
      }
      item.append(svg('circle', { class: 'dot', cx, cy: f.sy(m), r: C > 64 ? 1.6 : 3.5 }));
      g.append(item);
    });
    f.root.append(g);
    return f.root;
  }

  /* One bar per channel from zero. */
  function barChart(name, values, color) {
    const C = values.length;
    const f = frame({ label: name + ' per channel', x: [-0.5, C - 0.5], y: range(values, true),
      xlabel: 'channel', ylabel: name, xticks: channelTicks(C) });
    const w = Math.min(48, Math.max(0.6, (f.sx(1) - f.sx(0)) * 0.7));
    const g = svg('g', { class: 'bars', 'data-series': name, fill: color });
    const y0 = f.sy(0);
    values.forEach((v, i) => {
      if (!fin(v)) return;
      const y = f.sy(v);
      g.append(svg('rect', { 'data-ch': i, x: f.sx(i) - w / 2, y: Math.min(y, y0), width: w, height: Math.max(0.5, Math.abs(y - y0)) },
        title(`channel ${i}\n${name} ${f32(v)}`)));
    });
    f.root.append(g);
    return f.root;
  }

  /* Two bars per channel: what train and eval divide by. */
  function pairChart(trainScale, evalScale) {
    const C = trainScale.length;
    const f = frame({ label: 'scale per channel, train vs eval', x: [-0.5, C - 0.5],
      y: range(trainScale.concat(evalScale), true), xlabel: 'channel', ylabel: 'scale', xticks: channelTicks(C) });
    const w = Math.min(32, Math.max(0.4, (f.sx(1) - f.sx(0)) * 0.36));
    const y0 = f.sy(0);
    const g = svg('g', { class: 'bars' });
    for (let i = 0; i < C; i++) {
      [[trainScale[i], PALETTE[0], -1, 'train'], [evalScale[i], PALETTE[1], 0, 'eval']].forEach(([v, color, off, what]) => {
        if (!fin(v)) return;
        const y = f.sy(v);
        g.append(svg('rect', { fill: color, 'data-ch': i, 'data-series': what, x: f.sx(i) + off * w, y: Math.min(y, y0),
          width: w, height: Math.max(0.5, Math.abs(y - y0)) },
        title(`channel ${i}\n${what} scale ${f32(v)}`)));
      });
    }
    f.root.append(g);
    return f.root;
  }

  function channelTicks(C) {
    if (C <= 16) return Array.from({ length: C }, (_, i) => i);
    return ticks(0, C - 1, 8).filter((v) => Number.isInteger(v));
  }

  function legend(items) {
    const ul = el('ul', { class: 'legend' });
    for (const it of items) {
      const sw = el('span', { class: 'swatch' + (it.dashed ? ' dashed' : '') });
      sw.style.borderColor = it.color;
      if (!it.dashed) sw.style.background = it.color;
      ul.append(el('li', {}, sw, it.text));
    }
    return ul;
  }

  /*
   * Running value (solid) and the batch's value (dashed) over steps, one
   * polyline per chosen channel with one vertex per step; hovering shows the
   * values of the nearest step.
   */
  function stepChart(opts) {
    const H = opts.history;
    const steps = H.map((h) => h.step);
    const all = [];
    for (const h of H) for (const c of opts.channels) {
      if (h[opts.running]) all.push(h[opts.running][c]);
      if (h[opts.batch]) all.push(h[opts.batch][c]);
    }
    const x0 = steps[0], x1 = steps[steps.length - 1];
    const f = frame({ label: opts.label, x: [x0, x1 === x0 ? x0 + 1 : x1], y: range(all, opts.withZero),
      xlabel: 'step', ylabel: opts.ylabel, height: 260 });
    const lines = svg('g', { class: 'lines' });
    opts.channels.forEach((c, k) => {
      const color = PALETTE[k % PALETTE.length];
      for (const [key, dashed] of [[opts.batch, true], [opts.running, false]]) {
        const pts = [];
        for (const h of H) {
          const v = h[key] ? h[key][c] : undefined;
          if (fin(v)) pts.push(f.sx(h.step).toFixed(2) + ',' + f.sy(v).toFixed(2));
        }
        if (!pts.length) continue;
        lines.append(svg('polyline', { points: pts.join(' '), stroke: color, class: dashed ? 'batch' : 'running',
          'data-series': key, 'data-ch': c, 'data-points': pts.length }));
        /* With few steps, mark each one so a single step is visible too. */
        if (!dashed && pts.length <= 40) {
          for (const pt of pts) {
            const [x, y] = pt.split(',');
            lines.append(svg('circle', { cx: x, cy: y, r: 2.6, fill: color, class: 'step-dot' }));
          }
        }
      }
    });
    f.root.append(lines);
    const guide = svg('line', { class: 'guide', y1: f.T, y2: f.H - f.B, x1: -10, x2: -10 });
    f.root.append(guide);
    const hit = svg('rect', { class: 'hit', x: f.L, y: f.T, width: f.W - f.L - f.R, height: f.H - f.T - f.B });
    f.root.append(hit);
    hit.addEventListener('mousemove', (ev) => {
      const box = f.root.getBoundingClientRect();
      const ux = (ev.clientX - box.left) * (f.W / box.width);
      let best = 0;
      for (let i = 1; i < H.length; i++) if (Math.abs(f.sx(H[i].step) - ux) < Math.abs(f.sx(H[best].step) - ux)) best = i;
      const h = H[best];
      guide.setAttribute('x1', f.sx(h.step));
      guide.setAttribute('x2', f.sx(h.step));
      const lines2 = [`step ${h.step}  (${h.count} values per channel)`];
      for (const c of opts.channels) {
        lines2.push(`ch ${c}: ${opts.running} ${h[opts.running] ? f32(h[opts.running][c]) : '—'}, ` +
          `${opts.batch} ${h[opts.batch] ? f32(h[opts.batch][c]) : '—'}`);
      }
      showTip(ev, lines2);
    });
    hit.addEventListener('mouseleave', () => { guide.setAttribute('x1', -10); guide.setAttribute('x2', -10); hideTip(); });
    return f.root;
  }

  function showTip(ev, lines) {
    const t = $('tooltip');
    t.replaceChildren(...lines.map((s) => el('div', { text: s })));
    t.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - t.offsetWidth - 8);
    const y = Math.min(ev.clientY + 14, window.innerHeight - t.offsetHeight - 8);
    t.style.left = Math.max(4, x) + 'px';
    t.style.top = Math.max(4, y) + 'px';
  }
  function hideTip() { $('tooltip').hidden = true; }

  /* ---------- channels ---------- */

  /* "0-3, 7" -> [0,1,2,3,7] within [0, C); null when it does not parse. */
  function parseChannels(text, C) {
    const out = new Set();
    for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
      const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
      if (!m) return null;
      const a = Number(m[1]);
      const b = m[2] === undefined ? a : Number(m[2]);
      for (let c = Math.min(a, b); c <= Math.max(a, b) && out.size < 16; c++) if (c < C) out.add(c);
    }
    return [...out].sort((x, y) => x - y);
  }

  function defaultChannels(C) { return C <= 1 ? '0' : '0-' + (Math.min(C, 4) - 1); }

  /* ---------- one layer ---------- */

  function warningsOf(layer, last) {
    const out = [];
    const c = layer.config;
    const s = layer.state || {};
    const eps = c.eps;
    const bad = [];
    for (const key of ['running_mean', 'running_var', 'weight', 'bias']) {
      if (!(key in s)) continue;
      s[key].forEach((v, i) => { if (!fin(v)) bad.push(`${key}[${i}] is ${nonFiniteText(v)}`); });
    }
    if (last) for (const key of ['batch_mean', 'batch_var']) {
      if (last[key]) last[key].forEach((v, i) => { if (!fin(v)) bad.push(`last ${key}[${i}] is ${nonFiniteText(v)}`); });
    }
    if (bad.length) out.push({ kind: 'nan', text: 'Not a finite number: ' + bad.slice(0, 4).join('; ') + (bad.length > 4 ? '; …' : '') });

    if (c.track_running_stats && s.running_var) {
      const blown = [];
      s.running_var.forEach((v, i) => {
        const sc = scaleOf(v, eps);
        const sh = shiftOf(s.running_mean[i], sc);
        const w = s.weight ? s.weight[i] : 1;
        const b = s.bias ? s.bias[i] : 0;
        if (!fin(sc) || !fin(sh) || !fin(Math.fround(w * sc)) || !fin(Math.fround(w * sh + b))) blown.push(i);
      });
      if (blown.length) {
        out.push({ kind: 'nan', text: `In eval, in float32, 1/sqrt(running_var + eps) or the shift −running_mean·scale ` +
          `is not finite on channel${blown.length > 1 ? 's' : ''} ${list(blown)}, so eval cannot produce a finite output ` +
          `(the server refuses it with 422). The loaded running statistics are out of range.` });
      }
      const tiny = [];
      s.running_var.forEach((v, i) => { if (fin(v) && v <= eps) tiny.push(i); });
      if (tiny.length) {
        out.push({ kind: 'zero', text: `running_var near zero (≤ eps = ${f64(eps)}) on channel${tiny.length > 1 ? 's' : ''} ` +
          `${list(tiny)}: eps dominates and eval multiplies by up to ${f32(scaleOf(0, eps))}.` });
      }
    }
    if (last && last.batch_var) {
      const tiny = [];
      last.batch_var.forEach((v, i) => { if (fin(v) && v <= eps) tiny.push(i); });
      if (tiny.length) {
        out.push({ kind: 'zero', text: `The last batch's variance is near zero (≤ eps) on channel${tiny.length > 1 ? 's' : ''} ` +
          `${list(tiny)}: that channel was (almost) constant in the batch.` });
      }
    }
    if (!last && !s.num_batches_tracked) {
      out.push({ kind: 'idle', text: 'Never trained: no train step is recorded and the running statistics are still their initial values.' });
    }
    return out;
  }

  function list(idx) { return idx.length > 8 ? idx.slice(0, 8).join(', ') + ` and ${idx.length - 8} more` : idx.join(', '); }

  function renderHeader(layer) {
    const c = layer.config;
    const s = layer.state || {};
    $('d-name').textContent = layer.name;
    const items = [
      ['num_features', String(c.num_features)],
      ['eps', f64(c.eps)],
      ['momentum', c.momentum === null ? 'null (cumulative average)' : f64(c.momentum)],
      ['affine', c.affine ? 'true' : 'false'],
      ['track_running_stats', c.track_running_stats ? 'true' : 'false'],
      ['num_batches_tracked', 'num_batches_tracked' in s ? String(s.num_batches_tracked) : '—'],
      ['train steps recorded', String(view.history.length ? view.history[view.history.length - 1].step : 0)],
      ['created', layer.created_at],
      ['last changed', layer.updated_at + ' (' + ago(layer.updated_at) + ')'],
    ];
    $('d-config').replaceChildren(...items.map(([k, v]) =>
      el('div', { 'data-k': k }, el('dt', { text: k }), el('dd', { text: v }))));
  }

  function valueTable(cols, C) {
    const head = el('tr', {}, el('th', { scope: 'col', class: 'num', text: 'channel' }),
      ...cols.map((col) => el('th', { scope: 'col', class: 'num', text: col.head })));
    const body = [];
    for (let i = 0; i < Math.min(C, TABLE_ROWS_MAX); i++) {
      body.push(el('tr', {}, el('th', { scope: 'row', class: 'num', text: String(i) }),
        ...cols.map((col) => {
          const v = col.values ? col.values[i] : undefined;
          return el('td', { class: 'num' + (fin(v) ? '' : ' bad'), 'data-k': col.key, 'data-ch': i, text: v === undefined ? '—' : f32(v) });
        })));
    }
    const caption = C > TABLE_ROWS_MAX ? el('caption', { text: `first ${TABLE_ROWS_MAX} of ${C} channels` }) : null;
    return [caption, el('thead', {}, head), el('tbody', {}, ...body)].filter(Boolean);
  }

  function renderChannels(layer) {
    const c = layer.config;
    const s = layer.state || {};
    const C = c.num_features;
    const charts = [];
    if (s.running_mean && s.running_var) {
      charts.push(figure('running_mean, band ±sqrt(running_var)', meanBandChart(s.running_mean, s.running_var)));
      charts.push(figure('running_var', barChart('running_var', s.running_var, PALETTE[1])));
    }
    if (s.weight) charts.push(figure('weight', barChart('weight', s.weight, PALETTE[2])));
    if (s.bias) charts.push(figure('bias', barChart('bias', s.bias, PALETTE[3])));
    $('ch-charts').replaceChildren(...charts);
    $('ch-note').textContent = c.track_running_stats ? '' :
      'This layer does not track running statistics: train and eval both normalize with the batch\'s own mean and variance.';
    const cols = [];
    for (const key of ['running_mean', 'running_var', 'weight', 'bias']) if (s[key]) cols.push({ key, head: key, values: s[key] });
    $('ch-table').replaceChildren(...(cols.length ? valueTable(cols, C) : []));
  }

  function renderTrainEval(layer, last) {
    const c = layer.config;
    const s = layer.state || {};
    const C = c.num_features;
    const explain = $('te-explain');
    if (!last) {
      explain.textContent = 'No train step yet: train the layer once to compare how train and eval normalize.';
      $('te-chart').replaceChildren();
      $('te-table').replaceChildren();
      return;
    }
    const n = last.count;
    const mom = c.momentum === null ? '1/num_batches_tracked (cumulative average)' : f64(c.momentum);
    explain.textContent = c.track_running_stats
      ? `The train step divides by sqrt(batch_var + eps) with the batch's biased variance (sum of squares / n, ` +
        `n = ${n} values per channel), but it folds the unbiased variance (× n/(n−1)) into running_var with ` +
        `momentum ${mom}, and eval divides by sqrt(running_var + eps): so eval's scale differs from train's ` +
        `even on the same batch, until the running values settle.`
      : 'This layer keeps no running statistics, so eval also normalizes with the batch\'s own biased variance: ' +
        'train and eval scale alike.';
    const bm = last.batch_mean, bv = last.batch_var;
    const rm = c.track_running_stats ? s.running_mean : bm;
    const rv = c.track_running_stats ? s.running_var : bv;
    const ts = bv.map((v) => scaleOf(v, c.eps));
    const es = rv.map((v) => scaleOf(v, c.eps));
    const tsh = bm.map((m, i) => shiftOf(m, ts[i]));
    const esh = rm.map((m, i) => shiftOf(m, es[i]));
    const dsh = esh.map((v, i) => Math.fround(v - tsh[i]));
    $('te-chart').replaceChildren(figure(`scale 1/sqrt(var + eps) after step ${last.step}`,
      pairChart(ts, es), legend([{ color: PALETTE[0], text: 'train: batch_var (biased)' },
        { color: PALETTE[1], text: c.track_running_stats ? 'eval: running_var' : 'eval: batch_var' }])));
    $('te-table').replaceChildren(...valueTable([
      { key: 'batch_mean', head: 'batch_mean', values: bm },
      { key: 'batch_var', head: 'batch_var (biased)', values: bv },
      { key: 'train_scale', head: 'train scale', values: ts },
      { key: 'running_mean', head: c.track_running_stats ? 'running_mean' : 'mean (batch)', values: rm },
      { key: 'running_var', head: c.track_running_stats ? 'running_var' : 'var (batch)', values: rv },
      { key: 'eval_scale', head: 'eval scale', values: es },
      { key: 'train_shift', head: 'train shift', values: tsh },
      { key: 'eval_shift', head: 'eval shift', values: esh },
      { key: 'shift_delta', head: 'shift eval − train', values: dsh },
    ], C));
  }

  function renderHistory(layer) {
    const C = layer.config.num_features;
    const H = view.history;
    const box = $('channels');
    if (view.channelsText === null) view.channelsText = defaultChannels(C);
    if (document.activeElement !== box) box.value = view.channelsText;
    let chans = parseChannels(view.channelsText, C);
    box.classList.toggle('invalid', chans === null);
    if (!chans || !chans.length) chans = parseChannels(defaultChannels(C), C);
    $('channels-hint').textContent = `of 0–${C - 1}, up to 16, e.g. 0-3, 7`;
    if (!H.length) {
      $('hist-note').textContent = 'No train steps recorded yet.';
      $('hist-charts').replaceChildren();
      return;
    }
    const first = H[0].step, lastStep = H[H.length - 1].step;
    $('hist-note').textContent = `${H.length} step${H.length > 1 ? 's' : ''} (${first}–${lastStep}). ` +
      'Solid: the running value after each step; dashed: the batch\'s own value.';
    const lg = legend(chans.map((ch, k) => ({ color: PALETTE[k % PALETTE.length], text: 'channel ' + ch }))
      .concat([{ color: '#555', text: 'batch', dashed: true }]));
    const figs = [
      figure('running_mean and batch_mean', stepChart({ history: H, channels: chans, running: 'running_mean', batch: 'batch_mean',
        label: 'mean over steps', ylabel: 'mean', withZero: false }), lg),
      figure('running_var and batch_var (biased)', stepChart({ history: H, channels: chans, running: 'running_var', batch: 'batch_var',
        label: 'variance over steps', ylabel: 'variance', withZero: true }), lg.cloneNode(true)),
    ];
    $('hist-charts').replaceChildren(...figs);
  }

  /*
   * An open calibration (precise BN) beside the running stats: how far the
   * running estimate is from the population's exact mean and variance.
   */
  function renderCalibration(layer) {
    const cal = view.calibration;
    $('cal').hidden = !cal;
    if (!cal) return;
    const C = layer.config.num_features;
    const rm = cal.running_mean, rv = cal.running_var;
    const gap = rv.map((v, i) => (cal.var[i] > 0 ? v / cal.var[i] - 1 : NaN));
    $('cal-note').textContent = `${cal.count} values per channel in ${cal.batches} batch${cal.batches === 1 ? '' : 'es'}, ` +
      'not yet committed. population: the exact mean and unbiased variance of every value seen; batch average: ' +
      'what update_bn would write. "running_var / population − 1" is how far the running estimate is off.';
    $('cal-table').replaceChildren(...valueTable([
      { key: 'running_mean', head: 'running_mean', values: rm },
      { key: 'population_mean', head: 'population mean', values: cal.mean },
      { key: 'running_var', head: 'running_var', values: rv },
      { key: 'population_var', head: 'population var', values: cal.var },
      { key: 'batch_average_var', head: 'batch average var', values: cal.batch_average.var },
      { key: 'var_gap', head: 'running_var / population − 1', values: gap },
    ], C));
  }

  function renderDetail() {
    const layer = view.layer;
    $('detail').hidden = !layer;
    if (!layer) return;
    const last = view.history.length ? view.history[view.history.length - 1] : null;
    renderHeader(layer);
    const warns = warningsOf(layer, last);
    $('d-warnings').replaceChildren(...warns.map((w) => el('li', { class: 'warn ' + w.kind, 'data-kind': w.kind, text: w.text })));
    renderChannels(layer);
    renderCalibration(layer);
    renderTrainEval(layer, last);
    renderHistory(layer);
  }

  /* ---------- loading ---------- */

  async function loadHistory(name, fresh) {
    let after = fresh || !view.history.length ? 0 : view.history[view.history.length - 1].step;
    const got = fresh ? [] : view.history.slice();
    for (let pages = 0; pages < Math.ceil(HISTORY_KEEP / HISTORY_PAGE) + 1; pages++) {
      const r = await api(layerPath(name) + `/history?after=${after}&limit=${HISTORY_PAGE}`);
      got.push(...r.body.steps);
      if (r.body.next_after === null || r.body.next_after === undefined || !r.body.steps.length) break;
      after = r.body.next_after;
    }
    return got.length > HISTORY_KEEP ? got.slice(got.length - HISTORY_KEEP) : got;
  }

  /* The open calibration, or null: none open (404) or no running stats to calibrate. */
  async function loadCalibration(name, layer) {
    if (!layer.config.track_running_stats) return null;
    try {
      return (await api(layerPath(name) + '/calibration')).body;
    } catch (e) {
      if (e.status === 404 || e.status === 409) return null;
      throw e;
    }
  }

  async function refresh() {
    if (view.busy) return;
    view.busy = true;
    try {
      const list = await api('/v1/layers');
      view.layers = list.body.layers || [];
      renderList();
      if (view.name) {
        let r;
        try {
          r = await api(layerPath(view.name));
        } catch (e) {
          if (e.status === 404) {
            view.layer = null;
            renderDetail();
            setStatus('No layer named "' + view.name + '".', true);
            return;
          }
          throw e;
        }
        const cal = await loadCalibration(view.name, r.body);
        const calChanged = JSON.stringify(cal) !== JSON.stringify(view.calibration);
        view.calibration = cal;
        if (calChanged && view.layer) renderCalibration(view.layer);
        const key = view.name + '\u0000' + r.body.created_at;
        if (r.etag !== view.etag || key !== view.historyOf) {
          const fresh = key !== view.historyOf;
          view.history = await loadHistory(view.name, fresh);
          view.historyOf = key;
          view.layer = r.body;
          view.etag = r.etag;
          renderDetail();
        } else {
          renderHeader(view.layer);  /* keeps "… ago" current */
        }
      } else {
        view.layer = null;
        renderDetail();
      }
      view.lastOk = new Date();
      setStatus('updated ' + view.lastOk.toLocaleTimeString() + ', every ' + REFRESH_MS / 1000 + ' s', false);
    } catch (e) {
      setStatus('refresh failed: ' + e.message, true);
    } finally {
      view.busy = false;
    }
  }

  function setStatus(text, bad) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('bad', bad);
  }

  function onRoute() {
    const { name, ch } = readUrl();
    if (name !== view.name) {
      view.name = name;
      view.layer = null;
      view.etag = null;
      view.history = [];
      view.historyOf = null;
      view.channelsText = ch;
      renderDetail();
      if (name) window.scrollTo(0, 0);
    } else if (ch !== null && ch !== view.channelsText) {
      view.channelsText = ch;
      if (view.layer) renderHistory(view.layer);
    }
    renderList();
    refresh();
  }

  function start() {
    $('filter').addEventListener('input', (e) => { view.filter = e.target.value; renderList(); });
    $('channels').addEventListener('input', (e) => {
      view.channelsText = e.target.value;
      writeUrl();
      if (view.layer) renderHistory(view.layer);
    });
    window.addEventListener('hashchange', onRoute);
    narrow.addEventListener('change', renderDetail);
    onRoute();
    setInterval(refresh, REFRESH_MS);
  }

  start();
}());
