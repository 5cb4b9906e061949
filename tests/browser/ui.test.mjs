// End-to-end scenarios of Toll's web UI in a real browser (Debian's chromium, driven by
// playwright-core): sign-in, tariff upload and the rating tester, the maker–checker plan flow
// with two people, fixing a suspense record, a plan change with its proration preview, the
// language switch and the customer portal.
//
// The server is `cargo run -p toll-server --example browser_fixture` (a fresh SQLite store,
// seeded; see that file); TOLL_BROWSER_FIXTURE may name a prebuilt binary instead.
// Screenshots go to target/browser-artifacts/ (kept by CI).
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
const PASSWORD = 'browser-test-password';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let server;
let base;
let context;
let profile;

/** Starts the fixture and resolves with its URL once it prints `listening URL`. */
function startFixture() {
  const bin = process.env.TOLL_BROWSER_FIXTURE;
  const [cmd, args] = bin
    ? [bin, []]
    : ['cargo', ['run', '-q', '-p', 'toll-server', '--example', 'browser_fixture']];
  server = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('fixture did not start in time')), 600_000);
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`fixture exited with ${code}`)));
  });
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  base = await startFixture();
  profile = mkdtempSync(path.join(tmpdir(), 'toll-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
    viewport: { width: 1360, height: 900 },
    locale: 'en-US',
  });
});

