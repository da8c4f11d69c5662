// The example frontend (internal/e2e/frontend/) against a real issuer and a
// real service: a person signs in at the issuer's login form, sees their
// uploads on the page, deletes one and reads the result; the upload is gone
// from the service. Starts its own issuer and service (UPLOADS_BIN is the
// server binary); needs no other running service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { launch, saveArtifact, isLoopback } from './chromium.mjs';
import { uploadFileTo } from './upload.mjs';
import { startFrontend, signIn, graphql, uploadsBin } from './frontend.mjs';

const bin = uploadsBin();

test('example frontend: sign in at the issuer, list uploads, delete one', async () => {
  const { pageOrigin, audience, issuer, service, stop } = await startFrontend();
  const { browser, context } = await launch();
  const page = await context.newPage();
  // What the example page itself fetches must all be on loopback here (no
  // CDN). The issuer's dev login pages ask for a web font, which the
  // launch's proxy refuses; they work without it, and are not ours.
  const pageReachedOut = [];
  const toIssuer = {};
  page.on('request', (r) => {
    if (new URL(r.frame().url()).origin === pageOrigin && !isLoopback(r.url())) pageReachedOut.push(r.url());
    const url = new URL(r.url());
    if (url.origin === issuer.url && ['/auth', '/token'].includes(url.pathname)) {
      toIssuer[url.pathname] = url.pathname === '/auth' ? url.searchParams : new URLSearchParams(r.postData());
    }
  });
  try {
    await page.goto(`${pageOrigin}/`);
    await signIn(page, pageOrigin, 'ada@example.com');
    assert.equal(new URL(page.url()).search, '', 'the code and state are still in the address bar');
    // What other issuers need too: an access token for the service (resource,
    // RFC 8707) and PKCE, with no client secret anywhere.
    const auth = toIssuer['/auth'];
    assert.equal(auth.get('resource'), audience);
    assert.equal(auth.get('scope'), 'openid uploads:read uploads:delete');
    assert.equal(auth.get('code_challenge_method'), 'S256');
    assert.ok(auth.get('state'), 'no state in the authorization request');
    assert.ok(toIssuer['/token'].get('code_verifier'), 'no PKCE verifier in the code exchange');
    assert.equal(toIssuer['/token'].get('client_secret'), null);
    assert.equal(await page.locator('#who').innerText(), 'Signed in as ada@example.com');
    assert.equal(await page.locator('#uploads li').count(), 0, 'a new user has uploads');

    // The person uploads two files from elsewhere (an API key of the user the
    // sign-in made), then comes back to the page.
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('token')).accessToken);
    const { data } = await graphql(service.url, { authorization: `Bearer ${token}` }, '{ viewer { id } }');
    const userID = data.viewer.id;
    const { api_key: apiKey } = JSON.parse(execFileSync(bin, ['keys', 'create', '--user', userID, '--json'],
      { env: { ...process.env, DATA_DIR: service.dataDir } }));
    const keep = await uploadFileTo(service.url, apiKey, 'keep.txt', 'keep');
    const doomed = await uploadFileTo(service.url, apiKey, 'doomed.txt', 'doomed');
    await page.reload();
    const row = (id) => page.locator('#uploads li', { hasText: id });
    await row(doomed).waitFor({ timeout: 20000 });
    assert.match(await row(keep).innerText(), /keep\.txt/);
    assert.match(await row(doomed).innerText(), /doomed\.txt/);

    await row(doomed).getByRole('button', { name: 'Delete' }).click();
    await page.locator('#result:not(:empty)').waitFor({ timeout: 20000 });
    assert.equal(await page.locator('#result').innerText(), `Deleted ${doomed}`);
    await row(doomed).waitFor({ state: 'detached', timeout: 5000 });
    assert.equal(await row(keep).count(), 1, 'the other upload left the list');
    saveArtifact('frontend.png', await page.screenshot({ fullPage: true }));

    // The token was only ever in this tab's sessionStorage; signing out drops it.
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    // (Cookies are per host, not per port: the issuer's session is there.)
    assert.ok((await context.cookies(pageOrigin)).every((c) => !c.value.includes(token.slice(-20))), 'the token is in a cookie');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 5000 });
    assert.equal(await page.locator('#uploads li').count(), 0, 'the list stayed after signing out');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('token')), null);

    // A token the service refuses (here: its signature spoilt) shows the
    // service's words and asks the person to sign in again.
    await page.evaluate((t) => sessionStorage.setItem('token', JSON.stringify({ accessToken: t, expiresAt: Date.now() + 60000 })),
      `${token.slice(0, -6)}AAAAAA`);
    await page.reload();
    await page.locator('#result:not(:empty)').waitFor({ timeout: 20000 });
    assert.equal(await page.locator('#result').innerText(), 'Unauthorized (UNAUTHENTICATED)');
    assert.equal(await page.getByRole('button', { name: 'Sign in' }).isVisible(), true, 'no Sign in after the token was refused');

    const after = await graphql(service.url, { 'x-api-key': apiKey },
      'query($a: ID!, $b: ID!) { a: upload(id: $a) { id } b: upload(id: $b) { id } }', { a: doomed, b: keep });
    assert.equal(after.data.a, null, 'the deleted upload is still in the service');
    assert.deepEqual(after.data.b, { id: keep });
    const object = (id) => join(service.dataDir, 's3', 'buckets', 'uploads', 'uploads', userID, id);
    assert.equal(existsSync(object(doomed)), false, 'the deleted upload\'s object is still in the bucket');
    assert.equal(existsSync(object(keep)), true, 'the other upload lost its object');
    assert.deepEqual(pageReachedOut, [], 'the page fetched something from beyond loopback');
  } catch (err) {
    saveArtifact('frontend-failure.png', await page.screenshot({ fullPage: true }));
    throw err;
  } finally {
    await browser.close();
    await stop();
  }
});
