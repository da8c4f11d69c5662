// A second opinion on every token: the service's verdict (accepted or
// refused) is checked against jose's jwtVerify, configured as the service is
// (this issuer, this audience, asymmetric algorithms only, 60 s clock
// tolerance, exp and sub required), for a table of valid, expired, misdirected,
// forged and odd tokens. Each row also states the expected verdict, so that a
// mistake shared by both cannot pass. The table of verdicts is printed.
//
//   UPLOADS_BIN=/path/to/built/server node --test jose.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomUUID } from 'node:crypto';
import { SignJWT, UnsecuredJWT, createRemoteJWKSet, importJWK, jwtVerify } from 'jose';
import { freePort, newKey, startIssuer, startService } from './harness.mjs';

const bin = process.env.UPLOADS_BIN;
if (!bin) throw new Error('set UPLOADS_BIN to the built server binary (go build -o BIN .)');

const audience = 'https://uploads.example.test';
const timeout = 60000;
// The service's settings (AUTH_ALGORITHMS is not one: internal/oidc.Algorithms).
const algorithms = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const clockSkewSeconds = 60;

const ACCEPT = 'accepted';
const REFUSE = 'refused';

const world = { issuer: null, service: null, jwks: null };
// Key A (RS256) signs at the issuer and is published; key B (ES256) is
// published too, as after a rotation.
const keyA = newKey('RS256');
const keyB = newKey('ES256');

const now = () => Math.floor(Date.now() / 1000);
const publicJWK = ({ d, p, q, dp, dq, qi, ...pub }) => pub;
const encodePart = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const decodePart = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());

// claims are an access token's claims as the issuer would write them
// (RFC 9068), with changes: a value of undefined removes the claim.
function claims(changes = {}) {
  const t = now();
  const all = {
    iss: world.issuer.url,
    sub: `jose-${randomUUID()}`,
    aud: audience,
    iat: t,
    exp: t + 300,
    jti: randomUUID(),
    client_id: 'ci-client',
    scope: 'uploads:read',
    ...changes,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
}

// sign makes a JWS with jose: key is a private JWK; the header names its kid
// and alg unless header says otherwise.
async function sign(payload, key, header = {}, options = {}) {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header })
    .sign(await importJWK(key, key.alg), options);
}

// withPayload keeps a token's header and signature and changes its claims.
function withPayload(token, changes) {
  const [header, payload, signature] = token.split('.');
  return `${header}.${encodePart({ ...decodePart(payload), ...changes })}.${signature}`;
}

async function joseVerdict(token) {
  try {
    await jwtVerify(token, world.jwks, {
      issuer: world.issuer.url,
      audience,
      algorithms,
      clockTolerance: clockSkewSeconds,
      requiredClaims: ['exp', 'sub'],
    });
    return { verdict: ACCEPT, why: '' };
  } catch (err) {
    return { verdict: REFUSE, why: err.code ?? err.message };
  }
}

