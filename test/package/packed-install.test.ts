/**
 * The package as a user gets it. `npm pack` (whose `prepack` builds dist/) makes the tarball; README's install
 * command installs it into an empty project outside the repository (so nothing resolves from the repository's
 * node_modules), and from there, with nothing of the repository:
 *   - the README's compose example, its types stripped by TypeScript, runs under plain node (no tsx installed);
 *   - the same example type-checks with the user's tsc, under a strict tsconfig and under tsc --init's
 *     defaults (noUncheckedIndexedAccess, exactOptionalPropertyTypes, ...), and the package's own .d.ts hold
 *     no error even with skipLibCheck off;
 *   - `npx papo train` runs a tiny config; `--import` of a .ts module without tsx fails saying what to install;
 *   - after `npm install --save-dev tsx`, the README's extend example loads as printed (`node --import tsx ...`).
 * npm needs the registry or a warm cache (`npm ci` leaves the tarballs there): `--prefer-offline` uses the cache.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { parse } from 'yaml';
import { commandOf, packageExports, readmeBlocks, ROOT } from '../readme-examples.ts';

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TINY = ['trainer.max_steps=1', 'data.rollout_batch_size=4', 'worker.rollout.n=2', 'trainer.test_before_and_after=false'];
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund'];

/**
 * The environment of a user's shell: none of the npm_* variables `npm test` sets, nor CI's
 * ONNXRUNTIME_NODE_INSTALL, nor the repository's node_modules/.bin on the PATH.
 */
const userEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_|^ONNXRUNTIME_NODE_INSTALL/i.test(k))),
  PATH: (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => !path.resolve(dir).startsWith(ROOT + path.sep))
    .join(path.delimiter),
  PAPO_DEBUG: '',
  ...extra,
});

const run = (cmd: string, args: string[], cwd: string, env = userEnv()): SpawnSyncReturns<string> =>
  spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

const ok = (r: SpawnSyncReturns<string>, what: string): string => {
  assert.equal(r.status, 0, `${what} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

let work: string; // holds the tarball and the user's project
let app: string; // the user's project
let packed: string[]; // paths in the tarball

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-packed-'));
  app = path.join(work, 'app');
  fs.mkdirSync(app);
  // node looks for packages in every node_modules above the project: none may be the repository's
  assert.ok(!fs.realpathSync(work).startsWith(ROOT + path.sep), `${work} is inside the repository`);
  const pack = JSON.parse(ok(run('npm', ['pack', '--json', '--pack-destination', work], ROOT), 'npm pack')) as {
    filename: string;
    files: { path: string }[];
  }[];
  packed = pack[0].files.map((f) => f.path);
  const tarball = path.join(work, pack[0].filename);

  fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'user-app', private: true, type: 'module' }, null, 2)}\n`);
  // README's install command, with the tarball for `papo-stream`; the TypeScript user's @types/node besides
  const [assignments, command] = splitAssignments(commandOf(readmeBlocks('install')[0]));
  assert.deepEqual(command.slice(0, 2), ['npm', 'install']);
  const packages = command.slice(2).map((p) => (p === 'papo-stream' ? tarball : p));
  assert.ok(packages.includes(tarball), 'the README installs papo-stream');
  ok(run('npm', ['install', ...packages, `@types/node@${devVersion('@types/node')}`, ...NPM_FLAGS], app, userEnv(assignments)), 'npm install');
});

after(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** `VAR=value` words before a command, as an environment. */
function splitAssignments(words: string[]): [Record<string, string>, string[]] {
  const env: Record<string, string> = {};
  let i = 0;
  for (; i < words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[i]); i++) {
    const eq = words[i].indexOf('=');
    env[words[i].slice(0, eq)] = words[i].slice(eq + 1);
  }
  return [env, words.slice(i)];
}

/** The version range of a dev dependency of this repository (what a user's project would pick up too). */
function devVersion(name: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  const v = pkg.devDependencies[name];
  assert.ok(v, `${name} is a dev dependency`);
  return v;
}

const installed = (...p: string[]) => path.join(app, 'node_modules', 'papo-stream', ...p);

