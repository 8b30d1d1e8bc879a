/**
 * Why the onnxruntime trainer runs 2 replicas: one worker on 2 intra-op threads against two 1-thread
 * workers, each taking half of the micro-batch's rows at the same time (what the replicas do, without the
 * gradient exchange before every step, which update-step.ts includes). Default
 * policy, R rows x 117 tokens, the token-mean NLL (one gradient run per micro-batch); accumulate only, no
 * optimizer step. Alternating rounds; medians and bests.
 *
 *   node --import tsx bench/trainer-replicas.ts [--rows 16,64] [--rounds 12]
 */
import { parseArgs } from 'node:util';
import { initTf } from '../util/tf-backend.ts';
import { policyConfig } from '../models/config.ts';
import { initParams } from '../models/params.ts';
import { OrtTrainer } from '../models/trainer/ort-trainer.ts';
import { tokenMeanNll } from '../models/trainer/losses.ts';
import { benchRows } from './bench-rows.ts';

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '16,64' }, rounds: { type: 'string', default: '12' } } });
const ROUNDS = Number(args.rounds);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

await initTf();
const cfg = policyConfig({ seed: 1 });
const params = initParams(cfg);
const one = await OrtTrainer.create(cfg, params, {}, { replicas: 1, threads: 2 });
const halves = [await OrtTrainer.create(cfg, params, {}, { replicas: 1, threads: 1 }), await OrtTrainer.create(cfg, params, {}, { replicas: 1, threads: 1 })];
console.log('accumulate of one micro-batch (NLL), default policy, R rows x 117 tokens: median / best ms');
for (const R of args.rows.split(',').map(Number)) {
  const all = benchRows(cfg, 0, R);
  const parts = [benchRows(cfg, 0, R >> 1), benchRows(cfg, R >> 1, R)];
  const t1: number[] = [];
  const t2: number[] = [];
  for (let k = 0; k < ROUNDS + 2; k++) {
    let t = performance.now();
    await one.accumulate(all, tokenMeanNll);
    if (k >= 2) t1.push(performance.now() - t);
    await one.zeroGrad();
    t = performance.now();
    await Promise.all(halves.map((h, i) => h.accumulate(parts[i], tokenMeanNll)));
    if (k >= 2) t2.push(performance.now() - t);
    await Promise.all(halves.map((h) => h.zeroGrad()));
  }
  console.log(
    `R ${R}: one trainer, 2 threads ${median(t1).toFixed(1)} / ${Math.min(...t1).toFixed(1)}; two 1-thread trainers on half the rows each ${median(t2).toFixed(1)} / ${Math.min(...t2).toFixed(1)} (${(median(t1) / median(t2)).toFixed(2)}x)`,
  );
}
for (const t of [one, ...halves]) await t.close();
