/**
 * No write through links: a symbolic link planted under the name of any file a command writes in a run
 * directory (log.jsonl, metrics.jsonl, config.json, checkpoints and their `latest`, rollouts, tensorboard
 * event files, weights, report.html / .png, rollouts-step_N.png) is refused or replaced, never followed:
 * its target is left as it was. Only an output the user named (`--out`) is written as named.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTf } from '../../util/tf-backend.ts';
import { createLogger } from '../../util/logger.ts';
import { runTrain } from '../../pipelines/train.ts';
import { runSft } from '../../pipelines/sft.ts';
import { writeReport } from '../../pipelines/report.ts';
import { writeRolloutSheet } from '../../pipelines/rollout-sheet.ts';
import { RUN_FILES } from '../../pipelines/run-dir.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

let tmp: string;
let weights: string;
let victims: string;
before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-links-'));
  victims = path.join(tmp, 'elsewhere');
  fs.mkdirSync(victims);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(run: string, steps: number, resume: 'auto' | 'disable' = 'auto'): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    worker: { actor: { model: { model_path: weights }, global_batch_size: 2 }, rollout: { n: 2, threads: 1 } },
    trainer: { max_steps: steps, save_freq: 1, save_limit: 0, test_before_and_after: false, save_checkpoint_path: run, resume_mode: resume },
  };
}

/** A file (or a directory holding one) outside every run, and a check that it is as it was. */
function victim(name: string, dir = false): { target: string; intact: () => void } {
  const target = path.join(victims, name);
  const file = dir ? path.join(target, 'inside') : target;
  if (dir) fs.mkdirSync(target);
  fs.writeFileSync(file, `precious ${name}`);
  return {
    target,
    intact: () => {
      assert.equal(fs.readFileSync(file, 'utf8'), `precious ${name}`, `${name} unchanged`);
      if (dir) assert.deepEqual(fs.readdirSync(target), ['inside'], `nothing written into ${name}`);
    },
  };
}

const isFile = (p: string) => fs.lstatSync(p).isFile();

test('a new run (with or without --force), a resume_mode=auto start and papo sft refuse a run file or directory that is a link, naming it', async () => {
  for (const f of RUN_FILES) {
    const run = path.join(tmp, `new-${f}`);
    fs.mkdirSync(run);
    const v = victim(`new-${f}`, !f.includes('.'));
    fs.symlinkSync(v.target, path.join(run, f));
    for (const [resume, force] of [
      ['disable', false],
      ['disable', true],
      ['auto', true],
    ] as const) {
      await assert.rejects(runTrain(config(run, 1, resume), { quiet: true, force }), new RegExp(`${f.replace('.', '\\.')} is a symbolic link: .*remove it`));
      v.intact();
    }
    await assert.rejects(runSft({ trainer: { save_checkpoint_path: run, max_steps: 1 } }, { quiet: true }), /is a symbolic link/);
    v.intact();
    assert.ok(!fs.existsSync(path.join(run, '.lock')));
  }
  // the appending log opens its file without following a link, whoever calls it
  const v = victim('log');
  const link = path.join(tmp, 'log-link.jsonl');
  fs.symlinkSync(v.target, link);
  assert.throws(() => createLogger(link), /log-link\.jsonl is a symbolic link: papo appends only to files of its own/);
  v.intact();
});

test('a resumed run replaces or refuses links planted in its directory; report and rollouts replace theirs', { timeout: 120_000 }, async () => {
  const run = path.join(tmp, 'run');
  await runTrain(config(run, 2), { quiet: true });

  // top-level files: the resume refuses, and leaves the target alone
  for (const f of ['log.jsonl', 'metrics.jsonl', 'config.json']) {
    const v = victim(`resume-${f}`);
    fs.renameSync(path.join(run, f), path.join(tmp, 'aside'));
    fs.symlinkSync(v.target, path.join(run, f));
    await assert.rejects(runTrain(config(run, 3), { quiet: true }), /is a symbolic link/);
    v.intact();
    fs.rmSync(path.join(run, f));
    fs.renameSync(path.join(tmp, 'aside'), path.join(run, f));
  }

  // inside its directories: replaced by files of its own, or left aside; the targets are untouched
  const planted = {
    latest: [victim('latest'), path.join(run, 'checkpoints', 'latest')],
    events: [victim('events'), path.join(run, 'tensorboard', 'events.out.tfevents.1.planted.1')],
    step: [victim('rollout-step', true), path.join(run, 'rollouts', 'step_000003')],
    unfinished: [victim('unfinished', true), path.join(run, 'checkpoints', 'step_000003.tmp-1-deadbeef')],
    checkpoint: [victim('checkpoint', true), path.join(run, 'checkpoints', 'step_000003')],
  } as const;
  for (const [v, at] of Object.values(planted)) {
    fs.rmSync(at, { force: true, recursive: true });
    fs.symlinkSync(v.target, at);
  }
  const r = await runTrain(config(run, 3), { quiet: true });
  assert.equal(r.resumedFrom, 2);
  for (const [v] of Object.values(planted)) v.intact();
  assert.ok(isFile(path.join(run, 'checkpoints', 'latest')), 'latest is a file again');
  assert.equal(fs.readFileSync(path.join(run, 'checkpoints', 'latest'), 'utf8').trim(), 'step_000003-2', 'the planted name is not taken');
  assert.ok(fs.lstatSync(path.join(run, 'rollouts', 'step_000003')).isDirectory(), 'the rollout step is a directory of its own');

  // papo report / papo rollouts with their default outputs: each link is replaced by a new file
  const first = await writeReport([run], { out: path.join(run, 'report.html') });
  const outputs = [first.html, ...first.pngs];
  const reportVictims = outputs.map((o) => {
    const v = victim(`report-${path.basename(o)}`);
    fs.rmSync(o);
    fs.symlinkSync(v.target, o);
    return v;
  });
  await writeReport([run], { out: path.join(run, 'report.html') });
  for (const v of reportVictims) v.intact();
  for (const o of outputs) assert.ok(isFile(o), `${path.basename(o)} is a file of its own`);

  const sheet = path.join(run, 'rollouts-step_000001.png');
  const sv = victim('sheet');
  fs.symlinkSync(sv.target, sheet);
  const s = await writeRolloutSheet(run, { step: 1 });
  assert.equal(s.out, sheet);
  sv.intact();
  assert.ok(isFile(sheet));

  // an output the user named is written as named, through a link the user made
  const named = path.join(tmp, 'named.html');
  const target = path.join(victims, 'mine.html');
  fs.writeFileSync(target, '');
  fs.symlinkSync(target, named);
  await writeReport([run], { out: named, png: false, followOut: true });
  assert.match(fs.readFileSync(target, 'utf8'), /^<!doctype html>/);
  assert.ok(fs.lstatSync(named).isSymbolicLink());
});
