// Headless Chromium for the browser tests, cut off from everything but
// loopback, and where their screenshots go. Needs no running service, so
// tests that start their own (frontend.test.mjs) can use it too.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const artifactsDir = process.env.E2E_ARTIFACTS || '/tmp/e2e-artifacts';

export function isLoopback(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

// launch starts headless Chromium in which every request that is not to a
// loopback address fails, as it would on a machine with no internet: names
// do not resolve, and everything not on loopback goes to a proxy that
// refuses connections. (Playwright's request interception is not used: with
// it, Chromium skips CORS preflights, which the CORS tests are about.)
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
      '--proxy-server=http://127.0.0.1:9', // nothing listens there
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const blocked = [];
  context.on('request', (r) => { if (!isLoopback(r.url())) blocked.push(r.url()); });
  return { browser, context, blocked };
}

export function saveArtifact(name, data) {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, name);
  writeFileSync(path, data);
  console.log(`artifact: ${path}`);
}
