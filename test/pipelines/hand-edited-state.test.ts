/**
 * A checkpoint whose state was edited by hand (its step, its data cursor, its optimizer's step count) is
 * refused on resume with the checkpoint named, instead of continuing a run that was never saved.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runTrain } from '../../pipelines/train.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { tinyPolicyInTmp, tinyRunOverrides } from './tiny-run.ts';

let tmp: string;
let saved: string;
before(async () => {
  let weights: string;
  ({ tmp, weights } = await tinyPolicyInTmp('papo-hand-edited-'));
  saved = path.join(tmp, 'saved');
  await runTrain(trainInputFromArgs({}, tinyRunOverrides(weights, saved, 2)), { quiet: true });
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of the saved run with `edit` applied to the text of one of its checkpoint's zarr.json files. */
function edited(name: string, file: string, edit: (text: string) => string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(saved, dir, { recursive: true });
  const f = path.join(dir, 'checkpoints', 'step_000002', file);
  const text = fs.readFileSync(f, 'utf8');
  const changed = edit(text);
  assert.notEqual(changed, text, 'the edit applies');
  fs.writeFileSync(f, changed);
  return dir;
}

const resume = (dir: string) => runTrain(trainInputFromArgs({ resume: dir }, ['trainer.max_steps=3']), { quiet: true, resumeOnly: true });

test('a step that disagrees with its directory', async () => {
  const dir = edited('step', 'zarr.json', (t) => t.replace('"step": 2,', '"step": 5,'));
  await assert.rejects(resume(dir), /step_000002: the checkpoint says step 5 but its directory is of step 2/);
});

test('a data cursor moved back before the prompts its steps consumed', async () => {
  const dir = edited('cursor', 'zarr.json', (t) => t.replace('"position": 8', '"position": 3'));
  await assert.rejects(
    resume(dir),
    /step_000002: the checkpoint's data cursor \(epoch 0, position 3\) has consumed 3 prompts, fewer than its 2 steps of 4 took/,
  );
});

test('an optimizer that took more steps than the run could', async () => {
  const dir = edited('optimizer', path.join('optimizer', 'zarr.json'), (t) => t.replace('"step": 4', '"step": 40'));
  await assert.rejects(resume(dir), /the checkpoint's optimizer has taken 40 steps, more than 2 rollout steps can take \(2 each at most\)/);
});

test('the unedited checkpoint resumes', async () => {
  const dir = path.join(tmp, 'intact');
  fs.cpSync(saved, dir, { recursive: true });
  await resume(dir);
  assert.ok(fs.existsSync(path.join(dir, 'checkpoints', 'step_000003')));
});
