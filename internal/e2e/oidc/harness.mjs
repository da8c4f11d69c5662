// A real OpenID Connect issuer (oidc-provider) and the service, started for a
// test on loopback ports. Imported by issuer.test.mjs and by the browser tests.
//
//   const key = newKey();
//   const issuer = await startIssuer({ port: await freePort(), audience, keys: [key] });
//   const service = await startService({ bin, port: await freePort(), issuer: issuer.url, audience });
//   const token = await issuer.tokenFor({ scope: 'uploads:read uploads:delete' });
//
// The issuer runs in a child process so that stop() really closes its port and
// a new issuer (other keys: a rotation) can be started on the same port.
import { fork, spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const issuerScript = new URL('./issuer-server.mjs', import.meta.url);

const keyTypes = {
  RS256: ['rsa', { modulusLength: 2048 }],
  PS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  ES384: ['ec', { namedCurve: 'P-384' }],
  EdDSA: ['ed25519', {}],
};

// newKey returns a fresh private signing JWK with its own kid.
export function newKey(alg = 'RS256') {
  const type = keyTypes[alg];
  if (!type) throw new Error(`newKey: no key type for ${alg} (have ${Object.keys(keyTypes).join(', ')})`);
  const { privateKey } = generateKeyPairSync(...type);
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg, use: 'sig' };
}

// freePort returns a loopback TCP port nothing listens on right now.
export async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', resolve));
}

async function stopChild(child) {
  const done = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(timer);
}

// startIssuer runs oidc-provider at http://127.0.0.1:port with:
//   - ci-client / ci-secret: client_credentials, client_secret_basic;
//   - example-frontend (when redirectUris is not empty): public client,
//     authorization code with PKCE S256, CORS for corsOrigins, dev
//     interactions (any login and password) to sign in;
// and access tokens that are JWTs for audience (RFC 9068: iss, sub, aud, exp,
// scope), signed with keys[0]; every key in keys is published in the JWKS.
// latencyMs delays every answer, as an issuer across a network would.
export async function startIssuer({ port, audience, keys, redirectUris = [], corsOrigins = [], latencyMs = 0 }) {
  if (!port || !audience || !keys?.length) throw new Error('startIssuer: port, audience and keys are required');
  const url = `http://127.0.0.1:${port}`;
  const child = fork(issuerScript, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });

  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`issuer did not start in 15s:\n${output}`)), 15000);
    child.once('message', (msg) => {
      clearTimeout(timer);
      if (msg.ready) resolve();
      else reject(new Error(`issuer failed to start: ${msg.error}\n${output}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`issuer exited (${code}) before it was ready:\n${output}`));
    });
    child.send({ port, audience, keys, redirectUris, corsOrigins, latencyMs });
  }).catch(async (err) => {
    await stopChild(child);
    throw err;
  });

  return {
    url,
    stop: () => stopChild(child),
    // tokenFor gets an access token for ci-client with the client credentials grant.
    async tokenFor({ scope }) {
      const res = await fetch(`${url}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from('ci-client:ci-secret').toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource: audience }),
      });
      const body = await res.json();
      if (!res.ok || typeof body.access_token !== 'string') {
        throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
      }
      return body.access_token;
    },
  };
}

// startService runs the server binary at http://127.0.0.1:port on a fresh
// DATA_DIR (embedded SQLite and S3), trusting issuer's tokens for audience and
// creating the user of an unknown subject. stop() ends it and removes DATA_DIR;
// output() is what it logged (stderr).
export async function startService({ bin, port, issuer, audience, env = {} }) {
  if (!bin) throw new Error('startService: bin (the built server binary) is required');
  const dataDir = mkdtempSync(join(tmpdir(), 'uploads-oidc-e2e-'));
  const url = `http://127.0.0.1:${port}`;
  // stdout is left out: on first start it shows the demo user's API key.
  const child = spawn(bin, [], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      ADDR: `127.0.0.1:${port}`,
      AUTH_ISSUER: issuer,
      AUTH_AUDIENCE: audience,
      AUTH_CREATE_USERS: 'true',
      LOG_LEVEL: 'warn',
      ...env,
    },
  });
  let output = '';
  child.stderr.on('data', (d) => { output += d; });
  const stop = async () => {
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`service exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${output}`);
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`service not healthy at ${url}/healthz in 30s:\n${output}`);
    }
    await sleep(100);
  }
  return { url, stop, dataDir, output: () => output };
}
