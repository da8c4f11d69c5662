// The service accepts access tokens from a real OpenID Connect issuer
// (oidc-provider): scopes decide what a token may do; altered tokens, tokens
// of another issuer and tokens for another audience are refused; a key
// rotation needs no restart, even with the issuer a network away; an issuer
// that is down does not stop tokens already issued.
//
//   UPLOADS_BIN=/path/to/built/server node --test issuer.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, newKey, startIssuer, startService } from './harness.mjs';

const bin = process.env.UPLOADS_BIN;
if (!bin) throw new Error('set UPLOADS_BIN to the built server binary (go build -o BIN .)');

const audience = 'https://uploads.example.test';
const fullScope = 'uploads:read uploads:write uploads:delete';
// The contract's success body names the upload.
const deletedBody = (uploadID) => `{"message":"Upload ${uploadID} deleted successfully"}`;
const unauthorizedBody = '{"error":"Unauthorized"}';
const notFoundBody = '{"error":"Upload not found"}';
const timeout = 30000;

const decodePart = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());

// world is the issuer and the service of the describe block running.
const world = { issuerPort: 0, issuer: null, service: null };

// aWorld starts an issuer signing with keys and a service trusting it, for a
// describe block, and stops both after it.
function aWorld(keys, { latencyMs = 0 } = {}) {
  before(async () => {
    world.issuerPort = await freePort();
    world.issuer = await startIssuer({ port: world.issuerPort, audience, keys, latencyMs });
    world.service = await startService({ bin, port: await freePort(), issuer: world.issuer.url, audience });
  });
  after(async () => {
    const log = world.service?.output();
    if (log) console.error(`service log (LOG_LEVEL=warn):\n${log}`);
    try {
      await world.service?.stop();
    } finally {
      await world.issuer?.stop();
    }
  });
}

