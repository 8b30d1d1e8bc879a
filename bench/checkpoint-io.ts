/**
 * Checkpoint save and load speed against a plain write and read of the same bytes, side by side in one
 * run, and the training stall a save causes. The checkpoint is the default policy's (weights, AdamW
 * moments); the stall is measured on a short real run with a checkpoint every step.
 *
 *   node --import tsx bench/checkpoint-io.ts [repeats]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPolicyWeights } from '../storage/policy-weights.ts';
import { CheckpointStore, type Checkpoint } from '../storage/checkpoints.ts';
import { SHIPPED_WARM_START } from '../pipelines/train-config.ts';
import { runTrain } from '../pipelines/train.ts';

const repeats = Number(process.argv[2] ?? 5);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-ckpt-bench-'));
const start = await loadPolicyWeights(SHIPPED_WARM_START);
const copy = (p: Record<string, Float32Array>) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.slice()]));
const ckpt: Checkpoint = {
  kind: 'train',
  step: 1,
  policy: { config: start.config, params: start.params },
  optimizer: { step: 1, m: copy(start.params), v: copy(start.params) },
  samplers: [],
  state: { version: 1 },
};
const arrays = [...Object.values(ckpt.policy.params), ...Object.values(ckpt.optimizer.m), ...Object.values(ckpt.optimizer.v)];
const bytes = arrays.reduce((a, x) => a + x.byteLength, 0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const plainSave: number[] = [];
const plainLoad: number[] = [];
const save: number[] = [];
const load: number[] = [];
for (let r = 0; r < repeats; r++) {
  // plain: one file per array, written and fsynced, then read back
  const plain = path.join(dir, `plain-${r}`);
  let t = performance.now();
  fs.mkdirSync(plain);
  arrays.forEach((a, i) => {
    const f = path.join(plain, String(i));
    fs.writeFileSync(f, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    const fd = fs.openSync(f, 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  });
  plainSave.push(performance.now() - t);
  t = performance.now();
  arrays.forEach((_, i) => new Float32Array(fs.readFileSync(path.join(plain, String(i))).buffer.slice(0)));
  plainLoad.push(performance.now() - t);

  const store = new CheckpointStore(path.join(dir, `run-${r}`));
  t = performance.now();
  const saved = await store.save(ckpt);
  save.push(performance.now() - t);
  t = performance.now();
  await store.load(saved.name);
  load.push(performance.now() - t);
}
const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
console.log(`checkpoint of the default policy: ${(bytes / 1e6).toFixed(2)} MB of arrays (weights + AdamW m, v), median of ${repeats}`);
console.log(
  `save: ${median(save).toFixed(0)} ms (${mbps(median(save))} MB/s)   plain write+fsync: ${median(plainSave).toFixed(0)} ms (${mbps(median(plainSave))} MB/s)   ratio ${(median(save) / median(plainSave)).toFixed(2)}x`,
);
console.log(
  `load: ${median(load).toFixed(0)} ms (${mbps(median(load))} MB/s)   plain read: ${median(plainLoad).toFixed(0)} ms (${mbps(median(plainLoad))} MB/s)   ratio ${(median(load) / median(plainLoad)).toFixed(2)}x`,
);

// The stall: a short default-policy run with a checkpoint every step; the time the graph waits for the
// previous step's writes, against the step time.
const run = await runTrain(
  {
    data: { rollout_batch_size: 8 },
    trainer: { max_steps: 8, save_freq: 1, save_limit: 2, test_before_and_after: false, save_checkpoint_path: path.join(dir, 'stall') },
  },
  { quiet: true },
);
const steps = run.steps.slice(1); // the first step includes start-up
const wait = steps.reduce((a, s) => a + s.metrics['timing_s/save_wait'], 0);
const total = steps.reduce((a, s) => a + s.metrics['timing_s/step'], 0);
console.log(
  `stall: saving every step waits ${((1000 * wait) / steps.length).toFixed(1)} ms per step of ${((1000 * total) / steps.length).toFixed(0)} ms (${((100 * wait) / total).toFixed(1)}% of step time)`,
);
fs.rmSync(dir, { recursive: true, force: true });
