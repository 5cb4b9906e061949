// The README's first command as a newcomer meets it, in a real browser: `toll demo` seeds a
// fresh file and serves; signing in with a printed login shows the dashboard full of data
// (today's calls, revenue, the suspense count, the traffic chart drawn), then the CDR search.
// TOLL_BIN names the `toll` binary (default target/debug/toll). Screenshots: target/browser-artifacts/demo-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ARTIFACTS = path.join(ROOT, 'target', 'browser-artifacts');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOLL = process.env.TOLL_BIN || path.join(ROOT, 'target', 'debug', 'toll');

let server;
let base;
let context;
let dir;
let printed = '';

function startDemo() {
  dir = mkdtempSync(path.join(tmpdir(), 'toll-demo-'));
  server = spawn(
    TOLL,
    ['demo', '--listen', '127.0.0.1:0', '--file', path.join(dir, 'toll-demo.db'), '--cdrs', '30000'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`toll demo did not start:\n${printed}`)), 600_000);
    server.stdout.on('data', (chunk) => {
      printed += chunk;
      const m = printed.match(/Toll demo is running: (http:\/\/\S+)\/ui\//);
      if (m && printed.includes('customer')) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`toll demo exited with ${code}:\n${printed}`)));
  });
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  base = await startDemo();
  context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync'],
    viewport: { width: 1360, height: 900 },
    locale: 'zh-CN',
  });
});

after(async () => {
  await context?.close();
  server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('toll demo: the printed login opens a dashboard full of data', async () => {
  const m = printed.match(/operator\s+\/\s+(\S+)/);
  assert.ok(m, `the banner names the operator's password:\n${printed}`);
  const page = await context.newPage();
  await page.goto(`${base}/ui/`);
  assert.match(page.url(), /\/ui\/login/, 'signed out: the sign-in form');
  await page.fill('#username', 'operator');
  await page.fill('#password', m[1]);
  await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
  assert.match(page.url(), /\/ui\/$/);
  const calls = Number((await page.textContent('#kpi-calls')).replace(/[^0-9]/g, ''));
  assert.ok(calls > 0, `calls today: ${calls}`);
  const revenue = await page.textContent('#kpi-revenue');
  assert.match(revenue, /[1-9]/, `revenue today: ${revenue}`);
  const suspense = Number((await page.textContent('#kpi-suspense')).replace(/[^0-9]/g, ''));
  assert.ok(suspense > 0, `suspense: ${suspense}`);
  await page.waitForSelector('#traffic-chart canvas');
  assert.match(await page.textContent('html'), /今日|通话/, 'zh-CN for a Chinese browser');
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-dashboard.png'), fullPage: true });
  await page.goto(`${base}/ui/cdrs`);
  assert.ok((await page.locator('table tbody tr').count()) > 5, 'the CDR search lists calls');
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-cdrs.png'), fullPage: true });
});