async function graphql(token, query, variables = {}) {
  const res = await fetch(`${world.service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

// uploadFile stores a small file through the GraphQL multipart request spec.
async function uploadFile(token, name) {
  const form = new FormData();
  form.append('operations', JSON.stringify({
    query: 'mutation($f: File!) { uploadFile(file: $f) { id status } }',
    variables: { f: null },
  }));
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([`contents of ${name}`], { type: 'text/plain' }), name);
  const res = await fetch(`${world.service.url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, `uploadFile: ${JSON.stringify(body)}`);
  assert.equal(body.data.uploadFile.status, 'COMPLETED');
  return body.data.uploadFile.id;
}

async function restDelete(bearer, uploadID) {
  const res = await fetch(`${world.service.url}/delete-upload-api`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${bearer}`, 'x-upload-id': uploadID },
  });
  return { status: res.status, body: await res.text() };
}

async function uploadExists(token, uploadID) {
  const body = await graphql(token, 'query($id: ID!) { upload(id: $id) { id } }', { id: uploadID });
  assert.equal(body.errors, undefined, `upload(id:): ${JSON.stringify(body)}`);
  return body.data.upload !== null;
}

// rotate stops the issuer and starts it again on the same port with keyB
// signing and keyA still published; a new token works at once, and one
// signed with keyA before still does.
async function rotate(keyA, keyB, latencyMs = 0) {
  const beforeRotation = await world.issuer.tokenFor({ scope: fullScope });
  await world.issuer.stop();
  // Key B (ES256, new kid) signs; key A stays published for tokens already out.
  world.issuer = await startIssuer({ port: world.issuerPort, audience, keys: [keyB, keyA], latencyMs });

  const token = await world.issuer.tokenFor({ scope: fullScope });
  const header = decodePart(token.split('.')[0]);
  assert.deepEqual([header.alg, header.kid], ['ES256', keyB.kid]);

  const uploadID = await uploadFile(token, 'rotated.txt');
  assert.deepEqual(await restDelete(token, uploadID), { status: 200, body: deletedBody(uploadID) });

  const older = await uploadFile(beforeRotation, 'signed-by-a.txt');
  assert.deepEqual(await restDelete(beforeRotation, older), { status: 200, body: deletedBody(older) });
}

describe('access tokens from an OpenID Connect issuer', () => {
  const keyA = newKey('RS256');
  const keyB = newKey('ES256');
  aWorld([keyA]);

  test('a client credentials token uploads, then deletes through REST and through GraphQL', { timeout }, async () => {
    const token = await world.issuer.tokenFor({ scope: fullScope });

    const first = await uploadFile(token, 'rest.txt');
    assert.equal(await uploadExists(token, first), true);
    assert.deepEqual(await restDelete(token, first), { status: 200, body: deletedBody(first) });
    assert.equal(await uploadExists(token, first), false);
    assert.deepEqual(await restDelete(token, first), { status: 404, body: notFoundBody });

    const second = await uploadFile(token, 'graphql.txt');
    const deleted = await graphql(token, 'mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }', { id: second });
    assert.equal(deleted.errors, undefined, JSON.stringify(deleted));
    assert.equal(deleted.data.deleteUpload.deletedUploadId, second);
    assert.equal(await uploadExists(token, second), false);
    assert.deepEqual(await restDelete(token, second), { status: 404, body: notFoundBody });
  });

  test('a token with only uploads:read cannot delete', { timeout }, async () => {
    const writer = await world.issuer.tokenFor({ scope: fullScope });
    const reader = await world.issuer.tokenFor({ scope: 'uploads:read' });
    assert.equal(decodePart(reader.split('.')[1]).scope, 'uploads:read');
    const uploadID = await uploadFile(writer, 'kept.txt');

    assert.deepEqual(await restDelete(reader, uploadID), { status: 401, body: unauthorizedBody });
    const refused = await graphql(reader, 'mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }', { id: uploadID });
    assert.equal(refused.errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(refused));
    assert.equal(refused.data?.deleteUpload ?? null, null);

    // Reading is what it may do, and the upload is still there.
    assert.equal(await uploadExists(reader, uploadID), true);
    assert.deepEqual(await restDelete(writer, uploadID), { status: 200, body: deletedBody(uploadID) });
  });

  test('a malformed or altered token is refused', { timeout }, async () => {
    const token = await world.issuer.tokenFor({ scope: fullScope });
    const uploadID = await uploadFile(token, 'guarded.txt');

    assert.deepEqual(await restDelete('a.b.c', uploadID), { status: 401, body: unauthorizedBody });
    const garbage = await graphql('a.b.c', '{ viewer { id } }');
    assert.equal(garbage.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(garbage));

    // Same header and signature, another subject: the signature no longer matches.
    const [header, payload, signature] = token.split('.');
    const claims = decodePart(payload);
    const altered = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url');
    assert.deepEqual(await restDelete(`${header}.${altered}.${signature}`, uploadID), { status: 401, body: unauthorizedBody });

    assert.equal(await uploadExists(token, uploadID), true);
    assert.deepEqual(await restDelete(token, uploadID), { status: 200, body: deletedBody(uploadID) });
  });

  test('after a key rotation at the issuer, new tokens work without restarting the service', { timeout }, () => rotate(keyA, keyB));
});

// Signed by a key the service trusts is not enough: the token must be from
// its issuer and for its audience.
describe('tokens from elsewhere', () => {
  const keyA = newKey('RS256');
  aWorld([keyA]);

  test('a token from another issuer signing with the same key is refused', { timeout }, async () => {
    const token = await world.issuer.tokenFor({ scope: fullScope });
    const uploadID = await uploadFile(token, 'mine.txt');
    const other = await startIssuer({ port: await freePort(), audience, keys: [keyA] });
    try {
      const foreign = await other.tokenFor({ scope: fullScope });
      assert.equal(decodePart(foreign.split('.')[0]).kid, keyA.kid);
      assert.deepEqual(await restDelete(foreign, uploadID), { status: 401, body: unauthorizedBody });
      const refused = await graphql(foreign, '{ viewer { id } }');
      assert.equal(refused.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(refused));
    } finally {
      await other.stop();
    }
    assert.equal(await uploadExists(token, uploadID), true);
  });

  test("a token for another service's audience is refused", { timeout }, async () => {
    const token = await world.issuer.tokenFor({ scope: fullScope });
    const uploadID = await uploadFile(token, 'for-this-audience.txt');
    const otherService = await startService({
      bin, port: await freePort(), issuer: world.issuer.url, audience: 'https://another-service.example.test',
    });
    try {
      const res = await fetch(`${otherService.url}/delete-upload-api`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}`, 'x-upload-id': uploadID },
      });
      assert.deepEqual({ status: res.status, body: await res.text() }, { status: 401, body: unauthorizedBody });
    } finally {
      await otherService.stop();
    }
  });
});

// A real issuer is a network away: fetching its keys takes a round trip or
// two, and the rotation must still take effect at once.
describe('an issuer 200 ms away', () => {
  const keyA = newKey('RS256');
  const keyB = newKey('ES256');
  aWorld([keyA], { latencyMs: 200 });

  test('after a key rotation, new tokens work without restarting the service', { timeout }, () => rotate(keyA, keyB, 200));
});

// Its own service: the service fetches the keys again for a token naming an
// unknown key at most once per 10 seconds, and the rotation above used that.
describe('with the issuer down', () => {
  aWorld([newKey('RS256')]);

  test('a token issued before still deletes, a token naming an unknown key is refused, the service stays ready', { timeout }, async () => {
    const token = await world.issuer.tokenFor({ scope: fullScope });
    const uploadID = await uploadFile(token, 'issuer-down.txt');
    await world.issuer.stop();
    await assert.rejects(fetch(`${world.issuer.url}/jwks`), 'the issuer should be down');

    // A kid the service has not seen makes it fetch the keys again: the
    // issuer is down, so the token is refused, at once, and the cached keys
    // are kept.
    const [header, payload, signature] = token.split('.');
    const otherKid = Buffer.from(JSON.stringify({ ...decodePart(header), kid: 'not-published' })).toString('base64url');
    const started = Date.now();
    assert.deepEqual(await restDelete(`${otherKid}.${payload}.${signature}`, uploadID), { status: 401, body: unauthorizedBody });
    assert.ok(Date.now() - started < 5000, `the refusal took ${Date.now() - started} ms`);

    assert.deepEqual(await restDelete(token, uploadID), { status: 200, body: deletedBody(uploadID) });
    assert.equal(await uploadExists(token, uploadID), false);
    const ready = await fetch(`${world.service.url}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
  });
});
