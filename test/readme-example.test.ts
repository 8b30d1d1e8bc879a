// The README's examples, run as they are printed: "Compose your own pipeline" (a custom stage between two
// built-in ones, two training steps from the shipped warm start) and "Extending by name" (a module that
// registers an estimator and a reward, loaded with `papo --import`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test("README's compose-your-own-pipeline example trains two steps", async () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /<!-- example: compose -->\s*```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has the compose example');
  // Imports in the README are relative to the repository root; so is the weights path. The file lives in
  // the repository's (ignored) tmp/ so that its packages resolve.
  const code = m[1].replaceAll("from './", "from '../../").replace("'assets/warm-start'", JSON.stringify(path.join(root, 'assets/warm-start')));
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'tmp', 'readme-'));
  const file = path.join(dir, 'example.ts');
  fs.writeFileSync(file, code);
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
  } finally {
    console.log = log;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("README's extending-by-name example: the registered names pass validation after papo --import", () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /<!-- example: extend -->\s*```ts\n([\s\S]*?)```\s*```bash\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has the extend example');
  const command = m[2].trim().split(/\s+/);
  assert.deepEqual(command.slice(0, 5), ['npx', 'papo', '--import', './my_ext.ts', 'train']);
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'tmp', 'readme-'));
  try {
    const file = path.join(dir, 'my_ext.ts');
    fs.writeFileSync(file, m[1].replaceAll("from './", "from '../../"));
    const overrides = command.slice(5);
    const r = spawnSync(process.execPath, ['bin/papo.js', '--import', file, 'train', '--print-config', ...overrides], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const cfg = parse(r.stdout);
    assert.equal(cfg.algorithm.adv_estimator, 'max_baseline');
    assert.equal(cfg.worker.reward.score_function, 'exact');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
