// An example frontend for the uploads service. It signs a person in at the
// app's OpenID Connect issuer (authorization code flow with PKCE, as a public
// client: a page cannot keep a secret), then calls the service's GraphQL API
// with the access token: it lists the person's uploads and deletes one, or
// all of them with a deletion job whose progress it shows as it goes.
// oauth4webapi does the OAuth work (discovery, PKCE, state, the code
// exchange, ID token checks) and graphql-sse the subscription's protocol;
// this file only wires them to the page.
import * as oauth from './vendor/oauth4webapi.js';
import fileConfig from './config.js';

// graphql-sse's browser build, loaded by index.html before this module, is a
// classic script: it leaves its exports in this global.
const { createClient } = globalThis.graphqlSse;

const config = readConfig();
const client = { client_id: config.clientId };
// The issuer sends the person back here, to this page without its query: it
// must be one of the client's registered redirect URIs, exactly.
const redirectURI = location.origin + location.pathname;
// oauth4webapi refuses plain http; allow it only for an issuer on this
// machine (development), never for a real one.
const httpOK = isLoopbackHTTP(config.issuer) ? { [oauth.allowInsecureRequests]: true } : {};

const $ = (id) => document.getElementById(id);

// The access token lives in sessionStorage: it survives a reload of this tab
// and is gone when the tab closes. It is never put in localStorage or a cookie.
function accessToken() {
  const saved = JSON.parse(sessionStorage.getItem('token') ?? 'null');
  return saved && saved.expiresAt > Date.now() ? saved.accessToken : null;
}

async function authorizationServer() {
  const issuer = new URL(config.issuer);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, httpOK));
}

async function signIn() {
  const as = await authorizationServer();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  sessionStorage.setItem('pending', JSON.stringify({ codeVerifier, state }));
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: config.clientId,
    redirect_uri: redirectURI,
    response_type: 'code',
    scope: config.scope,
    // RFC 8707: ask for an access token for the service (a JWT whose aud is
    // the service's AUTH_AUDIENCE), not one only the issuer understands.
    resource: config.audience,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
  });
  location.assign(url);
}

// finishSignIn handles the issuer's redirect back: it checks the state,
// exchanges the code (with the PKCE verifier) for tokens and keeps the
// access token.
async function finishSignIn() {
  const pending = JSON.parse(sessionStorage.getItem('pending') ?? 'null');
  sessionStorage.removeItem('pending');
  const callback = new URL(location.href);
  history.replaceState(null, '', redirectURI); // the code is single-use: drop it from the address bar
  if (!pending) throw new Error('Sign-in response without a sign-in in progress in this tab');
  const as = await authorizationServer();
  const params = oauth.validateAuthResponse(as, client, callback, pending.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectURI,
    pending.codeVerifier, { ...httpOK, additionalParameters: { resource: config.audience } });
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
  sessionStorage.setItem('token', JSON.stringify({
    accessToken: tokens.access_token,
    expiresAt: Date.now() + (tokens.expires_in ?? 300) * 1000,
  }));
}

function signOut() {
  sessionStorage.removeItem('token');
  render();
}

async function graphql(query, variables = {}) {
  const response = await fetch(`${config.serviceURL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken()}` },
    body: JSON.stringify({ query, variables }),
  }).catch((err) => {
    // The browser tells a page no more than this, on purpose.
    throw new Error(`Could not reach ${config.serviceURL} (${err.message}): is this page's origin in its CORS_ALLOWED_ORIGINS?`);
  });
  const body = await response.json();
  if (body.errors) {
    const [error] = body.errors;
    // An expired or refused token: the person has to sign in again.
    if (error.extensions?.code === 'UNAUTHENTICATED') sessionStorage.removeItem('token');
    throw new Error(`${error.message} (${error.extensions?.code ?? 'no code'})`);
  }
  return body.data;
}

async function showUploads() {
  const { viewer } = await graphql(`query {
    viewer { id email uploads(first: 50) { edges { node { id filename } } } }
  }`);
  $('who').textContent = `Signed in as ${viewer.email ?? viewer.id}`;
  $('uploads').replaceChildren(...viewer.uploads.edges.map(({ node }) => {
    const item = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = `${node.filename} (${node.id})`;
    const remove = document.createElement('button');
    remove.textContent = 'Delete';
    remove.onclick = () => run(() => deleteUpload(node.id));
    item.append(name, remove);
    return item;
  }));
}

