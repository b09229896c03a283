// OpenAPI a generator can use: openapi-typescript (from the committed
// lockfile) turns server/openapi.json into TypeScript types, tsc --strict
// compiles typed/client.ts against them (whose @ts-expect-error lines prove
// the types are tight), and the compiled client then runs against DAEMON.
//
//   node tests/web/typed_client.test.mjs OPENAPI_JSON DAEMON
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startDaemon } from './daemon.mjs';

const [spec, exe] = process.argv.slice(2);
if (!spec || !exe) {
  console.error('usage: node typed_client.test.mjs OPENAPI_JSON DAEMON');
  process.exit(2);
}
const here = path.dirname(fileURLToPath(import.meta.url));
let openapiTS, tsc;
try {
  openapiTS = await import('openapi-typescript');
  tsc = path.join(here, 'node_modules', 'typescript', 'bin', 'tsc');
  fs.accessSync(tsc);
} catch (e) {
  console.log('not ok - openapi-typescript or typescript is not installed: run tests/web/setup (npm ci in tests/web)');
  process.exit(1);
}

let failures = 0;
function check(ok, what, detail) {
  if (ok) return;
  failures++;
  console.log(`not ok - ${what}${detail !== undefined ? ': ' + detail : ''}`);
}

/* Every operation says whether it needs the token: bearerAuth, or [] for none; reads need none. */
const doc = JSON.parse(fs.readFileSync(spec, 'utf8'));
for (const [p, item] of Object.entries(doc.paths)) {
  for (const [m, op] of Object.entries(item)) {
    if (!['get', 'put', 'post', 'patch', 'delete'].includes(m)) continue;
    check(Array.isArray(op.security), `${m.toUpperCase()} ${p} has an explicit security list`);
    if (m === 'get') check(op.security && op.security.length === 0, `GET ${p} needs no token (security: [])`);
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bnd-typed-'));
try {
  const ast = await openapiTS.default(pathToFileURL(path.resolve(spec)));
  fs.writeFileSync(path.join(dir, 'schema.d.ts'), openapiTS.astToString(ast));
  fs.copyFileSync(path.join(here, 'typed', 'client.ts'), path.join(dir, 'client.ts'));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext',
      lib: ['ES2022', 'DOM'], outDir: 'out', skipLibCheck: false, noUnusedLocals: true,
    },
    files: ['client.ts'],
  }));
  fs.writeFileSync(path.join(dir, 'package.json'), '{"type": "module"}');
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' });
  } catch (e) {
    check(false, 'tsc --strict on typed/client.ts', '\n' + (e.stdout || '') + (e.stderr || ''));
  }
  if (failures === 0) {
    const d = await startDaemon(exe);
    try {
      const client = await import(pathToFileURL(path.join(dir, 'out', 'client.js')));
      const got = await client.run(d.base);
      check(got.eps === 1e-5, 'the answered config has eps', got.eps);
      check(JSON.stringify(got.mean) === '[1,3]', 'batch_mean', JSON.stringify(got.mean));
      check(got.code === 'conflict', 'a typed problem code', got.code);
      check(got.created === 1, 'the import created the layer', got.created);
      check(JSON.stringify(got.exported) === '{"bn.running_mean":[0.5],"bn.running_var":[2],"bn.num_batches_tracked":0}',
        'the export', JSON.stringify(got.exported));
    } finally {
      d.stop();
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
console.log(failures ? `# ${failures} failures` : '# typed client: generated, type-checked and run, 0 failures');
process.exit(failures ? 1 : 0);
