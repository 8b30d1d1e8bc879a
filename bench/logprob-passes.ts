/**
 * The teacher-forced passes of a default step, full vs shared prefix: the warm-start policy scores 32 prompts
 * x 8 sampled responses (the default rollout batch) with `logProbs`, with and without `sharePrefix`, in this
 * thread (the engine's runner without its worker), 2 onnxruntime threads. Prints the CPU-seconds and wall
 * seconds of each (medians of interleaved rounds) and the largest difference of the log-probs.
 *
 *   node --import tsx bench/logprob-passes.ts [--rounds 5]
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { OrtPolicyRunner } from '../models/engine/runner.ts';
import { packWeights } from '../models/engine/weights.ts';
import { loadWarmStart } from '../storage/warm-start.ts';
import { createTask } from '../tasks/registry.ts';
import { RecordStream } from '../tasks/stream.ts';
import type { TaskRecord } from '../tasks/types.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const { config, params } = await loadWarmStart();
const runner = await OrtPolicyRunner.create(config, { intraOpThreads: 2 });
runner.setWeights(packWeights(config, params, 0));
const stream = RecordStream.open(createTask({ task: 'digits' }), { split: 'train', seed: 1 });
const records = Array.from({ length: 32 }, () => stream.next().value as TaskRecord);
const G = 8;
const s = await runner.sample({ images: records.map((r) => r.image), prompts: records.map((r) => r.question), n: G, temperature: 0.7, seed: 1 });
const req = {
  images: s.responses.map((r) => records[r.promptIndex].image),
  prompts: s.responses.map((r) => records[r.promptIndex].question),
  responses: s.responses.map((r) => r.tokens),
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const times: Record<string, { cpu: number[]; wall: number[] }> = { full: { cpu: [], wall: [] }, shared: { cpu: [], wall: [] } };
let maxDiff = 0;
for (let round = 0; round < Number(args.rounds); round++) {
  const out: Record<string, Float32Array[]> = {};
  for (const mode of ['full', 'shared'] as const) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    out[mode] = (await runner.logProbs({ ...req, sharePrefix: mode === 'shared' })).logprobs;
    const c = process.cpuUsage(c0);
    times[mode].wall.push((performance.now() - t0) / 1000);
    times[mode].cpu.push((c.user + c.system) / 1e6);
  }
  out.full.forEach((row, i) => row.forEach((x, t) => (maxDiff = Math.max(maxDiff, Math.abs(x - out.shared[i][t])))));
}
console.log(
  `${req.responses.length} rows (32 prompts x ${G}), ${s.tokens} response tokens; load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
for (const [mode, t] of Object.entries(times))
  console.log(`${mode.padEnd(8)} cpu ${median(t.cpu).toFixed(3)} s  wall ${median(t.wall).toFixed(3)} s (medians of ${t.cpu.length})`);
console.log(`shared / full: cpu ${(median(times.shared.cpu) / median(times.full.cpu)).toFixed(2)}x; max |log-prob difference| ${maxDiff.toExponential(2)}`);
await runner.release();
