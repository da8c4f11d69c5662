// The example frontend (internal/e2e/frontend/) served for a test, and a
// person signing in on it: shared by the tests that drive the page against
// their own issuer and service (internal/e2e/oidc/harness.mjs).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIssuer, startService, newKey, freePort } from '../oidc/harness.mjs';

const frontendDir = fileURLToPath(new URL('../frontend/', import.meta.url));

// uploadsBin is the server binary the tests start (UPLOADS_BIN).
export function uploadsBin() {
  const bin = process.env.UPLOADS_BIN;
  if (!bin) throw new Error('set UPLOADS_BIN to the server binary (go build -o BIN .; see .ci/run)');
  return bin;
}

// serveFrontend serves the page's directory as it is in the repository, but
// for config.js, which points it at this test's issuer and service.
function serveFrontend(port, config) {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (path === '/config.js') {
      res.writeHead(200, { 'content-type': types['.js'] }).end(`export default ${JSON.stringify(config)};\n`);
      return;
    }
    const file = resolve(frontendDir, '.' + (path.endsWith('/') ? path + 'index.html' : path));
    if (!file.startsWith(frontendDir) || file.includes(`${sep}node_modules${sep}`)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((done) => server.listen(port, '127.0.0.1', () => done(server)));
}

// startFrontend starts, on loopback ports, an issuer with the page as its
// public client, a service (UPLOADS_BIN) that trusts it and lets the page's
// origin call it, and the page pointed at both. stop() ends them all.
export async function startFrontend() {
  const pagePort = await freePort();
  const servicePort = await freePort();
  const pageOrigin = `http://127.0.0.1:${pagePort}`;
  const audience = `http://127.0.0.1:${servicePort}`;
  const issuer = await startIssuer({
    port: await freePort(), audience, keys: [await newKey('ES256')],
    redirectUris: [`${pageOrigin}/`], corsOrigins: [pageOrigin],
  });
  const service = await startService({
    bin: uploadsBin(), port: servicePort, issuer: issuer.url, audience,
    env: { AUTH_CREATE_USERS: 'true', CORS_ALLOWED_ORIGINS: pageOrigin },
  }).catch(async (err) => {
    await issuer.stop();
    throw err;
  });
  const server = await serveFrontend(pagePort, {
    issuer: issuer.url, clientId: 'example-frontend', audience, serviceURL: service.url,
    scope: 'openid uploads:read uploads:delete',
  });
  return {
    pageOrigin, audience, issuer, service,
    async stop() {
      server.close();
      await service.stop();
      await issuer.stop();
    },
  };
}

export async function graphql(serviceURL, headers, query, variables = {}) {
  const res = await fetch(`${serviceURL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

// signIn goes through the issuer's own pages as a person would: its login
// form (any login and password), then its consent page if it shows one,
// until the issuer sends the browser back to the page.
export async function signIn(page, pageOrigin, login) {
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('input[name="login"]').fill(login, { timeout: 20000 });
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  const back = page.waitForURL((url) => url.origin === pageOrigin, { timeout: 20000 });
  const consent = page.getByRole('button', { name: 'Continue' });
  if (await Promise.race([back.then(() => false), consent.waitFor({ timeout: 20000 }).then(() => true)])) {
    await consent.click();
    await back;
  }
  // The page then lists the person's uploads, or says what went wrong.
  await page.locator('#who:not(:empty), #result:not(:empty)').first().waitFor({ timeout: 20000 });
  assert.match(await page.locator('#who').innerText(), /^Signed in as /,
    `not signed in; the page says: ${await page.locator('#result').innerText()}`);
}
