/**
 * npm in this repository: no warning on any npm command (npm 11 warns about every key of a project `.npmrc`
 * it does not know, on every `npx papo`), and onnxruntime-node's install script, which would download CUDA
 * libraries from outside the npm registry, denied by `allowScripts` (npm's install-script policy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../readme-examples.ts';

test('npm commands in the repository print no config warning', () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_/i.test(k)));
  const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: ROOT, env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /Unknown (project|user|global) config/, r.stderr);
});

test('allowScripts denies the install scripts papo-stream does not need, onnxruntime-node first', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false, 'onnxruntime-node would fetch CUDA libraries from api.nuget.org');
});
