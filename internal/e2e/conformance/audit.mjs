// The GraphQL over HTTP specification's own server audit (graphql-http's
// serverAudits) against a running service:
//
//   GRAPHQL_URL=http://127.0.0.1:8080/graphql [API_KEY=ukey_…] node audit.mjs
//
// The audits query only __typename and __type, which need no viewer; with
// API_KEY set every request carries it as x-api-key, as a real caller's would.
// Prints each audit's id, status and name (and the reason when not ok), then
// "N passed, M failed"; exits 1 unless every audit is ok: a warn (a SHOULD),
// a notice (a MAY) or an error (a MUST) all fail it.
import { serverAudits } from 'graphql-http';

const url = process.env.GRAPHQL_URL;
if (!url) {
  console.error('audit.mjs: set GRAPHQL_URL, e.g. http://127.0.0.1:8080/graphql');
  process.exit(2);
}
const apiKey = process.env.API_KEY;

const fetchFn = (input, init = {}) => {
  if (!apiKey) return fetch(input, init);
  const headers = new Headers(init.headers);
  headers.set('x-api-key', apiKey);
  return fetch(input, { ...init, headers });
};

let passed = 0;
let failed = 0;
for (const audit of serverAudits({ url, fetchFn })) {
  let result;
  try {
    result = await audit.fn();
  } catch (err) {
    result = { status: 'error', reason: `the audit threw: ${err?.message ?? err}` };
  }
  console.log(`${audit.id} ${result.status.padEnd(6)} ${audit.name}`);
  if (result.status === 'ok') {
    passed++;
    continue;
  }
  failed++;
  console.log(`       ${result.reason}`);
  if (result.response) {
    const body = await result.response.text().catch(() => '');
    console.log(`       got ${result.response.status} ${result.response.headers.get('content-type')}: ${body.slice(0, 300)}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
