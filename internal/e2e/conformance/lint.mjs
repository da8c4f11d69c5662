// Lints the OpenAPI document a running service serves with @redocly/cli's
// recommended rules:
//
//   OPENAPI_URL=http://127.0.0.1:8080/openapi.json node lint.mjs
//
// Prints each problem (severity, rule, where, what), then "N errors, M
// warnings"; exits 1 on any problem, warnings included (redocly itself
// exits 0 on warnings).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const url = process.env.OPENAPI_URL;
if (!url) {
  console.error('lint.mjs: set OPENAPI_URL, e.g. http://127.0.0.1:8080/openapi.json');
  process.exit(2);
}
const res = await fetch(url);
if (!res.ok) {
  console.error(`GET ${url}: ${res.status}`);
  process.exit(1);
}
const dir = await mkdtemp(join(tmpdir(), 'openapi-lint-'));
const file = join(dir, 'openapi.json');
await writeFile(file, Buffer.from(await res.arrayBuffer()));

const redocly = join(import.meta.dirname, 'node_modules', '.bin', 'redocly');
let report;
try {
  const { stdout } = await promisify(execFile)(redocly, ['lint', '--extends=recommended', '--format=json', file], {
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
    maxBuffer: 16 << 20,
  }).catch((err) => (err.stdout ? { stdout: err.stdout } : Promise.reject(err))); // exit 1 on errors
  report = JSON.parse(stdout);
} finally {
  await rm(dir, { recursive: true, force: true });
}

for (const p of report.problems) {
  const where = p.location?.[0];
  console.log(`${p.severity.padEnd(7)} ${p.ruleId}  ${where?.pointer ?? ''} (line ${where?.start?.line ?? '?'})  ${p.message}`);
}
const { errors, warnings } = report.totals;
console.log(`@redocly/cli ${report.version} lint --extends=recommended ${url}: ${errors} errors, ${warnings} warnings`);
process.exit(errors + warnings === 0 ? 0 : 1);
