/** `papo eval`: held-out evaluation of saved weights with the onnxruntime engine (pipelines/evaluate.ts). */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { PolicyEngine } from '../models/engine/engine.ts';
import { loadPolicyWeights } from '../storage/policy-weights.ts';
import { createTask, type TaskConfig, type TaskName } from '../tasks/registry.ts';
import { evaluate, formatEvalReport } from '../pipelines/evaluate.ts';
import { checkSplit } from '../tasks/types.ts';
import { intOption, numberOption } from './config-file.ts';

interface EvalFlags {
  weights: string;
  task?: string;
  families?: string;
  manifest?: string;
  split: string;
  limit?: number;
  k: number;
  temperature: number;
  seed: number;
  json?: string;
  threads: number;
}

export function registerEvalCommand(program: Command): void {
  program
    .command('eval')
    .description('evaluate saved weights on a held-out split: accuracy per family and vision-dependency group, format rate, length, RL-signal fraction')
    .option('--weights <dir>', 'policy weights (a Zarr group written by papo sft)', 'runs/sft/weights')
    .option('--task <name>', 'digits | scenes | manifest (default: the task the weights were trained on, else digits)')
    .option('--manifest <file>', 'JSONL manifest of a user dataset (with --task manifest)')
    .option('--families <list>', 'comma-separated families (default: all)')
    .option('--split <name>', 'validation | test', 'test')
    .option('--limit <n>', 'evaluate the first n records (default: the whole split)', intOption('--limit'))
    .option('--k <n>', 'samples per prompt at --temperature (0: greedy only)', intOption('--k'), 4)
    .option('--temperature <x>', 'sampling temperature for the k samples', numberOption('--temperature'), 1)
    .option('--seed <n>', 'sampling seed', intOption('--seed'), 0)
    .option('--threads <n>', 'onnxruntime intra-op threads', intOption('--threads'), 2)
    .option('--json <file>', 'also write the full report as JSON')
    .action(async (f: EvalFlags) => {
      const saved = await loadPolicyWeights(f.weights);
      const trained = (saved.meta.task ?? {}) as Partial<TaskConfig>;
      const taskCfg: TaskConfig = { ...trained, task: (f.task ?? trained.task ?? 'digits') as TaskName };
      if (f.manifest) taskCfg.manifest = f.manifest;
      if (f.families) taskCfg.families = f.families.split(',').map((s) => s.trim()).filter(Boolean);
      else if (f.task && f.task !== trained.task) delete taskCfg.families;
      const task = createTask(taskCfg);
      const engine = await PolicyEngine.create(saved.config, { intraOpThreads: f.threads });
      try {
        await engine.setWeights(saved.params, Number(saved.meta.step ?? 0));
        const report = await evaluate(engine, task, { split: checkSplit(f.split), limit: f.limit, k: f.k, temperature: f.temperature, seed: f.seed });
        console.log(formatEvalReport(report));
        if (f.json) fs.writeFileSync(f.json, JSON.stringify(report, null, 2));
      } finally {
        await engine.close();
      }
    });
}
