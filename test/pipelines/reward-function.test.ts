import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRewardFunction, resolveScoreFunction } from '../../pipelines/reward-function.ts';
import type { RewardFunction, RewardInput } from '../../tasks/rewards/types.ts';
import { rejectionOf } from '../asserts.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURE = path.join(ROOT, 'test/fixtures/my-reward.ts');
const input: RewardInput = { id: 'r1', response: '<think>3+4=7</think><answer>7</answer>', answer: '7' };

async function scoreOne(r: RewardFunction, x: RewardInput) {
  return r.mode === 'single' ? r.score(x) : (await r.scoreBatch([x]))[0];
}

test("'composite' is the paper's reward: 0.9 accuracy + 0.1 format", async () => {
  const r = await loadRewardFunction('composite');
  assert.equal(r.mode, 'single');
  assert.match(r.name, /^composite\(0\.9\*accuracy\+0\.1\*format\)$/);
  const right = await scoreOne(r, input);
  assert.equal(right.accuracy, 1);
  assert.equal(right.format, 1);
  assert.ok(Math.abs(right.overall - 1) < 1e-12);
  const wrong = await scoreOne(r, { ...input, answer: '8' });
  assert.equal(wrong.accuracy, 0);
  assert.ok(Math.abs(wrong.overall - 0.1) < 1e-12);
});

test('a user file: a plain function export, a defineReward object, the default export', async () => {
  const plain = await loadRewardFunction('./test/fixtures/my-reward.ts:score', ROOT);
  assert.equal(plain.mode, 'single', 'a plain function is wrapped as a single reward');
  assert.equal(plain.name, 'score');
  assert.deepEqual(await scoreOne(plain, input), { overall: 1, accuracy: 1, format: 1 });
  assert.deepEqual(await scoreOne(plain, { ...input, answer: '9' }), { overall: 0, accuracy: 0, format: 1 });

  const defined = await loadRewardFunction(`${FIXTURE}:lengthPenalty`);
  assert.equal(defined.name, 'length-penalty', 'a defineReward object is used as it is');
  assert.equal(defined.mode, 'single');
  assert.equal((await scoreOne(defined, { ...input, response: 'x'.repeat(50) })).overall, -0.5);

  for (const spec of [FIXTURE, `${FIXTURE}:default`]) {
    const d = await loadRewardFunction(spec);
    assert.equal(d.name, 'my-reward.ts');
    assert.deepEqual(await scoreOne(d, input), { overall: 0.5, accuracy: 1, format: 0 });
  }
});

test('relative paths resolve against the base directory, the current directory by default', async () => {
  assert.equal(process.cwd(), ROOT, 'run the tests from the repository root');
  assert.equal((await loadRewardFunction('./test/fixtures/my-reward.ts:score')).name, 'score');
  assert.equal((await loadRewardFunction('my-reward.ts:score', path.join(ROOT, 'test/fixtures'))).name, 'score');
  // a config file's score_function is made absolute against the config file's directory (cli/train.ts)
  assert.equal(resolveScoreFunction('./my-reward.ts:score', '/cfg/dir'), '/cfg/dir/my-reward.ts:score');
  assert.equal(resolveScoreFunction('../r/my-reward.ts', '/cfg/dir'), '/cfg/r/my-reward.ts');
  assert.equal(resolveScoreFunction('/abs/my-reward.ts:score', '/cfg/dir'), '/abs/my-reward.ts:score');
  assert.equal(resolveScoreFunction('composite', '/cfg/dir'), 'composite');
  assert.equal(resolveScoreFunction('accuracy', '/cfg/dir'), 'accuracy', 'left for loadRewardFunction to reject');
});

test('bad specs are errors naming worker.reward.score_function', async () => {
  const missing = (await rejectionOf(loadRewardFunction('./nope/reward.ts:score', ROOT))).message;
  assert.equal(missing, `worker.reward.score_function: file ${path.join(ROOT, 'nope/reward.ts')} does not exist (relative paths resolve against ${ROOT})`);
  assert.equal((await rejectionOf(loadRewardFunction('/nope/reward.ts'))).message, 'worker.reward.score_function: file /nope/reward.ts does not exist');

  const noExport = (await rejectionOf(loadRewardFunction(`${FIXTURE}:scroe`))).message;
  assert.match(noExport, /^worker\.reward\.score_function: .*my-reward\.ts has no export 'scroe' \(exports: (.*)\)$/);
  const listed = /\(exports: (.*)\)$/.exec(noExport)![1].split(', ').sort();
  assert.deepEqual(listed, ['default', 'lengthPenalty', 'notAReward', 'score']);

  assert.match(
    (await rejectionOf(loadRewardFunction(`${FIXTURE}:notAReward`))).message,
    /^worker\.reward\.score_function: export 'notAReward' of .*my-reward\.ts is neither a function nor a reward from defineReward/,
  );

  for (const bare of ['accuracy', 'toString', 'constructor', 'my_reward.py:score']) {
    assert.equal(
      (await rejectionOf(loadRewardFunction(bare))).message,
      `worker.reward.score_function: '${bare}' is neither a registered reward function (composite; add one with registerReward) nor a .ts/.js file with :export`,
    );
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-reward-'));
  fs.writeFileSync(path.join(dir, 'broken.ts'), 'export const score = (;\n');
  assert.match((await rejectionOf(loadRewardFunction('broken.ts:score', dir))).message, /^worker\.reward\.score_function: cannot load .*broken\.ts: /);
});
