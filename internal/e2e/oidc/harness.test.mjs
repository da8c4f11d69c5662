// The issuer that harness.mjs starts, on its own (no service): what the
// service and the browser tests rely on it to publish and issue.
//
//   node --test harness.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { freePort, newKey, startIssuer } from './harness.mjs';

const audience = 'https://uploads.example.test';
const page = 'http://127.0.0.1:9';
const redirectURI = `${page}/callback`;
const timeout = 30000;

const decodePart = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());

describe('the test issuer', () => {
  const keyA = newKey('RS256');
  let port;
  let issuer;

  before(async () => {
    port = await freePort();
    issuer = await startIssuer({ port, audience, keys: [keyA], redirectUris: [redirectURI], corsOrigins: [page] });
  });
  after(() => issuer?.stop());

  test('publishes discovery and only public keys', { timeout }, async () => {
    const discovery = await (await fetch(`${issuer.url}/.well-known/openid-configuration`)).json();
    assert.equal(discovery.issuer, `http://127.0.0.1:${port}`);
    assert.equal(discovery.token_endpoint, `${issuer.url}/token`);
    const { keys } = await (await fetch(discovery.jwks_uri)).json();
    assert.deepEqual(keys.map((k) => [k.kid, k.alg, 'd' in k]), [[keyA.kid, 'RS256', false]]);
  });

  test('client credentials give a JWT access token for the audience with the scopes asked', { timeout }, async () => {
    const token = await issuer.tokenFor({ scope: 'uploads:read uploads:delete' });
    const [header, payload] = token.split('.').slice(0, 2).map(decodePart);
    assert.deepEqual(header, { alg: 'RS256', typ: 'at+jwt', kid: keyA.kid });
    assert.equal(payload.iss, issuer.url);
    assert.equal(payload.aud, audience);
    assert.equal(payload.sub, 'ci-client');
    assert.equal(payload.scope, 'uploads:read uploads:delete');
    assert.ok(payload.exp > Date.now() / 1000);
  });

  test('example-frontend signs a user in with authorization code and PKCE, from an allowed origin only', { timeout }, async () => {
    const jar = new Map();
    const visit = async (url, init = {}) => {
      const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await fetch(new URL(url, issuer.url), { ...init, redirect: 'manual', headers: { ...init.headers, cookie } });
      for (const set of res.headers.getSetCookie()) {
        const [pair] = set.split(';');
        const eq = pair.indexOf('=');
        jar.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      return res;
    };
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const authorize = `/auth?${new URLSearchParams({
      client_id: 'example-frontend', response_type: 'code', redirect_uri: redirectURI,
      scope: 'openid uploads:read uploads:delete', code_challenge: challenge, code_challenge_method: 'S256', state: 's1',
    })}`;

    // The dev interactions: a login form (any login) and a consent form.
    let res = await visit(authorize);
    for (let step = 0; step < 10 && !res.headers.get('location')?.startsWith(redirectURI); step++) {
      if (res.status === 200) {
        const html = await res.text();
        const action = html.match(/action="([^"]+)"/)[1];
        const form = html.includes('name="login"')
          ? { prompt: 'login', login: 'alice@example.com', password: 'any' }
          : { prompt: 'consent' };
        res = await visit(action, { method: 'POST', body: new URLSearchParams(form) });
      } else {
        res = await visit(res.headers.get('location'));
      }
    }
    const back = new URL(res.headers.get('location'));
    assert.equal(back.searchParams.get('state'), 's1');
    const code = back.searchParams.get('code');
    assert.ok(code, `no code in ${back}`);

    const exchange = (origin, codeVerifier) => fetch(`${issuer.url}/token`, {
      method: 'POST',
      headers: { origin },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code, redirect_uri: redirectURI, client_id: 'example-frontend', code_verifier: codeVerifier,
      }),
    });
    const wrongVerifier = await exchange(page, randomBytes(32).toString('base64url'));
    assert.equal(wrongVerifier.status, 400);
    assert.equal((await wrongVerifier.json()).error, 'invalid_grant');

    const elsewhere = await exchange('http://evil.example', verifier);
    assert.equal(elsewhere.status, 400);
    assert.equal(elsewhere.headers.get('access-control-allow-origin'), null);
    assert.match((await elsewhere.json()).error_description, /origin http:\/\/evil\.example not allowed/);

    const ok = await exchange(page, verifier);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), page);
    const { access_token: token } = await ok.json();
    const [header, payload] = token.split('.').slice(0, 2).map(decodePart);
    assert.equal(header.typ, 'at+jwt');
    assert.deepEqual(
      [payload.iss, payload.aud, payload.sub, payload.email, payload.scope],
      [issuer.url, audience, 'alice@example.com', 'alice@example.com', 'uploads:read uploads:delete'],
    );
  });

  test('restarted on the same port with a new key first, it signs with that key and keeps the old one published', { timeout }, async () => {
    const keyB = newKey('ES256');
    await issuer.stop();
    await assert.rejects(fetch(`${issuer.url}/jwks`));
    issuer = await startIssuer({ port, audience, keys: [keyB, keyA] });
    const { keys } = await (await fetch(`${issuer.url}/jwks`)).json();
    assert.deepEqual(keys.map((k) => k.kid), [keyB.kid, keyA.kid]);
    const header = decodePart((await issuer.tokenFor({ scope: 'uploads:read' })).split('.')[0]);
    assert.deepEqual([header.alg, header.kid], ['ES256', keyB.kid]);
  });
});
