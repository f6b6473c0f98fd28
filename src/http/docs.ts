/**
 * The API description at `/openapi.json` (openapi/openapi.json, with this broker as its server) and an
 * interactive reference at `/docs`: a self-contained page (no external scripts, so it works offline and
 * under a strict CSP) listing every operation with a form to try it.
 */
import { readFileSync } from 'node:fs'
import { OpenAPIHono } from '@hono/zod-openapi'
import { BrokerError } from '../errors.js'
import { operation } from './route.js'
import { z } from './schema.js'

const SPEC_FILE = new URL('../../openapi/openapi.json', import.meta.url)

/** The document, read once on first use; a broker installed without openapi/ still starts. */
function loadSpec(issuer: string): Record<string, unknown> | undefined {
  try {
    return {
      ...(JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as Record<string, unknown>),
      servers: [{ url: issuer }],
    }
  } catch {
    return undefined
  }
}

export function docsRoutes(issuer: string): OpenAPIHono {
  const app = new OpenAPIHono()
  let spec: Record<string, unknown> | undefined
  operation(
    app,
    {
      method: 'get',
      path: '/openapi.json',
      operationId: 'openapiDocument',
      tag: 'Discovery',
      summary: 'This OpenAPI document',
      responses: {
        200: {
          description: 'OpenAPI 3.1 document',
          schema: z.looseObject({ openapi: z.string() }),
          example: { openapi: '3.1.0', info: { title: 'ssf-broker', version: '0.1.0' }, paths: {} },
        },
      },
      errors: [503],
    },
    (c) => {
      spec ??= loadSpec(issuer)
      if (!spec)
        throw new BrokerError(
          'temporarily_unavailable',
          'the OpenAPI document (openapi/openapi.json) is not installed next to dist/',
        )
      return c.json(spec)
    },
  )
  operation(
    app,
    {
      method: 'get',
      path: '/docs',
      operationId: 'apiReference',
      tag: 'Discovery',
      summary: 'Interactive API reference (HTML)',
      description:
        'Self-contained: no external scripts or styles, so it works offline and under its strict CSP.',
      responses: {
        200: {
          description: 'HTML page',
          contentType: 'text/html',
          schema: z.string(),
          example: '<!doctype html>...',
        },
      },
      errors: [],
    },
    (c) => {
      c.header(
        'Content-Security-Policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      )
      return c.html(DOCS_PAGE)
    },
  )
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
.body{padding:0 12px 12px}.d{color:#57606a}.t{color:#8250df;font:12px ui-monospace,monospace}.ref{font-weight:600}.resp{border-top:1px solid #eaeef2;padding:6px 0}ul{margin:4px 0;padding-left:20px}pre{background:#f6f8fa;padding:8px;overflow:auto;border-radius:4px;font-size:12px}
button{background:#1a7f37;color:#fff;border:0;border-radius:4px;padding:6px 14px;cursor:pointer;margin-top:8px}
</style></head><body>
<header><h1>ssf-broker API</h1><div id="desc"></div></header>
<main><p><label for="token">Bearer token</label><input id="token" placeholder="ssf_... (kept only in this page)"></p><div id="ops">Loading…</div></main>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
const pretty = (v) => typeof v === 'string' ? v : JSON.stringify(v, null, 2);
let SPEC;
const deref = (o) => { let seen = 0; while (o && o.$ref && seen++ < 8) o = o.$ref.split('/').slice(1).reduce((a, k) => a && a[k], SPEC); return o || {}; };
const refName = (o) => o && o.$ref ? o.$ref.split('/').pop() : '';
function typeOf(s) {
  if (s.$ref) return refName(s);
  if (s.allOf && s.allOf.length === 1) return typeOf(s.allOf[0]);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf || s.oneOf) return (s.anyOf || s.oneOf).map(typeOf).join(' | ');
  if (s.type === 'array') return 'array of ' + typeOf(s.items || {});
  return [].concat(s.type || 'any').join(' | ') + (s.format ? ' (' + s.format + ')' : '');
}
// A schema as nested lists of members: name, type, required, description (depth-limited).
function schemaHtml(schema, depth) {
  const s = deref(schema); const name = refName(schema) || refName(s.allOf && s.allOf[0]);
  let out = name ? '<div class="ref">' + esc(name) + '</div>' : '';
  if (s.description) out += '<div class="d">' + esc(s.description) + '</div>';
  const alts = s.anyOf || s.oneOf;
  if (alts && depth < 4) return out + '<div>one of:</div><ul>' + alts.map((a) => '<li>' + schemaHtml(a, depth + 1) + '</li>').join('') + '</ul>';
  if (s.type === 'array' && s.items && depth < 4) return out + '<div>array of:</div>' + schemaHtml(s.items, depth + 1);
  if (!s.properties) return out + '<code>' + esc(typeOf(s)) + '</code>';
  const req = new Set(s.required || []);
  return out + '<ul>' + Object.entries(s.properties).map(([k, p]) => {
    const d = deref(p); const nested = depth < 3 && (d.properties || (d.items && deref(d.items).properties));
    return '<li><code>' + esc(k) + '</code> <span class="t">' + esc(typeOf(p)) + '</span>' + (req.has(k) ? ' <b>required</b>' : '') +
      (p.description || d.description ? ' — ' + esc(p.description || d.description) : '') + (nested ? schemaHtml(d.items || p, depth + 1) : '') + '</li>';
  }).join('') + '</ul>';
}
function media(content) {
  if (!content) return '';
  return Object.entries(content).map(([type, m]) => '<div class="t">' + esc(type) + '</div>' + (m.schema ? schemaHtml(m.schema, 0) : '') +
    (m.example !== undefined ? '<div>Example</div><pre class="ex">' + esc(pretty(m.example)) + '</pre>' : '')).join('');
}
fetch('openapi.json').then((r) => r.json()).then((spec) => {
  SPEC = spec;
  document.getElementById('desc').textContent = spec.info.description || '';
  const ops = document.getElementById('ops'); ops.textContent = '';
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters') continue;
      const M = method.toUpperCase();
      const params = [...(item.parameters || []), ...(op.parameters || [])].map(deref);
      const body = op.requestBody ? deref(op.requestBody) : undefined;
      const jsonBody = body && body.content && body.content['application/json'];
      const d = document.createElement('details');
      d.id = op.operationId || '';
      d.innerHTML = '<summary><span class="m ' + M + '">' + M + '</span><code>' + esc(path) + '</code><span>' + esc(op.summary || '') + '</span></summary>' +
        '<div class="body">' + (op.description ? '<p>' + esc(op.description) + '</p>' : '') +
        params.map((p) => '<p><label>' + esc(p.name) + ' (' + esc(p.in) + (p.required ? ', required' : '') + ')</label>' + (p.description ? ' <span class="d">' + esc(p.description) + '</span>' : '') +
          '<input data-p="' + esc(p.name) + '" data-in="' + esc(p.in) + '" value="' + esc(p.example !== undefined ? p.example : (p.schema && p.schema.example !== undefined ? p.schema.example : '')) + '"></p>').join('') +
        (body ? '<h4>Request body</h4>' + media(body.content) : '') +
        (jsonBody ? '<p><label>JSON body</label><textarea rows="6">' + esc(jsonBody.example !== undefined ? pretty(jsonBody.example) : '') + '</textarea></p>' : '') +
        '<h4>Responses</h4>' + Object.entries(op.responses).map(([k, v]) => { const r = deref(v); return '<div class="resp"><b>' + esc(k) + '</b> ' + esc(r.description || '') + media(r.content) + '</div>'; }).join('') +
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
