// The playground, offline: it loads from assets inside the binary, a person
// puts their key in the headers editor, lists their uploads, deletes one, and
// watches their uploads' events through a subscription.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceURL, apiKey, launch, uploadFile, uploadExists, objectStored, saveArtifact } from './helpers.mjs';

async function typeInto(page, editorSelector, text) {
  await page.locator(`${editorSelector} .CodeMirror:visible`).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text); // like a paste: no auto-closed brackets
  // GraphiQL re-reads the operation (and its name) from the editor after a
  // short debounce; a person never clicks faster than that.
  await page.waitForTimeout(500);
}

async function responseText(page) {
  return page.locator('.graphiql-response .CodeMirror').first()
    .evaluate((el) => el.CodeMirror.getValue());
}

async function run(page, query, expect) {
  await typeInto(page, '.graphiql-query-editor', query);
  await page.locator('.graphiql-execute-button').click();
  await page.waitForFunction(
    (want) => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue().includes(want),
    expect, { timeout: 20000 });
  return responseText(page);
}

test('playground works offline: list and delete uploads', async () => {
  const keep = await uploadFile('keep.txt', 'keep');
  const doomed = await uploadFile('doomed.txt', 'doomed');
  const { browser, context, blocked } = await launch();
  try {
    const page = await context.newPage();
    const failedAssets = [];
    page.on('requestfailed', (r) => failedAssets.push(r.url()));
    await page.goto(`${serviceURL}/`);
    await page.locator('.graphiql-execute-button').waitFor({ timeout: 20000 });

    await page.getByRole('button', { name: 'Headers' }).click();
    await typeInto(page, '.graphiql-editor-tool', JSON.stringify({ 'x-api-key': apiKey }));

    const listed = await run(page, '{ viewer { uploads(first: 50) { totalCount edges { node { id filename status } } } } }', doomed);
    assert.ok(listed.includes(keep) && listed.includes(doomed), `listing on the page:\n${listed}`);

    const deleted = await run(page, `mutation { deleteUpload(id: "${doomed}") { deletedUploadId message } }`, 'deleted successfully');
    assert.ok(deleted.includes(`Upload ${doomed} deleted successfully`), `delete result on the page:\n${deleted}`);
    assert.ok((await page.locator('.graphiql-response').innerText()).includes('deleted successfully'),
      'the result is not visible on the page');
    saveArtifact('playground.png', await page.screenshot({ fullPage: true }));

    // A subscription, over the WebSocket the page opens with the key of the
    // Headers tab: from the trail's start, the newest event is the delete's
    // (or its purge's).
    const watched = await run(page, 'subscription { uploadEvents(after: "0") { id kind uploadId } }', doomed);
    assert.match(watched, /"kind": "(DELETED|PURGED)"/, `subscription result on the page:\n${watched}`);

    assert.equal(await uploadExists(doomed), false, 'the record survived the playground delete');
    assert.equal(await objectStored(doomed), false, 'the object survived the playground delete');
    assert.equal(await objectStored(keep), true, 'the other upload lost its object');
    assert.deepEqual(failedAssets.filter((u) => u.startsWith(serviceURL)), [], 'playground assets failed to load');
    if (blocked.length) console.log(`non-loopback requests refused (page worked without them): ${blocked.join(', ')}`);
  } catch (err) {
    saveArtifact('playground-failure.png', await context.pages()[0].screenshot({ fullPage: true }));
    throw err;
  } finally {
    await browser.close();
  }
});
