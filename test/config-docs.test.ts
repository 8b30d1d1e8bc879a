/**
 * The documentation says what the code does: the README's config tables are the schemas' (scripts/config-docs.ts
 * writes them), `papo train --help` and `papo sft --help` list every key with its default, and every relative
 * link of the repository's Markdown leads to a file of the repository.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { README, withConfigTables } from '../scripts/config-docs.ts';
import { describeConfig } from '../pipelines/train-config.ts';
import { describeSftConfig } from '../pipelines/sft-config.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

test("the README's config tables are the schemas' (npm run docs:config rewrites them)", () => {
  const text = fs.readFileSync(README, 'utf8');
  assert.ok(text.includes('<!-- config: train -->') && text.includes('<!-- config: sft -->'));
  assert.equal(text, withConfigTables(text), 'README.md differs from the schemas: run npm run docs:config');
  for (const { key } of [...describeConfig(), ...describeSftConfig()]) assert.ok(text.includes(`| \`${key}\` |`), key);
  // a table edited by hand is found
  const edited = text.replace('| `worker.rollout.n` | `8` |', '| `worker.rollout.n` | `9` |');
  assert.notEqual(edited, text);
  assert.notEqual(withConfigTables(edited), edited);
});

test('papo train --help and papo sft --help list every config key with its default', () => {
  const help: Record<string, string> = {};
  for (const [command, keys] of [
    ['train', describeConfig()],
    ['sft', describeSftConfig()],
  ] as const) {
    const r = spawnSync(process.execPath, ['bin/papo.js', command, '--help'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const k of keys) assert.match(r.stdout, new RegExp(`^ {2}${k.key.replaceAll('.', '\\.')} \\(`, 'm'), `${command}: ${k.key}`);
    help[command] = r.stdout;
  }
  assert.match(help.train, /^ {2}worker\.rollout\.n \(8\) +responses per prompt/m);
  assert.match(help.sft, /^ {2}trainer\.max_steps \(300\) +optimizer steps$/m);
  assert.match(help.sft, /--batch-size <n> += data\.train_batch_size/, 'a flag names the key it sets');
});

/** Markdown and TypeScript files of the repository (not dependencies, not run output). */
function sourceFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'dist', 'runs', 'tmp'].includes(e.name) || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.md') || e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Paths outside the repository, which a reader of the package does not have (joined here, so that this file is free of them too). */
const OUTSIDE = [['..', 'shared', ''].join('/'), ['PAPO', 'SPEC.md'].join('-')];

test('every relative link of the Markdown files leads to a file or folder of the repository, and no file names one outside it', () => {
  const bad: string[] = [];
  for (const file of sourceFiles()) {
    const text = fs.readFileSync(file, 'utf8');
    if (file.endsWith('.md'))
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1].split('#')[0];
        if (!target || /^[a-z]+:/.test(target)) continue;
        const where = path.resolve(path.dirname(file), target);
        if (!where.startsWith(ROOT + path.sep) || !fs.existsSync(where)) bad.push(`${path.relative(ROOT, file)}: ${m[1]}`);
      }
    for (const name of OUTSIDE) if (text.includes(name)) bad.push(`${path.relative(ROOT, file)}: names ${name}, outside the repository`);
  }
  assert.deepEqual(bad, []);
});
