// Recording panel of the watch page (watch/record.go): per camera, the
// storage switch with a button to flip it, whether a segment is being
// written, and the last segments as links. Hidden when the server has no
// archive and no switch.
'use strict';

(function () {
  const section = document.createElement('section');
  section.id = 'recording';
  section.hidden = true;
  section.innerHTML = '<h2>Recording</h2><table><thead><tr><th>camera</th><th>switch</th><th>writing</th>' +
    '<th>last segments</th></tr></thead><tbody></tbody></table>';
  const stats = document.getElementById('stats');
  stats.parentNode.insertBefore(section, stats);
  const body = section.querySelector('tbody');

  const fmt = (t) => new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

  async function flip(cam, on, button) {
    button.disabled = true;
    try {
      const resp = await fetch(`api/record/${encodeURIComponent(cam)}`, {
        method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({on}),
      });
      if (!resp.ok) button.title = `${resp.status} ${(await resp.text()).trim()}`;
    } finally {
      refresh();
    }
  }

  function row(c) {
    const tr = document.createElement('tr');
    tr.dataset.camera = c.camera;
    const td = (x) => { const e = document.createElement('td'); if (x !== undefined) e.textContent = x; tr.appendChild(e); return e; };
    td(c.camera);
    const sw = td();
    if (c.switch) {
      const state = document.createElement('span');
      state.className = 'record-state';
      state.textContent = c.switch + ' ';
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'record-switch';
      const on = c.switch !== 'on';
      b.textContent = on ? 'Start recording' : 'Stop recording';
      b.onclick = () => flip(c.camera, on, b);
      sw.append(state, b);
    } else {
      sw.textContent = 'n/a';
    }
    td(c.writing ? 'yes' : 'no');
    const segs = td();
    for (const s of c.segments.slice().reverse()) {
      const a = document.createElement('a');
      a.href = s.url;
      a.textContent = `${fmt(s.start)} (${((Date.parse(s.end) - Date.parse(s.start)) / 1000).toFixed(1)} s, ${s.frames} frames)`;
      a.title = s.file;
      segs.append(a, document.createElement('br'));
    }
    if (c.error) {
      const e = document.createElement('div');
      e.className = 'error';
      e.textContent = c.error;
      segs.append(e);
    }
    return tr;
  }

  async function refresh() {
    try {
      const resp = await fetch('api/record', {cache: 'no-store'});
      if (!resp.ok) return;
      const st = await resp.json();
      section.hidden = !st.enabled;
      if (st.enabled) body.replaceChildren(...st.cameras.map(row));
    } catch (e) { /* the next refresh retries */ }
  }
  refresh();
  setInterval(refresh, 2000);
})();
