// The README's examples, run as they are printed, against the sources of this checkout: "Compose your own
// pipeline" (a custom stage between two built-in ones, two training steps from the shipped warm start) and
// "Extending by name" (a module that registers an estimator and a reward, loaded with `papo --import`).
// Their `papo-stream/...` imports lead to the source each entry of package.json's `exports` is built from
// (test/readme-examples.ts); test/package/packed-install.test.ts runs them from the packed, installed package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { commandOf, readmeBlocks, ROOT, withSourceImports } from './readme-examples.ts';

/** A fresh directory in the repository's (ignored) tmp/, so that the example's own imports (rxjs) resolve. */
const tmpDir = () => {
  fs.mkdirSync(path.join(ROOT, 'tmp'), { recursive: true });
  return fs.mkdtempSync(path.join(ROOT, 'tmp', 'readme-'));
};

test("README's compose-your-own-pipeline example trains two steps", async () => {
  const [code] = readmeBlocks('compose');
  assert.match(code, /from 'papo-stream\/operators'/, 'the example imports the package, as a user does');
  const dir = tmpDir();
  const file = path.join(dir, 'example.ts');
  fs.writeFileSync(file, withSourceImports(code, dir));
  const log = console.log;
  const lines: string[] = [];
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    const mod = (await import(pathToFileURL(file).href)) as { steps: { step: number; version: number; metrics: Record<string, number> }[] };
    assert.deepEqual(
      mod.steps.map((s) => [s.step, s.version]),
      [
        [1, 1],
        [2, 2],
      ],
    );
    for (const s of mod.steps) {
      assert.ok(Number.isFinite(s.metrics['actor/kl_prcp_loss']));
      assert.ok(Number.isFinite(s.metrics['actor/kl_loss']));
      // the custom stage ran: rewards were lowered by 0.002 per token, so no score reaches 1
      assert.ok(s.metrics['critic/score/max'] < 1);
    }
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^step 1: reward -?\d\.\d{3}, kl_prcp -?\d\.\d{4}$/);
  } finally {
    console.log = log;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("README's extending-by-name example: the registered names pass validation after papo --import", () => {
  const [code, bash] = readmeBlocks('extend');
  const command = commandOf(bash);
  const train = command.indexOf('train');
  // as printed: papo run through tsx (the installed package has no TypeScript loader of its own)
  assert.deepEqual(command.slice(0, train + 1), ['node', '--import', 'tsx', 'node_modules/.bin/papo', '--import', './my_ext.ts', 'train']);
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'my_ext.ts');
    fs.writeFileSync(file, withSourceImports(code, dir));
    // in this checkout bin/papo.js is the command, and it runs through tsx already
    const r = spawnSync(process.execPath, ['bin/papo.js', '--import', file, 'train', '--print-config', ...command.slice(train + 1)], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const cfg = parse(r.stdout);
    assert.equal(cfg.algorithm.adv_estimator, 'max_baseline');
    assert.equal(cfg.worker.reward.score_function, 'exact');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