test('the tarball holds the built code, its .d.ts, the launcher and the warm start, and nothing else of the repository', () => {
  const top = new Set(packed.map((p) => (p.includes('/') ? `${p.split('/')[0]}/` : p)));
  assert.deepEqual([...top].sort(), ['README.md', 'assets/', 'bin/', 'dist/', 'package.json']);
  assert.deepEqual(
    packed.filter((p) => p.startsWith('bin/')),
    ['bin/papo.js'],
  );
  assert.ok(packed.every((p) => !p.startsWith('assets/') || p.startsWith('assets/warm-start/')));
  // JavaScript with declarations, no TypeScript sources (their types would be checked under the user's settings)
  const dist = packed.filter((p) => p.startsWith('dist/'));
  assert.deepEqual(
    dist.filter((p) => !p.endsWith('.js') && !p.endsWith('.d.ts')),
    [],
  );
  for (const js of dist.filter((p) => p.endsWith('.js'))) assert.ok(packed.includes(js.replace(/\.js$/, '.d.ts')), `${js} has its .d.ts`);
  assert.equal(dist.filter((p) => /^dist\/(test|bench|scripts)\//.test(p)).length, 0);
  // every entry of the exports map, with its types
  const pkg = JSON.parse(fs.readFileSync(installed('package.json'), 'utf8')) as { exports: Record<string, { types: string; default: string } | string> };
  for (const [key, built] of packageExports()) {
    assert.ok(fs.existsSync(installed(built)), `exports['${key}'] -> ${built}`);
    const entry = pkg.exports[key];
    if (typeof entry !== 'string') assert.ok(fs.existsSync(installed(entry.types)), `exports['${key}'].types -> ${entry.types}`);
  }
  assert.deepEqual([...packageExports().keys()].sort(), [
    '.',
    './algorithms',
    './models',
    './operators',
    './package.json',
    './pipelines',
    './storage',
    './tasks',
  ]);
  // tsx is the repository's dev dependency: the user's install does not bring it
  assert.equal(fs.existsSync(path.join(app, 'node_modules', 'tsx')), false);
});

test('files the built code finds beside itself exist in the installed package (workers, warm start, launcher)', () => {
  const found: string[] = [];
  const walk = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.js') ? [path.join(dir, e.name)] : []));
  for (const file of walk(installed('dist'))) {
    // code only: doc comments show such lines as examples
    const text = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => !/^\s*(\*|\/\/)/.test(l))
      .join('\n');
    // worker entries are written as the URL of their TypeScript source; built, the .js beside it starts
    for (const m of text.matchAll(/new URL\('([^']+)', import\.meta\.url\)/g)) {
      const target = path.resolve(path.dirname(file), m[1].replace(/\.ts$/, '.js'));
      assert.ok(fs.existsSync(target), `${path.relative(app, file)}: new URL('${m[1]}') -> ${target} is missing`);
      found.push(m[1]);
    }
    for (const m of text.matchAll(/packageFile\('([^']+)'\)/g)) {
      assert.ok(fs.existsSync(installed(m[1])), `${path.relative(app, file)}: packageFile('${m[1]}') is missing`);
      found.push(m[1]);
    }
  }
  for (const expected of ['./worker.ts', './ort-train-worker.ts', './writer-worker.ts', 'assets/warm-start', 'bin/papo.js']) {
    assert.ok(found.includes(expected), `looked at ${expected}`);
  }
});

test("README's compose example runs under plain node from the installed package", () => {
  const [code] = readmeBlocks('compose');
  const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  fs.writeFileSync(path.join(app, 'app.mjs'), js);
  const out = ok(run(process.execPath, ['app.mjs'], app), 'node app.mjs');
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 2, out);
  assert.match(lines[0], /^step 1: reward -?\d\.\d{3}, kl_prcp -?\d\.\d{4}$/);
  assert.match(lines[1], /^step 2: /);
});

test("README's compose example type-checks with a user's tsc: strict, and tsc --init's defaults", () => {
  const [code] = readmeBlocks('compose');
  fs.writeFileSync(path.join(app, 'app.ts'), code);
  const configs: Record<string, Record<string, unknown>> = {
    strict: { target: 'ES2022', module: 'NodeNext', strict: true, types: ['node'] },
    // what `tsc --init` (TypeScript 5.9) writes, minus what concerns emitting
    init: {
      module: 'nodenext',
      target: 'esnext',
      types: ['node'],
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      strict: true,
      verbatimModuleSyntax: true,
      isolatedModules: true,
      noUncheckedSideEffectImports: true,
      moduleDetection: 'force',
    },
  };
  for (const [name, options] of Object.entries(configs)) {
    const file = `tsconfig.${name}.json`;
    // skipLibCheck off, so every .d.ts is checked: other packages' declarations have errors of their own (tfjs,
    // numcodecs: a project's usual skipLibCheck hides them, and it would hide no others); the user's file, the
    // package's declarations and the configuration must have none
    fs.writeFileSync(path.join(app, file), JSON.stringify({ compilerOptions: { ...options, noEmit: true, skipLibCheck: false }, files: ['app.ts'] }));
    const r = run(process.execPath, [TSC, '-p', file, '--pretty', 'false'], app);
    const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    const ours = errors.filter((l) => l.startsWith('app.ts') || l.startsWith('node_modules/papo-stream/') || l.startsWith('error'));
    assert.deepEqual(ours, [], `${name}:\n${r.stdout}`);
    assert.ok(r.status === 0 || errors.length > 0, r.stderr);
  }
});

test('npx papo train runs a tiny config from the installed package', () => {
  const r = run('npx', ['papo', 'train', ...TINY, 'trainer.save_checkpoint_path=runs/tiny'], app);
  ok(r, 'npx papo train');
  assert.match(r.stderr, /train: completed, 1 step in/);
  assert.ok(fs.existsSync(path.join(app, 'runs', 'tiny', 'checkpoints', 'latest')));
});

test("a .ts module without tsx: papo's error says what to install", (t) => {
  if ((process.features as { typescript?: unknown }).typescript) return t.skip('this Node strips types itself');
  const [code] = readmeBlocks('extend');
  fs.writeFileSync(path.join(app, 'my_ext.ts'), code);
  const r = run('npx', ['papo', '--import', './my_ext.ts', 'train', '--print-config'], app);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /--import: cannot load .*my_ext\.ts: Node v\d+.* does not load TypeScript by itself: install tsx \(npm install --save-dev tsx\)/);
});

test("README's extend example, with tsx installed, loads as printed", () => {
  ok(run('npm', ['install', '--save-dev', `tsx@${devVersion('tsx')}`, ...NPM_FLAGS], app), 'npm install --save-dev tsx');
  const [code, bash] = readmeBlocks('extend');
  fs.writeFileSync(path.join(app, 'my_ext.ts'), code);
  const command = commandOf(bash);
  const train = command.indexOf('train');
  assert.equal(command[0], 'node');
  const r = ok(run(process.execPath, [...command.slice(1, train + 1), '--print-config', ...command.slice(train + 1)], app), command.join(' '));
  const cfg = parse(r);
  assert.equal(cfg.algorithm.adv_estimator, 'max_baseline');
  assert.equal(cfg.worker.reward.score_function, 'exact');
});
