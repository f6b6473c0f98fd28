/**
 * The API description at `/openapi.json` (openapi/openapi.json, with this broker as its server) and an
 * interactive reference at `/docs`: a self-contained page (no external scripts, so it works offline and
 * under a strict CSP) listing every operation with a form to try it.
 */
import { readFileSync } from 'node:fs'
import { Hono } from 'hono'
import { HttpError } from './errors.js'

const SPEC_FILE = new URL('../../openapi/openapi.json', import.meta.url)

/** The document, read once on first use; a broker installed without openapi/ still starts. */
function loadSpec(issuer: string): Record<string, unknown> | undefined {
  try {
    return { ...(JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as Record<string, unknown>), servers: [{ url: issuer }] }
  } catch {
    return undefined
  }
}

export function docsRoutes(issuer: string): Hono {
  const app = new Hono()
  let spec: Record<string, unknown> | undefined
  app.get('/openapi.json', (c) => {
    spec ??= loadSpec(issuer)
    if (!spec) throw new HttpError(503, 'temporarily_unavailable', 'the OpenAPI document (openapi/openapi.json) is not installed next to dist/')
    return c.json(spec)
  })
  app.get('/docs', (c) => {
    c.header('Content-Security-Policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
    return c.html(DOCS_PAGE)
  })
  return app
}

const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssf-broker API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#1b1f24;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
main{max-width:980px;margin:0 auto;padding:16px 24px}
label{font-weight:600}input,textarea{font:13px ui-monospace,monospace;width:100%;box-sizing:border-box;padding:6px;border:1px solid #ccd;border-radius:4px}
details{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:8px 0}
summary{cursor:pointer;padding:10px 12px;display:flex;gap:12px;align-items:center}
.m{font:700 12px ui-monospace,monospace;padding:2px 8px;border-radius:4px;color:#fff;min-width:52px;text-align:center}
.GET{background:#0969da}.POST{background:#1a7f37}.PATCH{background:#9a6700}.PUT{background:#8250df}.DELETE{background:#cf222e}
.body{padding:0 12px 12px}pre{background:#f6f8fa;padding:8px;overflow:auto;border-radius:4px;font-size:12px}
button{background:#1a7f37;color:#fff;border:0;border-radius:4px;padding:6px 14px;cursor:pointer;margin-top:8px}
</style></head><body>
<header><h1>ssf-broker API</h1><div id="desc"></div></header>
<main><p><label for="token">Bearer token</label><input id="token" placeholder="ssf_... (kept only in this page)"></p><div id="ops">Loading…</div></main>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
fetch('openapi.json').then((r) => r.json()).then((spec) => {
  document.getElementById('desc').textContent = spec.info.description || '';
  const ops = document.getElementById('ops'); ops.textContent = '';
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters') continue;
      const M = method.toUpperCase();
      const params = [...(item.parameters || []), ...(op.parameters || [])];
      const d = document.createElement('details');
      d.innerHTML = '<summary><span class="m ' + M + '">' + M + '</span><code>' + esc(path) + '</code><span>' + esc(op.summary || '') + '</span></summary>' +
        '<div class="body">' + params.map((p) => '<p><label>' + esc(p.name) + ' (' + esc(p.in) + (p.required ? ', required' : '') + ')</label><input data-p="' + esc(p.name) + '" data-in="' + esc(p.in) + '"></p>').join('') +
        (op.requestBody ? '<p><label>JSON body</label><textarea rows="6"></textarea></p>' : '') +
        '<p><label>Responses</label></p><pre>' + esc(Object.entries(op.responses).map(([k, v]) => k + '  ' + v.description).join('\\n')) + '</pre>' +
        '<button>Send</button><pre class="out" hidden></pre></div>';
      d.querySelector('button').onclick = async () => {
        let url = path; const q = new URLSearchParams();
        for (const i of d.querySelectorAll('input[data-p]')) {
          if (!i.value) continue;
          if (i.dataset.in === 'path') url = url.replace('{' + i.dataset.p + '}', encodeURIComponent(i.value)); else q.set(i.dataset.p, i.value);
        }
        const headers = {}; const token = document.getElementById('token').value.trim();
        if (token) headers.authorization = 'Bearer ' + token;
        const ta = d.querySelector('textarea'); let body;
        if (ta && ta.value.trim()) { body = ta.value; headers['content-type'] = 'application/json'; }
        const out = d.querySelector('.out'); out.hidden = false;
        try {
          const res = await fetch(url.replace(/^\\//, '') + (q.size ? '?' + q : ''), { method: M, headers, body });
          const text = await res.text();
          out.textContent = res.status + ' ' + res.statusText + '\\n\\n' + text;
        } catch (e) { out.textContent = String(e); }
      };
      ops.appendChild(d);
    }
  }
});
</script></body></html>`