after(async () => {
  await context?.close();
  if (server) {
    server.stdin.end();
    server.kill('SIGTERM');
  }
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** A fresh page signed in as `login` (cookies of earlier users cleared, language English). */
async function signIn(login, { next } = {}) {
  await context.clearCookies();
  const page = await context.newPage();
  await page.goto(`${base}${next ?? '/ui/'}`);
  assert.match(page.url(), /\/ui\/login/, 'signed out: the sign-in form');
  await page.fill('#username', login);
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  return page;
}

test('sign in: a wrong password is refused, the right one opens the dashboard', async () => {
  await context.clearCookies();
  const page = await context.newPage();
  await page.goto(`${base}/ui/`);
  await page.fill('#username', 'admin');
  await page.fill('#password', 'not-the-password');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.equal(await page.textContent('#login-error'), 'Wrong username or password.');
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.equal(new URL(page.url()).pathname, '/ui/');
  assert.equal(await page.textContent('#kpi-calls'), '2', "the fixture's two charged calls");
  assert.equal(await page.textContent('#kpi-suspense'), '1');
  await page.waitForSelector('#traffic-chart canvas, #traffic-chart svg');
  await shot(page, '01-dashboard');
  await page.close();
});

test('upload the cn-demo tariff, activate it, and rate a call in the tester', async () => {
  const page = await signIn('operator', { next: '/ui/tariffs' });
  assert.equal(new URL(page.url()).pathname, '/ui/tariffs');
  await page.fill('#tariff-code', 'cn-demo');
  await page.setInputFiles('#tariff-file', path.join(ROOT, 'examples/cn-demo/tariff.toml'));
  await Promise.all([page.waitForNavigation(), page.click('#tariff-upload button[type=submit]')]);
  assert.match(await page.textContent('.toll-flashes'), /Tariff uploaded/);
  const row = page.locator('tr[data-tariff="cn-demo-1"]');
  await Promise.all([page.waitForNavigation(), row.locator('button').click()]);
  assert.match(await page.textContent('.toll-flashes'), /Tariff activated/);
  assert.equal(await row.locator('.toll-active').count(), 1, 'marked active');
  await shot(page, '02-tariffs');

  // A Monday 10:00 call of 90 s to a mobile: peak, first minute whole then 6 s steps.
  await page.fill('#t-dest', '13912345678');
  await page.fill('#t-start', '2026-11-23T10:00:00+08:00');
  await page.fill('#t-usage', '90s');
  await page.fill('#t-subj', 'alice');
  await page.click('#tester button[type=submit]');
  await page.waitForSelector('#tester-cost');
  const cost = await page.textContent('#tester-cost');
  assert.match(cost, /^CNY \d+\.\d+$/);
  assert.ok(Number(cost.slice(4)) > 0, `a price: ${cost}`);
  assert.ok((await page.locator('#tester-pieces tbody tr').count()) >= 1, 'pieces listed');
  assert.equal(new URL(page.url()).pathname, '/ui/tariffs', 'htmx: no page change');
  await shot(page, '03-rate-tester');
  await page.close();
});

test('plan promo: approved by the approver, activated by the operator', async () => {
  let page = await signIn('approver', { next: '/ui/plans/promo' });
  assert.equal(await page.getAttribute('#plan-status', 'data-status'), 'pending_approval');
  assert.equal(await page.locator('[data-action=activate]').count(), 0, 'no activate for approvers');
  await page.fill('#plan-comment', 'looks right');
  await Promise.all([page.waitForNavigation(), page.click('[data-action=approve]')]);
  assert.equal(await page.getAttribute('#plan-status', 'data-status'), 'approved');
  await page.close();

  page = await signIn('operator', { next: '/ui/plans/promo' });
  assert.equal(await page.locator('[data-action=approve]').count(), 0, 'no approve for operators');
  await Promise.all([page.waitForNavigation(), page.click('[data-action=activate]')]);
  assert.equal(await page.getAttribute('#plan-status', 'data-status'), 'active');
  const history = await page.textContent('#plan-history');
  assert.match(history, /user:approver/);
  assert.match(history, /user:operator/);
  await shot(page, '04-plan-active');
  await page.close();
});

test('suspense: fix the caller of a record and re-process it', async () => {
  const page = await signIn('operator', { next: '/ui/suspense' });
  await Promise.all([page.waitForNavigation(), page.click('#suspense tbody tr a')]);
  assert.match(await page.textContent('#suspense-class'), /unknown_subscriber/);
  const record = page.locator('#s-record');
  const raw = page.locator('#s-raw');
  const field = (await record.count()) ? record : raw;
  const text = await field.inputValue();
  assert.ok(text.includes('13700137000'), text);
  await field.fill(text.replaceAll('13700137000', '13800138000'));
  await Promise.all([page.waitForNavigation(), page.click('#suspense-edit button[type=submit]')]);
  assert.match(await page.textContent('.toll-flashes'), /the record was charged/);
  assert.equal(await page.textContent('#suspense-status'), 'Resolved');
  await shot(page, '05-suspense-fixed');
  await page.close();

  // Operators may not read the audit log; an admin sees the fix recorded there.
  const admin = await signIn('admin', { next: '/ui/audit' });
  const log = await admin.textContent('#audit');
  assert.match(log, /suspense\.edit/);
  assert.match(log, /suspense\.reprocess/);
  await shot(admin, '06-audit');
  await admin.close();
});

test('a plan change: the proration preview appears as the form changes, then the change', async () => {
  const page = await signIn('operator', { next: '/ui/accounts/a1' });
  const before = await page.textContent('#account-balance');
  // The first day of the period (the subscription's anchor): the whole month is left, so
  // basic (0.00) → plus (60.00) charges all of 60.00 and credits nothing.
  const firstOfMonth = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' })
    .format(new Date()).slice(0, 8) + '01';
  const form = page.locator('form.plan-change').first();
  await form.locator('input[name=date]').fill(firstOfMonth);
  await form.locator('select[name=plan]').selectOption('plus');
  const preview = page.locator('[id^=plan-preview-] .plan-preview');
  await preview.waitFor();
  assert.match(await preview.textContent(), /basic v1 → plus v1/);
  assert.equal((await page.textContent('.preview-charge')).trim(), 'CNY 60.00');
  assert.equal((await page.textContent('.preview-credit')).trim(), 'CNY 0.00');
  assert.equal((await page.textContent('.preview-net')).trim(), 'CNY 60.00');
  const [left, days] = (await page.textContent('.preview-days')).split('/').map((s) => Number(s.trim()));
  assert.ok(days >= 28 && days <= 31 && left === days, `${left} / ${days}`);
  await shot(page, '06a-plan-change-preview');
  await form.locator('input[name=comment]').fill('upgrade 升级');
  await Promise.all([page.waitForNavigation(), form.locator('button.btn-primary').click()]);
  assert.match(await page.textContent('.toll-flashes'), /Plan changed/);
  assert.match(await page.textContent('#subscriptions'), /basic v1 → plus v1/);
  const after = await page.textContent('#account-balance');
  const cents = (s) => Math.round(Number(s.replace('CNY ', '')) * 100);
  assert.equal(cents(before) - cents(after), 6000, `${before} → ${after}`);
  await shot(page, '06b-plan-changed');
  await page.close();
});

test('the language switcher turns the UI into Chinese', async () => {
  const page = await signIn('admin');
  await Promise.all([page.waitForNavigation(), page.click('.toll-langs a[lang=zh-CN]')]);
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  assert.match(await page.textContent('nav'), /资费管理/);
  assert.match(await page.textContent('main'), /今日通话/);
  await shot(page, '07-dashboard-zh');
  // Back to English for the scenarios after this one.
  await Promise.all([page.waitForNavigation(), page.click('.toll-langs a[lang=en]')]);
  await page.close();
});

test('the customer portal shows the balance and the allowance', async () => {
  const page = await signIn('customer');
  assert.equal(new URL(page.url()).pathname, '/portal');
  const balance = await page.textContent('#account-balance');
  assert.match(balance, /^CNY \d+\.\d\d$/);
  assert.ok(await page.locator('.progress-bar').count(), 'allowance shown as a bar');
  await page.fill('#req-amount', '50');
  await Promise.all([page.waitForNavigation(), page.click('#topup-request button[type=submit]')]);
  assert.match(await page.textContent('.toll-flashes'), /top-up request was sent/);
  await shot(page, '08-portal');
  const staff = await page.goto(`${base}/ui/tariffs`);
  assert.equal(staff.status(), 403, 'no staff pages for customers');
  await page.close();
});
