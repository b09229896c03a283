// A small client typed by what openapi-typescript generates from
// server/openapi.json (./schema.d.ts, written by typed_client.test.mjs).
// tsc --strict must accept it, and each @ts-expect-error line must be an
// error: the types are as tight as the API (num_features required on
// create, the rest optional; every problem code a literal).
import type { components, paths } from './schema.js';

type Problem = components['schemas']['Problem'];
export type Code = Problem['code'];
type CreateBody = paths['/v1/layers/{name}']['put']['requestBody']['content']['application/json'];
type Layer = paths['/v1/layers/{name}']['get']['responses'][200]['content']['application/json'];
type TrainBody = NonNullable<paths['/v1/layers/{name}/train']['post']['requestBody']>['content']['application/json'];
type TrainAnswer = paths['/v1/layers/{name}/train']['post']['responses'][200]['content']['application/json'];
type ImportBody = paths['/v1/import']['post']['requestBody']['content']['application/json'];
type ImportAnswer = paths['/v1/import']['post']['responses'][200]['content']['application/json'];
type ExportAnswer = paths['/v1/export']['get']['responses'][200]['content']['application/json'];
type ExportQuery = NonNullable<paths['/v1/export']['get']['parameters']['query']>;

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
  }
}

async function call<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc: unknown = await r.json();
  if (!r.ok) throw new ApiError(doc as Problem);
  return doc as T;
}

/* Drives the daemon at base through the typed calls; returns what it saw, for the test to check. */
export async function run(base: string): Promise<Record<string, unknown>> {
  const create: CreateBody = { num_features: 2 }; /* the defaults may be left out */
  const layer = await call<Layer>(base, 'PUT', '/v1/layers/typed', create);
  const eps: number = layer.config.eps;            /* an answered config has every field */
  const train: TrainBody = { input: [[0, 1], [2, 5]] };
  const step = await call<TrainAnswer>(base, 'POST', '/v1/layers/typed/train', train);
  const mean: number[] = step.batch_mean;
  let code: Code | undefined;
  try {
    await call<Layer>(base, 'PUT', '/v1/layers/typed', { num_features: 3 } satisfies CreateBody);
  } catch (e) {
    if (e instanceof ApiError) code = e.problem.code;
  }
  const model: ImportBody = { 'net.bn.running_mean': [0.5], 'net.bn.running_var': [2] };
  const imported = await call<ImportAnswer>(base, 'POST', '/v1/import', model);
  const query: ExportQuery = { prefix: 'net.', strip: 'true' };
  const exported = await call<ExportAnswer>(base, 'GET', '/v1/export?' + new URLSearchParams(query));
  return { eps, mean, code, created: imported.created, exported };
}

/* Lines the compiler must refuse: if the generated types were loose, these directives would be unused. */
export function mustNotCompile(): void {
  // @ts-expect-error num_features is required on create
  const noFeatures: CreateBody = { eps: 1e-3 };
  // @ts-expect-error no such problem code
  const unknownCode: Code = 'no_such_code';
  // @ts-expect-error eps is a number
  const badEps: CreateBody = { num_features: 1, eps: 'small' };
  void noFeatures; void unknownCode; void badEps;
}
