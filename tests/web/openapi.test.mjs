// Validate the OpenAPI document against the OpenAPI 3.0/3.1 JSON schema
// (@seriousme/openapi-schema-validator), resolve every $ref, and check a
// few promises of the API that a schema cannot see: every change accepts
// If-Match and names the bearer scheme, every layer path takes the name
// parameter, and every error answer is problem details.
//
//   node tests/web/openapi.test.mjs server/openapi.json
import fs from 'node:fs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node openapi.test.mjs OPENAPI.json');
  process.exit(2);
}
const { Validator } = await import('@seriousme/openapi-schema-validator').catch(() => {
  console.log('not ok - @seriousme/openapi-schema-validator is not installed: run tests/web/setup (npm ci in tests/web)');
  process.exit(1);
});
let failures = 0;
function check(ok, what, detail) {
  if (ok) return;
  failures++;
  console.log(`not ok - ${what}${detail ? ': ' + detail : ''}`);
}

const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
const validator = new Validator();
const res = await validator.validate(doc);
check(res.valid, 'the document is valid OpenAPI ' + validator.version, JSON.stringify(res.errors, null, 1));

// Every $ref points at something.
function resolve(pointer) {
  if (!pointer.startsWith('#/')) return undefined;
  return pointer.slice(2).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((o, k) => (o === undefined ? undefined : o[k]), doc);
}
(function walk(node, where) {
  if (Array.isArray(node)) return node.forEach((v, i) => walk(v, where + '/' + i));
  if (!node || typeof node !== 'object') return;
  if (typeof node.$ref === 'string') check(resolve(node.$ref) !== undefined, 'a $ref resolves', `${where}: ${node.$ref}`);
  for (const [k, v] of Object.entries(node)) walk(v, where + '/' + k);
})(doc, '#');

const deref = (o) => (o && o.$ref ? deref(resolve(o.$ref)) : o);
const mutating = new Set(['put', 'patch', 'delete', 'post']);
let ops = 0;
for (const [p, item] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(item)) {
    if (!['get', 'put', 'post', 'patch', 'delete', 'head'].includes(method)) continue;
    ops++;
    const params = [...(item.parameters || []), ...(op.parameters || [])].map(deref);
    if (p.includes('{name}')) check(params.some((x) => x.in === 'path' && x.name === 'name'), `${method} ${p} declares {name}`);
    // eval and backward are POSTs that change nothing.
    const changes = p.startsWith('/v1/') && mutating.has(method) && !p.endsWith('/eval') && !p.endsWith('/backward');
    if (changes) {
      check(params.some((x) => x.in === 'header' && x.name === 'If-Match'), `${method} ${p} takes If-Match`);
      check(Array.isArray(op.security) && op.security.some((s) => 'bearerAuth' in s), `${method} ${p} names the bearer scheme`);
      check('412' in op.responses, `${method} ${p} documents 412`);
    }
    for (const [status, r] of Object.entries(op.responses)) {
      if (Number(status) < 400) continue;
      const content = deref(r).content || {};
      check('application/problem+json' in content, `${method} ${p} ${status} is problem details`);
    }
    if (p.startsWith('/v1/layers/{name}')) {
      const ok = op.responses['200'] || op.responses['204'];
      check(ok && (op.responses['204'] || (deref(ok).headers || {}).ETag), `${method} ${p} answers with an ETag`);
      check('400' in op.responses, `${method} ${p} documents 400`);
      if (!(method === 'put' && p === '/v1/layers/{name}')) check('404' in op.responses, `${method} ${p} documents 404`);
    }
  }
}
check(ops >= 20, 'the document has the API\'s operations', String(ops));
for (const p of ['/', '/livez', '/healthz', '/readyz', '/metrics', '/openapi.json']) check(doc.paths[p] && doc.paths[p].get, `GET ${p} is documented`);
console.log(`# ${ops} operations checked, ${failures} failures`);
process.exit(failures ? 1 : 0);
