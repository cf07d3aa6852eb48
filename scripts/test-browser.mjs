#!/usr/bin/env node
// Runs test/browser/kernels.html in headless Chromium: the wasm kernels, their Web Worker pool and the
// wasm backend, from dist/ (run `npm run build` first; `npm run test:browser` does). Serves the
// repository over HTTP with the cross-origin isolation headers shared wasm memories need
// (COOP same-origin, COEP require-corp). Browser: $CHROMIUM_PATH, or chromium / google-chrome on PATH
// (Debian: apt-get install chromium). Prints one line per check; exit code 1 on any failure.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

function findBrowser() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim();
    } catch { /* next */ }
  }
  return null;
}

const browserPath = findBrowser();
if (!browserPath) {
  console.error('test-browser: no Chromium found (set CHROMIUM_PATH, or apt-get install chromium)');
  process.exit(2);
}
const { default: puppeteer } = await import('puppeteer-core');

const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  const file = join(root, path);
  if (!file.startsWith(root)) { res.writeHead(403).end(); return; }
  try {
    if (!(await stat(file)).isFile()) throw new Error('not a file');
    res.writeHead(200, {
      'Content-Type': types[extname(file)] ?? 'application/octet-stream',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin',
    });
    res.end(await readFile(file));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/test/browser/kernels.html`;

const browser = await puppeteer.launch({ executablePath: browserPath, headless: true, args: ['--no-sandbox'] });
let failed = 0;
try {
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction('window.__result && window.__result.done', { timeout: 300_000 });
  const r = await page.evaluate('window.__result');
  console.log(`browser: ${r.userAgent}`);
  for (const c of r.results) {
    console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? ` (${c.detail})` : ''}`);
    if (!c.ok) failed++;
  }
  if (r.error) { console.log(`FAIL page error: ${r.error}`); failed++; }
  if (!r.results.length) failed++;
  if (failed) for (const l of logs) console.log(l);
  console.log(`${r.results.length - failed} passed, ${failed} failed`);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
