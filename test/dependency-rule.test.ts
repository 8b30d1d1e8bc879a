/**
 * The dependency rule of the layout (README, "Layout"), checked on every import of every source file:
 *
 *   util <- algorithms, models, tasks <- storage <- operators <- pipelines <- cli
 *
 * A folder imports only from itself and the folders its row allows; `algorithms` never imports `models`,
 * `operators` or rxjs; `models` and `tasks` never import each other; nothing imports `cli`, `bench` or
 * `test` except tests and benches; only `cli` uses commander. The package's root entry (`index.ts`, what
 * `import 'papo-stream'` loads) re-exports the layers below `cli`. Imports are read with TypeScript's own
 * scanner (static, type-only, re-exports and literal dynamic imports alike).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const LAYERS = ['util', 'algorithms', 'models', 'tasks', 'storage', 'operators', 'pipelines', 'cli'] as const;
const ROOT = path.resolve(import.meta.dirname, '..');

/** Which top-level folders each folder may import from (besides itself). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  util: [],
  algorithms: ['util'],
  models: ['util'],
  tasks: ['util'],
  storage: ['util', 'algorithms', 'models', 'tasks'],
  operators: ['util', 'algorithms', 'models', 'tasks', 'storage'],
  pipelines: ['util', 'algorithms', 'models', 'tasks', 'storage', 'operators'],
  cli: ['util', 'algorithms', 'models', 'tasks', 'storage', 'operators', 'pipelines'],
  'index.ts': ['util', 'algorithms', 'models', 'tasks', 'storage', 'operators', 'pipelines'],
  scripts: ['util', 'algorithms', 'models', 'tasks', 'storage', 'operators', 'pipelines'],
  bench: [...LAYERS, 'test'],
  test: [...LAYERS, 'bench', 'scripts'],
};

/** Packages a folder must not import. */
const MUST_NOT_USE: Record<string, readonly string[]> = {
  util: ['commander'],
  algorithms: ['rxjs', 'commander'],
  models: ['commander'],
  tasks: ['commander'],
  storage: ['commander'],
  operators: ['commander'],
  pipelines: ['commander'],
  'index.ts': ['commander'],
  scripts: ['commander'],
};

export interface Import {
  /** the importing file, relative to the repository root */
  from: string;
  /** the specifier as written */
  specifier: string;
}

const topFolder = (file: string) => file.split('/')[0];

/** `from` imports: a folder (relative specifier, resolved from the repository root) or a package. */
function target(imp: Import): { folder: string } | { pkg: string } | undefined {
  const s = imp.specifier;
  if (s.startsWith('node:')) return undefined;
  if (s.startsWith('.')) {
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(imp.from), s));
    return { folder: topFolder(resolved) };
  }
  const parts = s.split('/');
  return { pkg: s.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0] };
}

/** Every breach of the rule among `imports`, as `file: imports specifier (why)`. */
export function violations(imports: readonly Import[]): string[] {
  const out: string[] = [];
  for (const imp of imports) {
    const from = topFolder(imp.from);
    const allowed = MAY_IMPORT[from];
    if (!allowed) {
      out.push(`${imp.from}: folder '${from}' has no row in the dependency rule`);
      continue;
    }
    const t = target(imp);
    if (!t) continue;
    if ('folder' in t) {
      if (t.folder !== from && !allowed.includes(t.folder)) out.push(`${imp.from}: imports ${imp.specifier} (${from} may not import ${t.folder})`);
    } else if (MUST_NOT_USE[from]?.includes(t.pkg)) {
      out.push(`${imp.from}: imports ${imp.specifier} (${from} may not use ${t.pkg})`);
    }
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  if (fs.statSync(path.join(ROOT, dir)).isFile()) return [dir];
  const files: string[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(rel));
    else if (/\.[cm]?tsx?$/.test(entry.name)) files.push(rel);
  }
  return files;
}

function importsOf(file: string): Import[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return ts.preProcessFile(text, true, true).importedFiles.map((f) => ({ from: file, specifier: f.fileName }));
}

const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };

test('every folder the type-check covers has a row in the rule', () => {
  for (const dir of tsconfig.include) assert.ok(MAY_IMPORT[dir], `folder '${dir}' has no row in the dependency rule`);
});

test('no source file breaks the dependency rule', () => {
  const imports = tsconfig.include.flatMap((dir) => sourceFiles(dir)).flatMap(importsOf);
  assert.ok(imports.length > 200, `read only ${imports.length} imports`);
  assert.deepEqual(violations(imports), []);
});

test('the rule catches each kind of breach', () => {
  const cases: [Import, RegExp][] = [
    [{ from: 'algorithms/x.ts', specifier: '../models/tf.ts' }, /algorithms may not import models/],
    [{ from: 'algorithms/x.ts', specifier: '../operators/types.ts' }, /algorithms may not import operators/],
    [{ from: 'algorithms/x.ts', specifier: 'rxjs' }, /algorithms may not use rxjs/],
    [{ from: 'models/engine/x.ts', specifier: '../../tasks/types.ts' }, /models may not import tasks/],
    [{ from: 'tasks/x.ts', specifier: '../models/config.ts' }, /tasks may not import models/],
    [{ from: 'tasks/x.ts', specifier: 'commander' }, /tasks may not use commander/],
    [{ from: 'storage/x.ts', specifier: '../operators/types.ts' }, /storage may not import operators/],
    [{ from: 'operators/x.ts', specifier: '../pipelines/train.ts' }, /operators may not import pipelines/],
    [{ from: 'pipelines/x.ts', specifier: '../cli/main.ts' }, /pipelines may not import cli/],
    [{ from: 'cli/x.ts', specifier: '../test/algorithms/ref.ts' }, /cli may not import test/],
    [{ from: 'cli/x.ts', specifier: '../bench/policy.ts' }, /cli may not import bench/],
    [{ from: 'scripts/x.ts', specifier: '../cli/sft.ts' }, /scripts may not import cli/],
    [{ from: 'util/x.ts', specifier: '../tasks/types.ts' }, /util may not import tasks/],
    [{ from: 'index.ts', specifier: './cli/main.ts' }, /index.ts may not import cli/],
    [{ from: 'newdir/x.ts', specifier: '../util/rng.ts' }, /no row/],
  ];
  for (const [imp, why] of cases) {
    const v = violations([imp]);
    assert.equal(v.length, 1, `${imp.from} -> ${imp.specifier}`);
    assert.match(v[0], why);
  }
  const fine: Import[] = [
    { from: 'algorithms/x.ts', specifier: '../util/tf-backend.ts' },
    { from: 'algorithms/x.ts', specifier: 'zod' },
    { from: 'models/engine/x.ts', specifier: '../onnx/builder.ts' },
    { from: 'operators/x.ts', specifier: 'rxjs' },
    { from: 'cli/x.ts', specifier: 'commander' },
    { from: 'cli/x.ts', specifier: 'node:fs' },
    { from: 'test/x.test.ts', specifier: '../cli/main.ts' },
    { from: 'index.ts', specifier: './pipelines/index.ts' },
    { from: 'bench/x.ts', specifier: '../test/fixtures/my-reward.ts' },
  ];
  assert.deepEqual(violations(fine), []);
});