async function graphql(token, query, variables = {}) {
  const res = await fetch(`${world.service.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

async function serviceVerdict(token) {
  const body = await graphql(token, '{ viewer { id } }');
  if (body.errors === undefined && typeof body.data?.viewer?.id === 'string') return ACCEPT;
  if (body.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED') return REFUSE;
  throw new Error(`the service answered neither data nor UNAUTHENTICATED: ${JSON.stringify(body)}`);
}

// rows are the tokens: name, expected verdict, and a function making the
// token. knownDifference (with why) is where the service is meant to differ
// from jose as configured here.
const rows = [
  { name: 'issuer token (RS256, typ at+jwt)', expect: ACCEPT, make: () => world.issuer.tokenFor({ scope: 'uploads:read' }) },
  { name: 'issuer token, payload changed after signing', expect: REFUSE,
    make: async () => withPayload(await world.issuer.tokenFor({ scope: 'uploads:read' }), { sub: 'someone-else' }) },
  { name: 'valid RS256 (key A, typ at+jwt)', expect: ACCEPT, make: () => sign(claims(), keyA) },
  { name: 'valid ES256 (key B, published, not signing)', expect: ACCEPT, make: () => sign(claims(), keyB) },
  { name: 'typ JWT instead of at+jwt', expect: ACCEPT, make: () => sign(claims(), keyA, { typ: 'JWT' }) },
  { name: 'no typ', expect: ACCEPT, make: () => sign(claims(), keyA, { typ: undefined }) },
  { name: 'aud an array containing the audience', expect: ACCEPT,
    make: () => sign(claims({ aud: ['https://other.example.test', audience] }), keyA) },
  { name: 'exp 2 min ago', expect: REFUSE, make: () => sign(claims({ iat: now() - 600, exp: now() - 120 }), keyA) },
  { name: 'exp 30 s ago (within the 60 s skew)', expect: ACCEPT, make: () => sign(claims({ iat: now() - 600, exp: now() - 30 }), keyA) },
  { name: 'nbf 2 min ahead', expect: REFUSE, make: () => sign(claims({ nbf: now() + 120 }), keyA) },
  { name: 'nbf 30 s ahead (within the skew)', expect: ACCEPT, make: () => sign(claims({ nbf: now() + 30 }), keyA) },
  { name: 'iat 30 s ahead (within the skew)', expect: ACCEPT, make: () => sign(claims({ iat: now() + 30 }), keyA) },
  { name: 'iat 2 min ahead', expect: REFUSE, make: () => sign(claims({ iat: now() + 120 }), keyA),
    knownDifference: { jose: ACCEPT, why: 'the service refuses an iat beyond the skew (jwt.WithIssuedAt); jose checks iat only with maxTokenAge' } },
  { name: 'wrong aud', expect: REFUSE, make: () => sign(claims({ aud: 'https://other.example.test' }), keyA) },
  { name: 'aud an array without the audience', expect: REFUSE,
    make: () => sign(claims({ aud: ['https://other.example.test', 'https://third.example.test'] }), keyA) },
  { name: 'no aud', expect: REFUSE, make: () => sign(claims({ aud: undefined }), keyA) },
  { name: 'wrong iss', expect: REFUSE, make: () => sign(claims({ iss: 'http://127.0.0.1:1' }), keyA) },
  { name: 'iss with a trailing slash', expect: REFUSE, make: () => sign(claims({ iss: `${world.issuer.url}/` }), keyA) },
  { name: 'no iss', expect: REFUSE, make: () => sign(claims({ iss: undefined }), keyA) },
  { name: 'no exp', expect: REFUSE, make: () => sign(claims({ exp: undefined }), keyA) },
  // RFC 7519: exp is a NumericDate, a JSON number; golang-jwt alone would
  // also read a string of digits.
  { name: 'exp a string, 5 min ahead', expect: REFUSE, make: () => sign(claims({ exp: String(now() + 300) }), keyA) },
  { name: 'exp a string, 2 min ago', expect: REFUSE, make: () => sign(claims({ iat: now() - 600, exp: String(now() - 120) }), keyA) },
  // Claim names are case-sensitive (RFC 7519, section 4); encoding/json
  // alone matches them in any case, the last one winning.
  { name: 'EXP (capitals) instead of exp, 5 min ahead', expect: REFUSE,
    make: () => sign(claims({ exp: undefined, EXP: now() + 300 }), keyA) },
  { name: 'EXP (capitals) 2 min ago beside exp 5 min ahead', expect: ACCEPT,
    make: () => sign(claims({ EXP: now() - 120 }), keyA) },
  { name: 'SUB (capitals) beside sub', expect: ACCEPT,
    make: () => sign(claims({ SUB: 'someone-else' }), keyA) },
  { name: 'SCOPE (capitals) beside scope', expect: ACCEPT,
    make: () => sign(claims({ SCOPE: 'uploads:read uploads:delete' }), keyA) },
  { name: 'ISS (capitals) beside a wrong iss', expect: REFUSE,
    make: () => sign(claims({ iss: 'http://127.0.0.1:1', ISS: world.issuer.url }), keyA) },
  { name: 'AUD (capitals) beside a wrong aud', expect: REFUSE,
    make: () => sign(claims({ aud: 'https://other.example.test', AUD: audience }), keyA) },
  { name: 'no sub', expect: REFUSE, make: () => sign(claims({ sub: undefined }), keyA) },
  { name: 'sub empty', expect: REFUSE, make: () => sign(claims({ sub: '' }), keyA),
    knownDifference: { jose: ACCEPT, why: 'an empty sub names no one (jose: requiredClaims checks presence only)' } },
  { name: 'alg none (UnsecuredJWT)', expect: REFUSE, make: async () => new UnsecuredJWT(claims()).encode() },
  { name: "HS256 keyed with key A's public PEM, kid A", expect: REFUSE,
    make: async () => {
      const pem = createPublicKey({ key: publicJWK(keyA), format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      return new SignJWT(claims())
        .setProtectedHeader({ alg: 'HS256', kid: keyA.kid, typ: 'at+jwt' })
        .sign(new TextEncoder().encode(pem));
    } },
  { name: "unpublished RS256 key with key A's kid", expect: REFUSE,
    make: () => sign(claims(), { ...newKey('RS256'), kid: keyA.kid }) },
  { name: 'unpublished RS256 key with a fresh kid', expect: REFUSE, make: () => sign(claims(), newKey('RS256')) },
  { name: "key B's kid, signed with key A (RS256)", expect: REFUSE, make: () => sign(claims(), { ...keyA, kid: keyB.kid }) },
  // kid is optional (RFC 7515): both try the published keys of the token's alg.
  { name: 'no kid (key A)', expect: ACCEPT, make: () => sign(claims(), keyA, { kid: undefined }) },
  { name: 'valid RS256, payload changed after signing', expect: REFUSE,
    make: async () => withPayload(await sign(claims(), keyA), { scope: 'uploads:read uploads:delete' }) },
  { name: 'crit names an unknown extension', expect: REFUSE,
    make: () => sign(claims(), keyA, { crit: ['urn:example:unknown'], 'urn:example:unknown': true }, { crit: { 'urn:example:unknown': true } }) },
];

describe('the service and jose agree on every token', () => {
  before(async () => {
    world.issuer = await startIssuer({ port: await freePort(), audience, keys: [keyA, keyB] });
    world.service = await startService({ bin, port: await freePort(), issuer: world.issuer.url, audience });
    const discovery = await (await fetch(`${world.issuer.url}/.well-known/openid-configuration`)).json();
    world.jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
  });
  after(async () => {
    try {
      await world.service?.stop();
    } finally {
      await world.issuer?.stop();
    }
  });

  test('every row: the expected verdict, from both', { timeout }, async () => {
    const seen = [];
    for (const row of rows) {
      const token = await row.make();
      const jose = await joseVerdict(token);
      const service = await serviceVerdict(token);
      seen.push({ row, jose, service });
    }

    const note = ({ row, jose, service }) => {
      if (row.knownDifference) return `known difference: ${row.knownDifference.why}`;
      return jose.verdict === service ? '' : 'DISAGREE';
    };
    console.log('JOSE differential check: the service and jose jwtVerify on each token');
    console.table(seen.map((s) => ({
      token: s.row.name,
      expected: s.row.expect,
      jose: s.jose.verdict,
      service: s.service,
      'jose says': s.jose.why,
      note: note(s),
    })));

    // One comparison for the whole table, so a failure shows every row that
    // is off.
    const verdicts = (row, jose, service) => `${row.name}: jose ${jose}, service ${service}`;
    assert.deepEqual(
      seen.map(({ row, jose, service }) => verdicts(row, jose.verdict, service)),
      rows.map((row) => verdicts(row, row.knownDifference?.jose ?? row.expect, row.expect)),
    );
  });

  // Accepted is not enough: the subject and the scopes must be the ones
  // jose (and every other verifier) reads, not a capitalised look-alike.
  test('the service reads sub and scope by their exact names', { timeout }, async () => {
    const viewer = async (token) => {
      const body = await graphql(token, '{ viewer { id } }');
      assert.equal(body.errors, undefined, JSON.stringify(body));
      return body.data.viewer.id;
    };
    const subject = `jose-${randomUUID()}`;
    const mine = await viewer(await sign(claims({ sub: subject }), keyA));
    const other = await viewer(await sign(claims({ sub: `jose-${randomUUID()}` }), keyA));
    assert.notEqual(mine, other);
    assert.equal(await viewer(await sign(claims({ sub: subject, SUB: 'someone-else' }), keyA)), mine);

    const reader = await sign(claims({ sub: subject, scope: 'uploads:read', SCOPE: 'uploads:read uploads:write uploads:delete' }), keyA);
    assert.equal((await jwtVerify(reader, world.jwks)).payload.scope, 'uploads:read');
    const refused = await graphql(reader, 'mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }', { id: 'upl_00000000000000000000000000000000' });
    assert.equal(refused.errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(refused));
  });
});
