// web-browser.mjs: snapkeep's web view in a real browser.
//
// Debian's chromium, headless, driven by playwright-core (no browser
// download: executablePath /usr/bin/chromium), a fresh profile each run.
// Loads the fleet, a device, a snapshot, the attention and intake pages of
// a server given by SK_WEB_URL (tests/integ/web-browser.py starts snapkeepd
// on a database the simulator filled), and checks:
//   - every page answers 200 and renders its table or charts;
//   - the device page's charts are SVG drawn with data points (hover
//     columns with <title>, bars, lines, dots);
//   - no console error, no page error, no failed or refused request (the CSP
//     would report inline script or style as a console error);
//   - the device whose host name is <script>alert(1)</script> shows it as
//     text and nothing runs (no dialog, no global set by the payload);
//   - the filter select submits on change (the optional script works).
// Screenshots go to SK_ARTIFACTS (default ./artifacts).  Output is TAP.
//
// Usage: SK_WEB_URL=http://127.0.0.1:PORT SK_XSS_SERIAL=... node web-browser.mjs
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const base = process.env.SK_WEB_URL;
const xssSerial = process.env.SK_XSS_SERIAL || '';
const artifacts = process.env.SK_ARTIFACTS || path.join(path.dirname(new URL(import.meta.url).pathname), 'artifacts');
const executablePath = process.env.SK_CHROMIUM || '/usr/bin/chromium';

let n = 0;
let failed = 0;
function ok(cond, name, detail) {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!cond && detail !== undefined) {
    for (const line of String(detail).split('\n').slice(0, 30)) console.log(`# ${line}`);
  }
  return cond;
}

if (!base) {
  console.log('Bail out! SK_WEB_URL is not set');
  process.exit(1);
}
if (!fs.existsSync(executablePath)) {
  console.log(`Bail out! ${executablePath} is missing: apt-get install chromium`);
  process.exit(1);
}
fs.mkdirSync(artifacts, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sk-chromium-'));

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1360, height: 900 },
  deviceScaleFactor: 1,
});

const problems = [];
const dialogs = [];
function watch(page) {
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (resp) => {
    if (resp.status() >= 400) problems.push(`HTTP ${resp.status()}: ${resp.url()}`);
  });
  page.on('dialog', async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
}

async function visit(page, url, name) {
  const before = problems.length;
  const resp = await page.goto(url, { waitUntil: 'load' });
  ok(resp && resp.status() === 200, `${name}: ${url} answers 200`, resp && resp.status());
  // Let deferred script and late console messages arrive.
  await page.waitForTimeout(200);
  const fresh = problems.slice(before);
  ok(fresh.length === 0, `${name}: no console errors, page errors or failed requests`, fresh.join('\n'));
  return resp;
}

async function shot(page, file) {
  await page.screenshot({ path: path.join(artifacts, file), fullPage: true });
}

try {
  const page = context.pages()[0] || await context.newPage();
  watch(page);

  // ---- fleet ----
  await visit(page, `${base}/`, 'fleet');
  const rows = await page.locator('table.fleet tbody tr').count();
  ok(rows > 0, `fleet: the table has rows (${rows})`);
  ok(await page.locator('table.fleet svg.bar').count() > 0, 'fleet: lowest supplies drawn as level bars');
  await shot(page, 'fleet.png');

  // The optional script: changing the state select submits the filter form.
  await Promise.all([
    page.waitForURL(/state=low/),
    page.selectOption('select[name=state]', 'low'),
  ]);
  ok(/state=low/.test(page.url()), 'fleet: the state filter applies on change (app.js)');
  await page.goto(`${base}/`, { waitUntil: 'load' });

  // ---- a device: the first one of the fleet ----
  const href = await page.locator('table.fleet td.serial a').first().getAttribute('href');
  await visit(page, `${base}${href}?range=all`, 'device');
  const charts = await page.locator('figure.chart svg.plot').count();
  ok(charts === 3, `device: three SVG charts (${charts})`);
  const hover = await page.locator('#chart-total rect.hov title').count();
  ok(hover > 10, `device: total pages chart has hover points with titles (${hover})`);
  const linePoints = await page.locator('#chart-total path.line').getAttribute('d');
  ok(linePoints && linePoints.split('L').length > 10, 'device: total pages line has data points');
  const bars = await page.locator('#chart-period rect.bar').count();
  ok(bars > 3, `device: pages per period drawn as bars (${bars})`);
  const supplyLines = await page.locator('#chart-supplies path.line').count();
  ok(supplyLines >= 1, `device: supply levels drawn as lines (${supplyLines})`);
  const barTitle = await page.locator('#chart-period rect.bar title').first().textContent();
  ok(/pages/.test(barTitle || ''), `device: a bar's hover text says what it is (${barTitle})`);
  const box = await page.locator('#chart-total svg.plot').boundingBox();
  ok(box && box.width > 600 && box.height > 120, `device: the chart is drawn at a readable size (${box && Math.round(box.width)}x${box && Math.round(box.height)})`);
  await shot(page, 'device.png');

  // ---- a snapshot of that device ----
  const snapHref = await page.locator('section.snapshots a[href^="/snapshots/"]').first().getAttribute('href');
  await visit(page, `${base}${snapHref}`, 'snapshot');
  ok(await page.locator('h2', { hasText: 'Device totals' }).count() === 1, 'snapshot: device totals as a table');
  ok(await page.locator('h2', { hasText: 'Supplies' }).count() === 1, 'snapshot: supplies as a table');
  await page.locator('details.xml summary').click();
  ok(await page.locator('pre.xml').isVisible(), 'snapshot: the indented XML opens');
  ok(await page.locator('pre.xml .xe').count() > 20, 'snapshot: the XML is highlighted');
  await shot(page, 'snapshot.png');

  // ---- attention and intake ----
  await visit(page, `${base}/attention`, 'attention');
  ok(await page.locator('section.attention').count() === 5, 'attention: five sections');
  await shot(page, 'attention.png');
  await visit(page, `${base}/intake`, 'intake');
  ok(await page.locator('table.intake tbody tr').count() > 0, 'intake: arrivals listed');
  await shot(page, 'intake.png');

  // ---- the hostile device ----
  if (xssSerial) {
    await visit(page, `${base}/devices/${encodeURIComponent(xssSerial)}`, 'xss device');
    const shown = await page.getByText('<script>alert(1)</script>').count();
    ok(shown > 0, 'xss: the host name is shown as text');
    const injected = await page.evaluate(() => document.querySelectorAll('main script, main img[src=x]').length);
    ok(injected === 0, 'xss: no element was injected from device strings');
    await shot(page, 'xss-device.png');
    await visit(page, `${base}/?q=${encodeURIComponent(xssSerial)}`, 'xss fleet');
    ok(await page.getByText('<script>alert(1)</script>').count() > 0, 'xss: the fleet shows the host name as text');
  }
  ok(dialogs.length === 0, 'no dialog was ever opened (nothing from a device ran)', dialogs.join('\n'));
} catch (err) {
  ok(false, 'the browser run completed', err && err.stack);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
