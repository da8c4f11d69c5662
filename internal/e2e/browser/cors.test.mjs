// The contract's fetch example, run in pages served from other origins: an
// allowed origin deletes and can read error bodies; another is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { apiKey, launch, specFetchExample, uploadFile, uploadExists, objectStored, allowedPagePort, serviceURL } from './helpers.mjs';

// servePages serves, at each path, a page whose script runs that code;
// console.log output and failed fetches are written into <pre id="out">.
function servePages(port, pages) {
  const html = (code) => `<!doctype html><html><body><pre id="out"></pre><script>
const out = document.getElementById('out');
const log = console.log;
console.log = (...args) => { out.textContent += args.map((a) => JSON.stringify(a)).join(' ') + '\\n'; log(...args); };
window.addEventListener('unhandledrejection', (e) => { out.textContent += 'REFUSED: ' + e.reason + '\\n'; });
</script><script>${code}</script></body></html>`;
  const server = createServer((req, res) => {
    const code = pages[req.url];
    if (code === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html(code));
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

async function waitLines(page, n) {
  // Lines that are there: ''.split('\n') is one empty line, which must not
  // count (it made a page that had printed nothing yet look done).
  await page.waitForFunction((n) => document.getElementById('out').textContent.split('\n').filter((l) => l.trim() !== '').length >= n,
    n, { timeout: 20000 });
  return page.locator('#out').innerText();
}

test('allowed origin: the fetch example deletes, and 404 and 401 bodies are readable', async () => {
  const id = await uploadFile('cors.txt', 'cors');
  const other = await uploadFile('cors-other.txt', 'other');
  const server = await servePages(allowedPagePort, {
    '/': specFetchExample(apiKey, id), // the example as published: it deletes id once
    '/wrong-key': specFetchExample('ukey_0000', other),
  });
  const { browser, context } = await launch();
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${allowedPagePort}/`);
    let out = await waitLines(page, 1);
    assert.equal(out.trim(), `{"message":"Upload ${id} deleted successfully"}`);
    await page.evaluate((id) => deleteUpload(id), id); // the repeat, from the same page
    out = await waitLines(page, 2);
    assert.equal(out.trim().split('\n')[1], '{"error":"Upload not found"}');
    assert.equal(await uploadExists(id), false);
    assert.equal(await objectStored(id), false);

    const wrongKey = await context.newPage();
    await wrongKey.goto(`http://127.0.0.1:${allowedPagePort}/wrong-key`);
    assert.equal((await waitLines(wrongKey, 1)).trim(), '{"error":"Unauthorized"}');
    assert.equal(await uploadExists(other), true);
  } finally {
    await browser.close();
    server.close();
  }
});

test('disallowed origin: refused, nothing deleted', async () => {
  const id = await uploadFile('other.txt', 'other');
  const server = await servePages(0, { '/': specFetchExample(apiKey, id) });
  const { browser, context } = await launch();
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const out = await waitLines(page, 1);
    assert.match(out, /REFUSED: TypeError: Failed to fetch/);
    assert.doesNotMatch(out, /deleted successfully/);
    assert.equal(await uploadExists(id), true, 'a page on a disallowed origin deleted the record');
    assert.equal(await objectStored(id), true, 'a page on a disallowed origin deleted the object');
  } finally {
    await browser.close();
    server.close();
  }
});

test('allowed origin: a retry with its Idempotency-Key gets the first answer, and the page can tell it was replayed', async () => {
  const id = await uploadFile('retry.txt', 'retry');
  const server = await servePages(allowedPagePort, {
    '/': `(async () => {
  for (let attempt = 1; attempt <= 2; attempt++) {
    const res = await fetch(${JSON.stringify(serviceURL)} + '/delete-upload-api', {
      method: 'DELETE',
      headers: { 'x-api-key': ${JSON.stringify(apiKey)}, 'x-upload-id': ${JSON.stringify(id)}, 'Idempotency-Key': 'browser-retry-1' },
    });
    console.log(res.status, res.headers.get('Idempotent-Replayed'), await res.text());
  }
})();`,
  });
  const { browser, context } = await launch();
  try {
    const page = await context.newPage();
    await page.goto(`http://127.0.0.1:${allowedPagePort}/`);
    const lines = (await waitLines(page, 2)).trim().split('\n');
    const body = JSON.stringify(`{"message":"Upload ${id} deleted successfully"}`);
    assert.deepEqual(lines, [`200 null ${body}`, `200 "true" ${body}`]);
    assert.equal(await uploadExists(id), false);
  } finally {
    await browser.close();
    server.close();
  }
});
