// An independent implementation checks the service's deletion receipts: jose
// (pinned in package-lock.json), given only the service's published keys
// (/.well-known/jwks.json), verifies a receipt the service issued for an
// upload it deleted, and rejects it once any one byte of it changes (any character, in a bit that
// it encodes).
//
//   SERVICE_URL=http://127.0.0.1:8080 API_KEY=... node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';

const service = process.env.SERVICE_URL;
const apiKey = process.env.API_KEY;
if (!service || !apiKey) throw new Error('set SERVICE_URL and API_KEY');

async function graphql(query, variables) {
  const res = await fetch(`${service}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

async function uploadFile(name) {
  const form = new FormData();
  form.append('operations', JSON.stringify({
    query: 'mutation($f: File!) { uploadFile(file: $f) { id status } }',
    variables: { f: null },
  }));
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([`contents of ${name}`], { type: 'text/plain' }), name);
  const res = await fetch(`${service}/graphql`, { method: 'POST', headers: { 'x-api-key': apiKey }, body: form });
  const body = await res.json();
  assert.equal(body.errors, undefined, `uploadFile: ${JSON.stringify(body)}`);
  return body.data.uploadFile.id;
}

const receiptQuery = `query($id: ID!) { deletionReceipt(uploadId: $id) {
  jws keyId uploadId ownerId bucket objectKey versionsRemoved deleteRequestedBy deleteRequestedVia } }`;

// receiptOf waits (a bounded time) for the receipt the purger issues once
// the object is gone.
async function receiptOf(uploadID) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const body = await graphql(receiptQuery, { id: uploadID });
    if (!body.errors) return body.data.deletionReceipt;
    assert.equal(body.errors[0].extensions.code, 'NOT_FOUND', JSON.stringify(body));
    if (Date.now() > deadline) assert.fail(`no receipt for ${uploadID} within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const base64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

test('jose verifies a deletion receipt against /.well-known/jwks.json and rejects every altered copy', async () => {
  const uploadID = await uploadFile('receipt.txt');
  const deleted = await fetch(`${service}/delete-upload-api`, {
    method: 'DELETE',
    headers: { 'x-api-key': apiKey, 'x-upload-id': uploadID },
  });
  assert.equal(deleted.status, 200, await deleted.text());
  const shown = await receiptOf(uploadID);

  const res = await fetch(`${service}/.well-known/jwks.json`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/jwk-set+json');
  assert.match(res.headers.get('cache-control'), /max-age=\d+/);
  const jwks = await res.json();
  assert.ok(jwks.keys.every((k) => k.kty === 'OKP' && k.crv === 'Ed25519' && k.kid && !('d' in k)), JSON.stringify(jwks));
  const keys = createLocalJWKSet(jwks);
  const options = { algorithms: ['EdDSA'], typ: 'deletion-receipt+jwt' };

  const { payload, protectedHeader } = await jwtVerify(shown.jws, keys, options);
  assert.equal(protectedHeader.kid, shown.keyId);
  assert.equal(payload.upload_id, uploadID);
  assert.equal(payload.owner_id, shown.ownerId);
  assert.equal(payload.bucket, shown.bucket);
  assert.equal(payload.object_key, shown.objectKey);
  assert.equal(payload.versions_removed, shown.versionsRemoved);
  assert.equal(payload.delete_requested_by, shown.deleteRequestedBy);
  assert.equal(payload.delete_requested_via, 'REST');
  assert.ok(Date.parse(payload.object_gone_at) >= Date.parse(payload.delete_requested_at), JSON.stringify(payload));

  let rejected = 0;
  for (let i = 0; i < shown.jws.length; i++) {
    if (shown.jws[i] === '.') continue;
    // The top bit of the character's six: the last character of a part
    // also carries unused low bits, which base64url decoders ignore (the
    // bytes signed would not change).
    const other = base64url[base64url.indexOf(shown.jws[i]) ^ 32];
    const altered = shown.jws.slice(0, i) + other + shown.jws.slice(i + 1);
    await assert.rejects(jwtVerify(altered, keys, options), `character ${i} changed, still verified`);
    rejected++;
  }
  for (const altered of [shown.jws + 'A', shown.jws.slice(0, -1), shown.jws.replace('.', '..')]) {
    await assert.rejects(jwtVerify(altered, keys, options), `${altered.length} characters, still verified`);
    rejected++;
  }
  console.log(`receipt of ${uploadID}: verified by jose; ${rejected} altered copies rejected`);
});
