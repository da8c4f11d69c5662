// Conformance of /graphql's subscriptions with the protocols' own clients,
// against a running service:
//
//   GRAPHQL_URL=http://127.0.0.1:8080/graphql API_KEY=ukey_… \
//     [ALLOWED_ORIGIN=http://127.0.0.1:9000] node --test
//
// graphql-sse's client (distinct connections mode: one POST with
// Accept: text/event-stream per subscription) and graphql-ws's client
// (graphql-transport-ws over WebSocket, with the ws package) each subscribe
// to uploadEvents, see the upload this test makes next, resume after an
// event id, and get UNAUTHENTICATED without a credential. The key is sent
// as a header over SSE and in connection_init's payload over WebSocket, as
// a browser must.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient as createSSEClient } from 'graphql-sse';
import { createClient as createWSClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.env.GRAPHQL_URL;
const apiKey = process.env.API_KEY;
if (!url || !apiKey) {
  console.error('set GRAPHQL_URL and API_KEY');
  process.exit(2);
}
const wsURL = url.replace(/^http/, 'ws');

const eventsQuery = 'subscription($after: ID) { uploadEvents(after: $after) { id kind uploadId } }';

async function graphql(query, variables) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

// lastEventID is the id of the caller's newest audit event ("0" for none):
// a subscription after it sees exactly what happens next.
async function lastEventID() {
  const data = await graphql('{ viewer { auditEvents(first: 1) { edges { node { id } } } } }');
  return data.viewer.auditEvents.edges[0]?.node.id ?? '0';
}

async function upload(name) {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: 'mutation($f: File!) { uploadFile(file: $f) { id } }', variables: { f: null } }));
  form.set('map', JSON.stringify({ 0: ['variables.f'] }));
  form.set('0', new Blob([name]), name);
  const res = await fetch(url, { method: 'POST', headers: { 'x-api-key': apiKey }, body: form });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data.uploadFile.id;
}

// results collects what a client's sink hears, for next() to take in order.
function results() {
  const queue = [];
  let waiting = null;
  const push = (item) => {
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(item);
    } else queue.push(item);
  };
  return {
    sink: {
      next: (value) => push({ value }),
      error: (error) => push({ error }),
      complete: () => push({ complete: true }),
    },
    next: () =>
      queue.length > 0
        ? Promise.resolve(queue.shift())
        : new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('nothing within 10 s')), 10_000);
            waiting = (item) => {
              clearTimeout(timer);
              resolve(item);
            };
          }),
  };
}

async function nextEvent(r) {
  const item = await r.next();
  assert.ok(item.value?.data, `want an event, got ${JSON.stringify(item)}`);
  return item.value.data.uploadEvents;
}

// The error code a stream ended with: over SSE a last `next` with errors,
// over WebSocket an `error` message or a `next` with errors.
async function endCode(r) {
  const item = await r.next();
  const errors = item.value?.errors ?? (Array.isArray(item.error) ? item.error : null);
  assert.ok(errors, `want errors, got ${JSON.stringify(item)}`);
  return errors[0].extensions?.code;
}

const clients = {
  'graphql-sse': (credentials = true) =>
    createSSEClient({ url, headers: credentials ? { 'x-api-key': apiKey } : {}, retryAttempts: 0 }),
  'graphql-ws': (credentials = true) =>
    createWSClient({
      url: wsURL,
      webSocketImpl: WebSocket,
      connectionParams: credentials ? { 'x-api-key': apiKey } : {},
      retryAttempts: 0,
      lazy: true,
    }),
};

for (const [name, newClient] of Object.entries(clients)) {
  test(`${name}: an upload made after subscribing arrives as CREATED`, async () => {
    const client = newClient();
    const r = results();
    const dispose = client.subscribe({ query: eventsQuery, variables: { after: await lastEventID() } }, r.sink);
    try {
      const uploadID = await upload(`${name}-live.txt`);
      const event = await nextEvent(r);
      assert.equal(event.kind, 'CREATED');
      assert.equal(event.uploadId, uploadID);
    } finally {
      dispose();
      await client.dispose();
    }
  });

  test(`${name}: resuming after an event id gets what was missed, in order`, async () => {
    const after = await lastEventID();
    const first = await upload(`${name}-missed-1.txt`);
    const second = await upload(`${name}-missed-2.txt`);
    const client = newClient();
    const r = results();
    const dispose = client.subscribe({ query: eventsQuery, variables: { after } }, r.sink);
    try {
      const a = await nextEvent(r);
      const b = await nextEvent(r);
      assert.deepEqual([a.uploadId, b.uploadId], [first, second]);
      assert.ok(Number(a.id) < Number(b.id), `ids in order: ${a.id}, ${b.id}`);
    } finally {
      dispose();
      await client.dispose();
    }
  });

  test(`${name}: without a credential, UNAUTHENTICATED`, async () => {
    const client = newClient(false);
    const r = results();
    const dispose = client.subscribe({ query: eventsQuery }, r.sink);
    try {
      assert.equal(await endCode(r), 'UNAUTHENTICATED');
    } finally {
      dispose();
      await client.dispose();
    }
  });
}

test('WebSocket: a page of an origin CORS_ALLOWED_ORIGINS does not allow is refused', async () => {
  const status = await new Promise((resolve) => {
    const ws = new WebSocket(wsURL, 'graphql-transport-ws', { origin: 'http://not-allowed.example' });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('error', () => {});
  });
  assert.equal(status, 403);
});

test('WebSocket: a page of an allowed origin is accepted', { skip: !process.env.ALLOWED_ORIGIN }, async () => {
  const opened = await new Promise((resolve) => {
    const ws = new WebSocket(wsURL, 'graphql-transport-ws', { origin: process.env.ALLOWED_ORIGIN });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('open', () => {
      ws.close();
      resolve(true);
    });
    ws.on('error', () => {});
  });
  assert.equal(opened, true);
});
