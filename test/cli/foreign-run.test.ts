/**
 * A run directory from elsewhere is untrusted input: its config.json cannot let its manifest read outside
 * the manifest's directory for `papo replay` / `papo rollouts` (only the reader's flag can), a file given as
 * its manifest is never echoed, and a malformed saved config is named as the file it is.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { runTrain } from '../../pipelines/train.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { replayRun } from '../../pipelines/replay.ts';
import { writeRolloutSheet } from '../../pipelines/rollout-sheet.ts';
import type { ImageReadingOptions } from '../../pipelines/train-config.ts';
import { tinyPolicyInTmp, tinyRunOverrides } from '../pipelines/tiny-run.ts';

const papo = (args: string[]) =>
  spawnSync(process.execPath, ['bin/papo.js', ...args], { encoding: 'utf8', env: { ...process.env, PAPO_DEBUG: '', PAPO_LOG_LEVEL: '' } });

let tmp: string;
let saved: string;
before(async () => {
  let weights: string;
  ({ tmp, weights } = await tinyPolicyInTmp('papo-foreign-run-'));
  saved = path.join(tmp, 'saved');
  await runTrain(trainInputFromArgs({}, tinyRunOverrides(weights, saved, 1)), { quiet: true });
  fs.writeFileSync(path.join(tmp, 'secret'), 'root:$6$hunter2salt$hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n');
  const png = new PNG({ width: 56, height: 28 });
  png.data.fill(255);
  fs.writeFileSync(path.join(tmp, 'outside.png'), PNG.sync.write(png));
  fs.mkdirSync(path.join(tmp, 'data'));
  fs.writeFileSync(path.join(tmp, 'data', 'm.jsonl'), `${JSON.stringify({ image: '../outside.png', question: 'What is 1?', answer: '1' })}\n`);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A copy of the saved run whose config.json has `edit` applied. */
function foreign(name: string, edit: (cfg: Record<string, Record<string, unknown>>) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(saved, dir, { recursive: true });
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(cfg);
  fs.writeFileSync(file, JSON.stringify(cfg));
  return dir;
}

const manifestRun = (name: string, manifest: string) =>
  foreign(name, (c) => {
    c.data.task = 'manifest';
    c.data.manifest = manifest;
    c.data.allow_outside_manifest_dir = true;
    c.data.max_image_bytes = 2 ** 40;
  });

/** What a reader command says of a run directory: its error message, or '' when it succeeded. */
async function said(cmd: 'replay' | 'rollouts', dir: string, images: ImageReadingOptions = {}): Promise<string> {
  try {
    if (cmd === 'replay') await replayRun(dir, 1, images);
    else await writeRolloutSheet(dir, { step: 1, images, out: path.join(dir, 'sheet.png') });
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

test('a foreign config naming a file that is not a manifest: refused without echoing a line of it', async () => {
  const dir = manifestRun('run-secret', path.join(tmp, 'secret'));
  for (const cmd of ['replay', 'rollouts'] as const) {
    const message = await said(cmd, dir);
    assert.match(message, /secret:1: malformed JSON \(each line must be one JSON object\)/, cmd);
    assert.doesNotMatch(message, /hunter2|root:|daemon/, cmd);
  }
});

test("a foreign config's allow_outside_manifest_dir is ignored: only the reader's flag lets images out", async () => {
  const dir = manifestRun('outside', path.join(tmp, 'data', 'm.jsonl'));
  for (const cmd of ['replay', 'rollouts'] as const) {
    assert.match(await said(cmd, dir), /image path "\.\.\/outside\.png" leaves the manifest's directory/, cmd);
    assert.doesNotMatch(await said(cmd, dir, { allowOutsideManifestDir: true }), /leaves the manifest's directory/, cmd);
  }
});

test('the reader commands take the flags that confine a manifest', () => {
  for (const cmd of ['replay', 'rollouts']) {
    const help = papo([cmd, '--help']).stdout;
    for (const flag of ['--allow-outside-manifest-dir', '--max-image-bytes', '--max-image-pixels']) assert.match(help, new RegExp(flag), `${cmd} ${flag}`);
  }
});

test('--resume of a run whose saved config is malformed names config.json and the key', () => {
  const dir = foreign('preset', (c) => {
    c.algorithm.preset = 5;
  });
  assert.throws(() => trainInputFromArgs({ resume: dir }, []), /--resume: .*config\.json: invalid run config: algorithm\.preset/);
});
