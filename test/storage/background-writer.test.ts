/** BackgroundWriter: writes in a worker thread, in order; a failed write names itself and the writer goes on; close. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { policyConfig } from '../../models/config.ts';
import { initParams } from '../../models/params.ts';
import { BackgroundWriter } from '../../storage/background-writer.ts';
import { CheckpointStore, type Checkpoint } from '../../storage/checkpoints.ts';

const cfg = policyConfig({ dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 8, maxResponseLen: 8, seed: 3 });

function checkpoint(step: number): Checkpoint {
  return {
    kind: 'train',
    step,
    policy: { config: cfg, params: initParams(cfg, step) },
    optimizer: { step, m: initParams(cfg, step + 100), v: initParams(cfg, step + 200) },
    samplers: [],
    state: { version: step, metrics: { 'val-core/accuracy/overall': step / 10 } },
  };
}

test('checkpoints are written in order with retention; a failed write rejects naming the call, later writes go on; close', async () => {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-writer-'));
  const writer = new BackgroundWriter();
  try {
    const saves = [1, 2, 3].map((step) => writer.saveCheckpoint(run, checkpoint(step), { keepLast: 2, higherIsBetter: true }));
    const blocked = path.join(run, 'a-file');
    fs.writeFileSync(blocked, 'not a directory');
    const failed = writer.saveCheckpoint(blocked, checkpoint(4));
    const later = writer.saveCheckpoint(run, checkpoint(5), { keepLast: 2, higherIsBetter: true });
    const done = await Promise.all(saves);
    assert.deepEqual(
      done.map((s) => [s.name, s.removed]),
      [
        ['step_000001', []],
        ['step_000002', []],
        ['step_000003', ['step_000001']],
      ],
    );
    await assert.rejects(failed, /^Error: saveCheckpoint: .*a-file/);
    assert.deepEqual((await later).removed, ['step_000002']);
    assert.equal(await new CheckpointStore(run).latest(), 'step_000005');
    const closing = writer.close();
    await assert.rejects(writer.saveCheckpoint(run, checkpoint(6)), { message: 'saveCheckpoint: storage writer is closed' });
    await closing;
  } finally {
    await writer.close();
    fs.rmSync(run, { recursive: true, force: true });
  }
});
