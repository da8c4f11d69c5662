// Shared set-up for the browser tests: the running service's address and a
// user's key come from the environment (.ci/run starts the service).
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
export { launch, saveArtifact } from './chromium.mjs';
import { uploadFileTo } from './upload.mjs';

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`set ${name} (see .ci/run)`);
  return v;
}

export const serviceURL = required('SERVICE_URL');
export const apiKey = required('API_KEY');
export const dataDir = required('DATA_DIR'); // the service's DATA_DIR: its embedded bucket is in s3/
export const allowedPagePort = Number(required('ALLOWED_PAGE_PORT'));
export const specFile = required('SPEC_FILE');

export async function graphql(query, variables = {}, key = apiKey) {
  const res = await fetch(`${serviceURL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': key },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

// uploadFile stores a small file through the GraphQL multipart request spec.
export function uploadFile(name, content) {
  return uploadFileTo(serviceURL, apiKey, name, content);
}

export async function objectStored(uploadID) {
  const { data } = await graphql('{ viewer { id } }');
  return existsSync(join(dataDir, 's3', 'buckets', 'uploads', 'uploads', data.viewer.id, uploadID));
}

export async function uploadExists(uploadID) {
  const { data } = await graphql('query($id: ID!) { upload(id: $id) { id } }', { id: uploadID });
  return data.upload !== null;
}

// specFetchExample is the contract's JavaScript example, verbatim but for the
// URL's host, the key and the upload id.
export function specFetchExample(key, uploadID) {
  const text = readFileSync(specFile, 'utf8');
  const start = text.indexOf('async function deleteUpload');
  const end = text.indexOf('Error Handling');
  if (start < 0 || end < start) throw new Error('no JavaScript example in the contract');
  return text.slice(start, end)
    .replaceAll('https://api.apidatatools.com', serviceURL)
    .replaceAll('your_api_key', key)
    .replaceAll('upl_4c0a85f67aa74ecb95a9494a96e4a327', uploadID);
}
