// Chrysalis watch page. Every URL is relative, so the page works under any
// mount point. No external network.
'use strict';

const REFRESH_MS = 2000;

function esc(cam) { return encodeURIComponent(cam); }

function fmtTime(ms) {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

// textOf returns a failed response's one-line error.
async function textOf(resp) {
  const t = (await resp.text()).trim();
  return `${resp.status} ${t || resp.statusText}`;
}

function setupCamera(cam, hlsEnabled) {
  const tpl = document.getElementById('camera-tpl');
  const el = tpl.content.firstElementChild.cloneNode(true);
  el.dataset.camera = cam;
  el.querySelector('.name').textContent = cam;
  el.querySelector('img.live').src = `mjpeg/stream/${esc(cam)}`;
  const q = (s) => el.querySelector(s);

  // Probe, refreshed.
  const probe = q('.probe');
  async function refreshProbe() {
    try {
      const resp = await fetch(`api/probe/${esc(cam)}`, {cache: 'no-store'});
      if (!resp.ok) {
        probe.textContent = await textOf(resp);
        probe.className = 'probe error';
        return;
      }
      const p = await resp.json();
      probe.className = 'probe';
      probe.textContent = `${p.codec} ${p.width}x${p.height} · ${p.fps.toFixed(2)} fps · ` +
        `${p.duration.toFixed(2)} s cached (${p.frames} frames, ${p.keyframes} keyframes) · ` +
        `from ${fmtTime(p.start_timestamp)} to ${fmtTime(p.end_timestamp)}`;
    } catch (e) {
      probe.textContent = `probe failed: ${e}`;
      probe.className = 'probe error';
    }
  }
  refreshProbe();
  setInterval(refreshProbe, REFRESH_MS);

  // Screenshot at a chosen time: a datetime when set, else seconds ago.
  const shotImg = q('img.shot'), shotInfo = q('.shot-info');
  let shotURL = null;
  q('.shot-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let at;
    const when = q('.shot-at').value;
    if (when) {
      const ms = new Date(when).getTime(); // local time
      if (isNaN(ms)) { shotInfo.textContent = 'bad date'; shotInfo.className = 'shot-info error'; return; }
      at = String(ms);
    } else {
      const ago = Number(q('.shot-ago').value || 0);
      at = ago > 0 ? `-${ago}s` : 'now';
    }
    shotInfo.textContent = 'decoding…';
    shotInfo.className = 'shot-info muted';
    try {
      const resp = await fetch(`api/screenshot/${esc(cam)}?at=${encodeURIComponent(at)}`, {cache: 'no-store'});
      if (!resp.ok) {
        shotInfo.textContent = await textOf(resp);
        shotInfo.className = 'shot-info error';
        return;
      }
      const blob = await resp.blob();
      if (shotURL) URL.revokeObjectURL(shotURL);
      shotURL = URL.createObjectURL(blob);
      shotImg.src = shotURL;
      q('.shot-box').hidden = false;
      const ts = Number(resp.headers.get('X-Frame-Timestamp'));
      shotInfo.textContent = `keyframe at ${fmtTime(ts)}`;
    } catch (e) {
      shotInfo.textContent = `screenshot failed: ${e}`;
      shotInfo.className = 'shot-info error';
    }
  });

  // Export: a plain download link, kept in step with the input.
  const exp = q('a.export'), last = q('.export-last');
  function updateExport() {
    const n = Math.max(1, Math.round(Number(last.value) || 10));
    exp.href = `api/export/${esc(cam)}?last=${n}s`;
    exp.textContent = `as MP4 (${n} s)`;
  }
  last.addEventListener('input', updateExport);
  updateExport();

  // HLS player: hls.js where Media Source Extensions exist, the native
  // player (Safari) otherwise.
  const video = q('video.hls'), play = q('.hls-play'), hlsInfo = q('.hls-info');
  if (!hlsEnabled) {
    q('.hls-box').hidden = true;
  }
  let player = null;
  play.addEventListener('click', () => {
    const src = `hls/${esc(cam)}/index.m3u8`;
    if (player || video.getAttribute('src')) {
      if (player) { player.destroy(); player = null; }
      video.removeAttribute('src');
      video.load();
      play.textContent = 'Play HLS';
      hlsInfo.textContent = '';
      return;
    }
    play.textContent = 'Stop HLS';
    if (window.Hls && Hls.isSupported()) {
      hlsInfo.textContent = 'hls.js: starting…';
      player = new Hls({liveSyncDurationCount: 2, manifestLoadingMaxRetry: 4});
      player.on(Hls.Events.MANIFEST_PARSED, () => { hlsInfo.textContent = 'hls.js: playing'; video.play().catch(() => {}); });
      player.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) { hlsInfo.textContent = `hls.js: ${d.type} ${d.details}`; hlsInfo.className = 'hls-info error'; } });
      player.loadSource(src);
      player.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      hlsInfo.textContent = 'native HLS';
      video.src = src;
      video.play().catch(() => {});
    } else {
      hlsInfo.textContent = 'this browser cannot play HLS';
      hlsInfo.className = 'hls-info error';
    }
  });
  return el;
}

function fmtAge(ns) {
  if (!ns) return '';
  const ms = ns / 1e6;
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

async function refreshStats() {
  const body = document.querySelector('#nodes tbody');
  try {
    const resp = await fetch('api/stats', {cache: 'no-store'});
    if (!resp.ok) return;
    const st = await resp.json();
    const rows = (st.nodes || []).map((n) => {
      const tr = document.createElement('tr');
      tr.dataset.node = n.name;
      const cells = [n.name, n.kind, n.in, n.out, n.dropped, n.fps ? n.fps.toFixed(1) : '', fmtAge(n.age_ns),
        n.policy ? `${n.policy}/${n.buffer}` : ''];
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.appendChild(td);
      }
      return tr;
    });
    if (rows.length) body.replaceChildren(...rows);
  } catch (e) { /* the next refresh retries */ }
}

async function main() {
  const status = document.getElementById('status');
  try {
    const resp = await fetch('api/cameras', {cache: 'no-store'});
    const cfg = await resp.json();
    const main = document.getElementById('cameras');
    // ?camera=ID shows that camera alone (the grid's tiles link here).
    const only = new URLSearchParams(location.search).get('camera');
    const cams = only ? cfg.cameras.filter((c) => c === only) : cfg.cameras;
    for (const cam of cams) main.appendChild(setupCamera(cam, cfg.hls));
    if (cfg.cameras.length > 1) {
      const a = document.createElement('a');
      a.href = 'grid';
      a.id = 'grid-link';
      a.textContent = 'all cameras';
      document.querySelector('header').appendChild(a);
    }
    status.textContent = `${cams.length} camera${cams.length === 1 ? '' : 's'}` +
      (cfg.hls ? (window.Hls && Hls.isSupported() ? ' · HLS via hls.js' : ' · HLS native') : '');
    document.body.dataset.ready = '1';
  } catch (e) {
    status.textContent = `cannot load cameras: ${e}`;
    status.className = 'error';
  }
  refreshStats();
  setInterval(refreshStats, REFRESH_MS);
}

main();
