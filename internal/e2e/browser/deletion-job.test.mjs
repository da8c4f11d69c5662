// The example frontend's "Delete all my uploads": a person with 20,000
// uploads clicks it, the page starts a deletion job and its <progress> bar,
// fed by the deletionJob subscription (graphql-sse), fills as the service
// deletes batch after batch, and ends on "Done"; the service then holds none
// of that person's uploads, and all of another person's. Starts its own
// issuer and service (UPLOADS_BIN is the server binary), as
// frontend.test.mjs does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { launch, saveArtifact } from './chromium.mjs';
import { startFrontend, signIn, graphql, uploadsBin } from './frontend.mjs';

const bin = uploadsBin();
const uploads = 20000;

// seedUploads writes count upload records of userID straight into the
// service's SQLite database (its DATA_DIR's uploads.db; the sqlite3 command of
// Debian's sqlite3 package), in one statement: through the API, 20,000
// uploads would take minutes. They are FAILED uploads, which never stored an
// object, so the bucket needs nothing; the job deletes them as any other.
function seedUploads(dataDir, userID, count) {
  const now = "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')"; // as ent writes a time.Time
  execFileSync('sqlite3', ['-bail', '-cmd', '.timeout 10000', join(dataDir, 'uploads.db'), `
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${Number(count)})
    INSERT INTO uploads (id, created_at, updated_at, filename, content_type, size, status, owner_id)
    SELECT 'upl_' || lower(hex(randomblob(16))), ${now}, ${now}, 'seeded-' || i || '.txt', 'text/plain', 0,
      'FAILED', '${userID.replace(/[^a-z0-9_]/g, '')}'
    FROM n;`]);
}

async function uploadCount(service, headers) {
  const { data, errors } = await graphql(service.url, headers, '{ viewer { uploads { totalCount } } }');
  assert.equal(errors, undefined, JSON.stringify(errors));
  return data.viewer.uploads.totalCount;
}

test('example frontend: delete all 20,000 uploads, the progress bar filling from the subscription', async () => {
  const { pageOrigin, service, stop } = await startFrontend();
  const { browser, context } = await launch();
  const page = await context.newPage();
  // The GraphQL operations the page subscribes to (graphql-sse: a POST
  // asking for text/event-stream).
  const subscribed = [];
  page.on('request', (r) => {
    if (r.url() === `${service.url}/graphql` && r.method() === 'POST' && r.headers().accept === 'text/event-stream') {
      subscribed.push(JSON.parse(r.postData()).query);
    }
  });
  try {
    await page.goto(`${pageOrigin}/`);
    await signIn(page, pageOrigin, 'grace@example.com');
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('token')).accessToken);
    const person = { authorization: `Bearer ${token}` };
    const { data } = await graphql(service.url, person, '{ viewer { id } }');
    seedUploads(service.dataDir, data.viewer.id, uploads);
    // Someone else's uploads, which the job must leave alone.
    const other = JSON.parse(execFileSync(bin, ['users', 'create', '--email', 'other@example.com', '--json'],
      { env: { ...process.env, DATA_DIR: service.dataDir } }));
    seedUploads(service.dataDir, other.user_id, 5);
    assert.equal(await uploadCount(service, person), uploads);

    await page.reload();
    await page.locator('#uploads li').first().waitFor({ timeout: 20000 });
    // Every value the bar shows, as painted frame after frame while the job
    // is on the page (each change once).
    await page.evaluate(() => {
      const bar = document.getElementById('job-progress');
      const job = document.getElementById('job');
      window.barShown = [];
      const sample = () => {
        const last = window.barShown.at(-1);
        if (!job.hidden && (last?.value !== bar.value || last?.max !== bar.max)) {
          window.barShown.push({ value: bar.value, max: bar.max });
        }
        requestAnimationFrame(sample);
      };
      requestAnimationFrame(sample);
    });

    page.once('dialog', (dialog) => dialog.accept()); // "Delete all your uploads?"
    await page.getByRole('button', { name: 'Delete all my uploads' }).click();
    const text = page.locator('#job-text');
    await page.locator('#result:not(:empty), #job-text:text-matches("^(Done|Failed|Canceled)")').first()
      .waitFor({ timeout: 120000 });
    assert.equal(await page.locator('#result').innerText(), '', 'the page shows an error');
    assert.equal(await text.innerText(), `Done: ${uploads} of ${uploads} deleted`);
    await page.waitForFunction(() => window.barShown.at(-1)?.value === window.barShown.at(-1)?.max);
    const shown = await page.evaluate(() => window.barShown);
    saveArtifact('frontend-delete-all.png', await page.screenshot({ fullPage: true }));

    assert.ok(shown.every((s) => s.max === uploads), `the bar's max was not ${uploads}: ${JSON.stringify(shown)}`);
    for (let i = 1; i < shown.length; i++) {
      assert.ok(shown[i].value >= shown[i - 1].value, `the bar went back: ${JSON.stringify(shown)}`);
    }
    assert.ok(shown.some((s) => s.value > 0 && s.value < s.max),
      `the bar jumped to the end, showing no progress on the way: ${JSON.stringify(shown)}`);
    assert.deepEqual(shown.at(-1), { value: uploads, max: uploads });
    assert.equal(subscribed.length, 1, `the page did not subscribe to the job once: ${JSON.stringify(subscribed)}`);
    assert.match(subscribed[0], /deletionJob\(id: \$id\)/);
    assert.equal(await page.locator('#uploads li').count(), 0, 'the page still lists uploads');

    assert.equal(await uploadCount(service, person), 0, 'the service still has uploads of the person');
    assert.equal(await uploadCount(service, { 'x-api-key': other.api_key }), 5, 'someone else lost uploads');
  } catch (err) {
    saveArtifact('frontend-delete-all-failure.png', await page.screenshot({ fullPage: true }));
    throw err;
  } finally {
    await browser.close();
    await stop();
  }
});