// deleteAll starts a deletion job over all of the person's uploads (any
// number: the service deletes them in the background, a batch at a time) and
// follows it to its end.
async function deleteAll() {
  if (!confirm('Delete all your uploads? This cannot be undone from this page.')) return;
  $('delete-all').disabled = true;
  try {
    const { startDeletionJob: job } = await graphql(`mutation {
      startDeletionJob(where: {}) { id status matchedCount deletedCount failedCount error }
    }`);
    showJob(job);
    await followJob(job.id);
  } finally {
    $('delete-all').disabled = false;
  }
  await showUploads();
}

// followJob shows each state the service pushes for the job: now, after each
// batch, then its final one; it resolves when the service completes the
// stream, and rejects with the error that ended it otherwise.
function followJob(id) {
  const subscriptions = createClient({
    url: `${config.serviceURL}/graphql`,
    // Asked again on every (re)connection, so a fresh token is used.
    headers: () => ({ authorization: `Bearer ${accessToken()}` }),
  });
  return new Promise((resolve, reject) => {
    subscriptions.subscribe({
      query: `subscription($id: ID!) {
        deletionJob(id: $id) { id status matchedCount deletedCount failedCount error }
      }`,
      variables: { id },
    }, {
      next({ data, errors }) {
        // A stream the service ends (NOT_FOUND, UNAUTHENTICATED,
        // SLOW_SUBSCRIBER, SHUTTING_DOWN) says why in a last message.
        if (errors) {
          const [error] = errors;
          reject(new Error(`${error.message} (${error.extensions?.code ?? 'no code'})`));
          return;
        }
        showJob(data.deletionJob);
      },
      error: (err) => reject(err instanceof Error ? err : new Error(`The job's updates stopped: ${err}`)),
      complete: resolve,
    });
  }).finally(() => subscriptions.dispose());
}

// showJob puts a job's state on the progress bar and in words.
function showJob(job) {
  const bar = $('job-progress');
  const counts = `${job.deletedCount} of ${job.matchedCount} deleted`;
  const finished = !['QUEUED', 'RUNNING'].includes(job.status);
  // A <progress> needs a max above 0: a job that matched nothing is full when it ends.
  bar.max = Math.max(job.matchedCount, 1);
  bar.value = job.matchedCount > 0 ? job.deletedCount : Number(finished);
  $('job-text').textContent = {
    QUEUED: `Starting: ${counts}`,
    RUNNING: counts,
    SUCCEEDED: `Done: ${counts}`,
    CANCELED: `Canceled: ${counts}`,
    FAILED: `Failed: ${job.error} (${counts}, ${job.failedCount} left)`,
  }[job.status] ?? `${job.status}: ${counts}`;
  $('job').hidden = false;
}

async function deleteUpload(id) {
  const data = await graphql(`mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, { id });
  $('result').textContent = `Deleted ${data.deleteUpload.deletedUploadId}`;
  await showUploads();
}

// render shows the page for who is (or is not) signed in.
async function render() {
  const signedIn = accessToken() !== null;
  $('sign-in').hidden = signedIn;
  $('sign-out').hidden = !signedIn;
  $('delete-all').hidden = !signedIn;
  if (signedIn) return showUploads();
  $('who').textContent = '';
  $('uploads').replaceChildren();
  $('job').hidden = true;
}

// run shows any failure on the page: an error from the service (its message
// and extensions.code), from the issuer, or a fetch the browser refused.
async function run(action) {
  try {
    await action();
  } catch (err) {
    // An error the issuer sent back (e.g. access_denied) carries its own words.
    $('result').textContent = err.error_description ? `${err.message}: ${err.error_description}` : err.message;
    await render().catch(() => {});
  }
}

function readConfig() {
  // Query parameters override config.js and are kept for this tab, since the
  // issuer's redirect back does not carry them.
  const query = new URLSearchParams(location.search);
  const overrides = JSON.parse(sessionStorage.getItem('config') ?? '{}');
  for (const key of Object.keys(fileConfig)) {
    if (query.has(key)) overrides[key] = query.get(key);
  }
  sessionStorage.setItem('config', JSON.stringify(overrides));
  return { ...fileConfig, ...overrides };
}

function isLoopbackHTTP(url) {
  const { protocol, hostname } = new URL(url);
  return protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(hostname);
}

$('sign-in').onclick = () => run(signIn);
$('sign-out').onclick = signOut;
$('delete-all').onclick = () => run(deleteAll);
const params = new URLSearchParams(location.search);
run(async () => {
  if (params.has('code') || params.has('error')) await finishSignIn();
  await render();
});
