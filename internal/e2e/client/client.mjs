// A frontend's GraphQL client against a running service: Apollo Client 4 with
// apollo-upload-client's UploadHttpLink (GraphQL multipart request spec), as a
// web app would use them, on Node's own fetch, FormData and File.
//
//   GRAPHQL_URL=http://127.0.0.1:8080/graphql API_KEY=ukey_… node client.mjs
//
// It uploads a file with uploadFile, finds it in viewer { uploads }, deletes it
// with deleteUpload, sees it gone, and gets NOT_FOUND when deleting it again.
// Prints each step and ends with "N passed, M failed"; exits 1 on any failure.
import { ApolloClient, InMemoryCache, gql, CombinedGraphQLErrors } from '@apollo/client';
import UploadHttpLink from 'apollo-upload-client/UploadHttpLink.mjs';

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`client.mjs: set ${name} (GRAPHQL_URL=http://HOST:PORT/graphql API_KEY=ukey_…)`);
    process.exit(2);
  }
  return v;
}
const graphqlURL = required('GRAPHQL_URL');
const apiKey = required('API_KEY');

// The requests the link sends, to show that the upload went as multipart/form-data.
const sent = [];
const recordingFetch = (url, init) => {
  const headers = new Headers(init?.headers);
  sent.push({ body: init?.body, contentType: headers.get('content-type') });
  return fetch(url, init);
};

const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: new UploadHttpLink({ uri: graphqlURL, headers: { 'x-api-key': apiKey }, fetch: recordingFetch }),
});

const UPLOAD_FILE = gql`
  mutation UploadFile($file: File!) {
    uploadFile(file: $file) { id filename contentType size status }
  }
`;
const MY_UPLOADS = gql`
  query MyUploads {
    viewer {
      id
      email
      uploads(first: 50, orderBy: { field: CREATED_AT, direction: DESC }) {
        totalCount
        edges { node { id filename status } }
      }
    }
  }
`;
const UPLOAD = gql`
  query Upload($id: ID!) {
    upload(id: $id) { id status }
  }
`;
const DELETE_UPLOAD = gql`
  mutation DeleteUpload($id: ID!) {
    deleteUpload(id: $id) { deletedUploadId message }
  }
`;

let passed = 0;
let failed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`  ok: ${what}`);
  } else {
    failed++;
    console.log(`  FAIL: ${what}${detail === undefined ? '' : `: ${detail}`}`);
  }
  return ok;
}
// step runs one numbered step; an exception fails it (and is printed).
let stepNo = 0;
async function step(title, fn) {
  console.log(`\n${++stepNo}. ${title}`);
  try {
    await fn();
  } catch (e) {
    check(false, e instanceof NotRun ? 'not run' : 'no exception', describe(e));
  }
}
class NotRun extends Error {}
function describe(e) {
  if (e instanceof NotRun) return e.message;
  if (CombinedGraphQLErrors.is(e)) return `GraphQL errors ${JSON.stringify(e.errors)}`;
  return String(e?.stack ?? e);
}
const show = (label, value) => console.log(`  ${label}: ${JSON.stringify(value)}`);

const filename = `hello-${Date.now()}.txt`;
const contents = 'hello from a GraphQL client\n';
let id;
let countBefore;

console.log(`GraphQL endpoint: ${graphqlURL}`);
console.log(`client: @apollo/client + apollo-upload-client (UploadHttpLink) on Node ${process.version}`);

await step(`uploadFile with an in-memory File (${filename})`, async () => {
  const file = new File([contents], filename, { type: 'text/plain' });
  const { data } = await client.mutate({ mutation: UPLOAD_FILE, variables: { file } });
  show('uploadFile', data.uploadFile);
  const req = sent.at(-1);
  const multipart = req?.body instanceof FormData;
  check(multipart && req.contentType === null && ['operations', 'map', '1'].every((f) => req.body.has(f)),
    'sent as a GraphQL multipart request (FormData with operations, map and the file; fetch sets multipart/form-data)',
    multipart ? `fields ${[...req.body.keys()].join(', ')}; content-type ${req.contentType}` : `body ${typeof req?.body}`);
  id = data.uploadFile.id;
  check(/^upl_[0-9a-f]{32}$/.test(id ?? ''), `the upload has an id (${id})`);
  check(data.uploadFile.status === 'COMPLETED', 'its status is COMPLETED', data.uploadFile.status);
  check(data.uploadFile.filename === filename && data.uploadFile.size === Buffer.byteLength(contents),
    'its filename and size are the file\'s', `${data.uploadFile.filename}, ${data.uploadFile.size} bytes`);
});

await step('viewer { uploads(first: 50) } lists it', async () => {
  if (!id) throw new NotRun('nothing was uploaded');
  const { data } = await client.query({ query: MY_UPLOADS, fetchPolicy: 'network-only' });
  const conn = data.viewer.uploads;
  countBefore = conn.totalCount;
  show('viewer', { email: data.viewer.email, totalCount: conn.totalCount, edges: conn.edges.length });
  const node = conn.edges.map((e) => e.node).find((n) => n.id === id);
  show('found', node ?? null);
  check(node?.filename === filename && node?.status === 'COMPLETED', `${id} is listed, COMPLETED`);
});

await step('deleteUpload(id) deletes it', async () => {
  if (!id) throw new NotRun('nothing was uploaded');
  const { data } = await client.mutate({ mutation: DELETE_UPLOAD, variables: { id } });
  show('deleteUpload', data.deleteUpload);
  check(data.deleteUpload.message === `Upload ${id} deleted successfully`,
    `message is "Upload ${id} deleted successfully"`, data.deleteUpload.message);
  check(data.deleteUpload.deletedUploadId === id, 'deletedUploadId is the id', data.deleteUpload.deletedUploadId);
});

await step('viewer { uploads } again (network-only): it is gone', async () => {
  if (!id) throw new NotRun('nothing was uploaded');
  const { data } = await client.query({ query: MY_UPLOADS, fetchPolicy: 'network-only' });
  const conn = data.viewer.uploads;
  show('viewer', { email: data.viewer.email, totalCount: conn.totalCount, edges: conn.edges.length });
  check(!conn.edges.some((e) => e.node.id === id), `${id} is no longer listed`);
  check(conn.totalCount === countBefore - 1, `totalCount went from ${countBefore} to ${countBefore - 1}`,
    conn.totalCount);
  const one = await client.query({ query: UPLOAD, variables: { id }, fetchPolicy: 'network-only' });
  show('upload(id)', one.data.upload);
  check(one.data.upload === null, 'upload(id) is null');
});

await step('deleteUpload(id) again fails with NOT_FOUND', async () => {
  if (!id) throw new NotRun('nothing was uploaded');
  let error;
  try {
    const { data } = await client.mutate({ mutation: DELETE_UPLOAD, variables: { id } });
    show('deleteUpload', data);
  } catch (e) {
    error = e;
  }
  if (!check(CombinedGraphQLErrors.is(error), 'the mutation is rejected with GraphQL errors', describe(error))) return;
  show('errors', error.errors);
  const [first] = error.errors;
  check(first?.extensions?.code === 'NOT_FOUND', 'extensions.code is NOT_FOUND', first?.extensions?.code);
  check(first?.message === 'Upload not found', 'message is "Upload not found"', first?.message);
});

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
