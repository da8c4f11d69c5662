// uploadFileTo stores a small file for the holder of apiKey through the
// GraphQL multipart request spec, and returns its upload id.
export async function uploadFileTo(serviceURL, apiKey, name, content) {
  const form = new FormData();
  form.append('operations', JSON.stringify({
    query: 'mutation($f: File!) { uploadFile(file: $f) { id status } }',
    variables: { f: null },
  }));
  form.append('map', JSON.stringify({ 0: ['variables.f'] }));
  form.append('0', new Blob([content], { type: 'text/plain' }), name);
  const res = await fetch(`${serviceURL}/graphql`, { method: 'POST', headers: { 'x-api-key': apiKey }, body: form });
  const body = await res.json();
  if (body.errors || body.data.uploadFile.status !== 'COMPLETED') throw new Error(`upload failed: ${JSON.stringify(body)}`);
  return body.data.uploadFile.id;
}
