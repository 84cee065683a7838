// Chrysalis watch grid: every camera as a tile fitted to the window, with a
// recent image, its age and fps, and detection boxes when the server has
// them. A click opens the single-camera view. Every URL is relative.
'use strict';

const POLL_MS = 1000;
const CAPTION_PX = 20, GAP_PX = 6, ASPECT = 16 / 9;
const STALE_MS = 5000;

const grid = document.getElementById('grid');
const tiles = new Map(); // camera -> tile state

function esc(cam) { return encodeURIComponent(cam); }

function fmtAge(ms) {
  return ms < 1000 ? `${ms} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`;
}

// layout picks the column count that gives the largest tiles that all fit.
function layout() {
  const n = tiles.size;
  if (!n) return;
  const W = grid.clientWidth, H = grid.clientHeight;
  let best = {cols: 1, w: 0};
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = Math.min((W - GAP_PX * (cols - 1)) / cols, ((H - GAP_PX * (rows - 1)) / rows - CAPTION_PX) * ASPECT);
    if (w > best.w) best = {cols, w};
  }
  const w = Math.max(80, Math.floor(best.w));
  grid.style.gridTemplateColumns = `repeat(${best.cols}, ${w}px)`;
  grid.dataset.cols = best.cols;
  for (const t of tiles.values()) t.width = w;
}

function makeTile(cam) {
  const el = document.getElementById('tile-tpl').content.firstElementChild.cloneNode(true);
  el.dataset.camera = cam;
  el.href = `./?camera=${esc(cam)}`;
  el.title = `open ${cam}`;
  el.querySelector('.name').textContent = cam;
  const t = {cam, el, img: el.querySelector('img'), canvas: el.querySelector('canvas'),
    info: el.querySelector('.info'), key: null, loading: false, width: 320, dets: []};
  t.img.addEventListener('load', () => { t.loading = false; el.dataset.loaded = '1'; draw(t); });
  t.img.addEventListener('error', () => { t.loading = false; t.key = null; });
  return t;
}

// draw paints the detection boxes over the image's content box.
function draw(t) {
  const c = t.canvas, r = c.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(r.width * dpr);
  c.height = Math.round(r.height * dpr);
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  if (!t.dets.length || !t.img.naturalWidth) return;
  // object-fit: contain
  const s = Math.min(c.width / t.img.naturalWidth, c.height / t.img.naturalHeight);
  const iw = t.img.naturalWidth * s, ih = t.img.naturalHeight * s;
  const ox = (c.width - iw) / 2, oy = (c.height - ih) / 2;
  ctx.lineWidth = Math.max(2, 2 * dpr);
  ctx.strokeStyle = '#00ff66';
  ctx.fillStyle = '#00ff66';
  ctx.font = `${Math.round(11 * dpr)}px system-ui, sans-serif`;
  for (const d of t.dets) {
    const x = ox + d.x * iw, y = oy + d.y * ih;
    ctx.strokeRect(x, y, d.w * iw, d.h * ih);
    if (d.label) ctx.fillText(d.score ? `${d.label} ${d.score.toFixed(2)}` : d.label, x + 3, Math.max(y - 3, 11 * dpr));
  }
}

function update(t, info) {
  t.el.classList.toggle('stale', !!info.error || info.age_ms > STALE_MS);
  t.info.textContent = info.error ? info.error :
    `${fmtAge(info.age_ms)} · ${info.fps ? info.fps.toFixed(1) : '–'} fps`;
  t.el.dataset.age = info.age_ms;
  t.el.dataset.fps = info.fps;
  t.dets = info.detections || [];
  draw(t);
  // A new image only when its key changed and the previous one has loaded.
  const w = Math.round(t.width * (window.devicePixelRatio || 1));
  const key = `${info.key}@${w}`;
  if (!info.error && info.key && key !== t.key && !t.loading) {
    t.key = key;
    t.loading = true;
    const sep = info.image.includes('?') ? '&' : '?';
    t.img.src = `${info.image}${sep}w=${w}&k=${encodeURIComponent(info.key)}`;
  }
}

async function poll() {
  try {
    const resp = await fetch('api/tiles', {cache: 'no-store'});
    if (resp.ok) {
      const st = await resp.json();
      for (const info of st.tiles) {
        const t = tiles.get(info.camera);
        if (t) update(t, info);
      }
    }
  } catch (e) { /* the next poll retries */ }
  setTimeout(poll, POLL_MS);
}

async function main() {
  const status = document.getElementById('status');
  try {
    const resp = await fetch('api/cameras', {cache: 'no-store'});
    const cfg = await resp.json();
    for (const cam of cfg.cameras) {
      const t = makeTile(cam);
      tiles.set(cam, t);
      grid.appendChild(t.el);
    }
    status.textContent = `${cfg.cameras.length} camera${cfg.cameras.length === 1 ? '' : 's'} · click one to open it`;
    layout();
    window.addEventListener('resize', () => { layout(); for (const t of tiles.values()) draw(t); });
    document.body.dataset.ready = '1';
  } catch (e) {
    status.textContent = `cannot load cameras: ${e}`;
    status.className = 'error';
    return;
  }
  poll();
}

main();
