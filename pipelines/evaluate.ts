/**
 * Evaluation on a held-out split, with the onnxruntime engine: greedy decoding, and k samples at
 * temperature 1 (what RL will see). Scores with the task's reward function and reports accuracy, format
 * rate and mean response length overall, per vision-dependency group (general vs vision-dependent, as the
 * paper reports) and per family, plus the fraction of prompts whose k samples are neither all right nor
 * all wrong: the groups that carry signal for GRPO.
 */
import type { PolicyEngine } from '../models/engine/engine.ts';
import { EOS_ID, PAD_ID, decode } from '../models/tokenizer.ts';
import { accuracyReport, type AccuracyReport } from '../tasks/accuracy-report.ts';
import { compositeReward } from '../tasks/rewards/composite.ts';
import { runReward, type RewardFailure } from '../tasks/rewards/runner.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import type { Split, Task, TaskRecord } from '../tasks/types.ts';
import { createProgress } from '../util/progress.ts';

export interface EvalOptions {
  split?: Split;
  /** Evaluate the first `limit` records of the split (in index order); default all. */
  limit?: number;
  /** Samples per prompt at `temperature`; 0 = greedy only. Default 4. */
  k?: number;
  temperature?: number;
  /** Prompts per engine call. Default 64. */
  batchSize?: number;
  seed?: number;
  reward?: RewardFunction;
  quiet?: boolean;
}

export interface GroupStats {
  n: number;
  formatRate: number;
  /** mean response length in tokens (EOS included) */
  meanLength: number;
}

export interface DecodingReport {
  accuracy: AccuracyReport;
  formatRate: number;
  /** mean response length in tokens (EOS included) */
  meanLength: number;
  /** responses that hit the length limit without EOS */
  truncatedRate: number;
  /** format rate and mean length for 'overall', 'vision-dependent', 'general' and each family */
  groups: Record<string, GroupStats>;
}

export interface EvalReport {
  task: string;
  split: Split;
  records: number;
  policyVersion: number | undefined;
  greedy: DecodingReport;
  sampled?: DecodingReport & {
    k: number;
    temperature: number;
    /** prompts whose k samples are neither all right nor all wrong */
    mixedFraction: number;
    /** prompts with at least one right sample */
    passAtK: number;
  };
  rewardFailures: RewardFailure[];
  seconds: number;
  /** Three example responses (greedy), for a person to look at. */
  examples: { id: string; question: string; answer: string; response: string }[];
}

/** Response text of generated tokens: EOS and anything after it dropped. */
export function responseText(tokens: ArrayLike<number>): string {
  const ids: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === EOS_ID || tokens[i] === PAD_ID) break;
    ids.push(tokens[i]);
  }
  return decode(ids);
}

interface Scored {
  record: TaskRecord;
  accuracy: number;
  format: number;
  length: number;
  finished: boolean;
}

function groupStats(items: Scored[]): Record<string, GroupStats> {
  const acc = new Map<string, { n: number; format: number; length: number }>();
  const add = (k: string, s: Scored) => {
    const a = acc.get(k) ?? { n: 0, format: 0, length: 0 };
    a.n++;
    a.format += s.format;
    a.length += s.length;
    acc.set(k, a);
  };
  for (const s of items) {
    add('overall', s);
    add(s.record.visionDependency === 'high' ? 'vision-dependent' : 'general', s);
    add(s.record.family, s);
  }
  const out: Record<string, GroupStats> = {};
  for (const [k, a] of acc) out[k] = { n: a.n, formatRate: a.format / a.n, meanLength: a.length / a.n };
  return out;
}

function summarise(items: Scored[]): DecodingReport {
  const n = Math.max(items.length, 1);
  return {
    groups: groupStats(items),
    accuracy: accuracyReport(items.map((s) => ({ family: s.record.family, visionDependency: s.record.visionDependency, accuracy: s.accuracy }))),
    formatRate: items.reduce((a, s) => a + s.format, 0) / n,
    meanLength: items.reduce((a, s) => a + s.length, 0) / n,
    truncatedRate: items.reduce((a, s) => a + (s.finished ? 0 : 1), 0) / n,
  };
}

export async function evaluate(engine: PolicyEngine, task: Task, opts: EvalOptions = {}): Promise<EvalReport> {
  const split = opts.split ?? 'test';
  const total = Math.min(opts.limit ?? Infinity, task.size(split));
  const k = opts.k ?? 4;
  const temperature = opts.temperature ?? 1;
  const batchSize = opts.batchSize ?? 64;
  const seed = opts.seed ?? 0;
  const reward = opts.reward ?? compositeReward();
  if (!(total > 0)) throw new Error(`evaluate: split ${split} of ${task.name} has no records`);
  const t0 = performance.now();
  const greedy: Scored[] = [];
  const sampled: Scored[] = [];
  const perPromptRight: number[] = [];
  const failures: RewardFailure[] = [];
  const progress = createProgress(`eval ${split}`, total, { quiet: opts.quiet });

  const score = async (records: TaskRecord[], responses: { tokens: Int32Array; length: number; finished: boolean }[], out: Scored[]) => {
    const texts = responses.map((r) => responseText(r.tokens));
    const run = await runReward(
      reward,
      texts.map((response, i) => ({ id: records[i].id, response, answer: records[i].answer, question: records[i].question, family: records[i].family, meta: records[i].meta })),
    );
    failures.push(...run.failures);
    run.results.forEach((r, i) => out.push({ record: records[i], accuracy: r.accuracy, format: r.format, length: responses[i].length, finished: responses[i].finished }));
    return texts;
  };

  const examples: EvalReport['examples'] = [];
  for (let start = 0; start < total; start += batchSize) {
    const records = Array.from({ length: Math.min(batchSize, total - start) }, (_, i) => task.recordAt(split, start + i));
    const images = records.map((r) => r.image);
    const prompts = records.map((r) => r.question);
    const g = await engine.sample({ images, prompts, n: 1, temperature: 0, seed });
    const texts = await score(records, g.responses, greedy);
    for (let i = 0; i < records.length && examples.length < 3; i++) {
      examples.push({ id: records[i].id, question: records[i].question, answer: records[i].answer, response: texts[i] });
    }
    if (k > 0) {
      const s = await engine.sample({ images, prompts, n: k, temperature, seed: seed + 1 + start });
      const expanded = s.responses.map((r) => records[r.promptIndex]);
      const before = sampled.length;
      await score(expanded, s.responses, sampled);
      for (let p = 0; p < records.length; p++) {
        let right = 0;
        for (let j = 0; j < k; j++) right += sampled[before + p * k + j].accuracy >= 1 ? 1 : 0;
        perPromptRight.push(right);
      }
    }
    progress.update(start + records.length);
  }
  progress.stop();

  const report: EvalReport = {
    task: task.name,
    split,
    records: total,
    policyVersion: engine.version,
    greedy: summarise(greedy),
    rewardFailures: failures,
    seconds: (performance.now() - t0) / 1000,
    examples,
  };
  if (k > 0) {
    report.sampled = {
      ...summarise(sampled),
      k,
      temperature,
      mixedFraction: perPromptRight.filter((r) => r > 0 && r < k).length / perPromptRight.length,
      passAtK: perPromptRight.filter((r) => r > 0).length / perPromptRight.length,
    };
  }
  return report;
}

const pct = (x: number | null) => (x === null ? '   -  ' : `${(100 * x).toFixed(1).padStart(5)}%`);

/** A plain-text table of a report. */
export function formatEvalReport(r: EvalReport): string {
  const lines: string[] = [];
  lines.push(`${r.task} / ${r.split}: ${r.records} prompts, policy version ${r.policyVersion ?? '-'}, ${r.seconds.toFixed(1)} s`);
  const s = r.sampled;
  lines.push(`${'group'.padEnd(22)} ${'n'.padStart(5)}  greedy: acc  format  length${s ? `   sampled (k=${s.k}, T=${s.temperature}): acc  format  length` : ''}`);
  const stats = (g: GroupStats | undefined) => (g ? `${pct(g.formatRate)} ${g.meanLength.toFixed(1).padStart(6)}` : '');
  const row = (name: string, key: string, g: { n: number; accuracy: number | null }, sm?: { accuracy: number | null }) =>
    lines.push(
      `${name.padEnd(22)} ${String(g.n).padStart(5)}       ${pct(g.accuracy)} ${stats(r.greedy.groups[key])}` +
        (s ? `                          ${pct(sm?.accuracy ?? null)} ${stats(s.groups[key])}` : ''),
    );
  row('overall', 'overall', r.greedy.accuracy.overall, s?.accuracy.overall);
  row('vision-dependent', 'vision-dependent', r.greedy.accuracy.visionDependent, s?.accuracy.visionDependent);
  row('general', 'general', r.greedy.accuracy.general, s?.accuracy.general);
  for (const [fam, cell] of Object.entries(r.greedy.accuracy.byFamily).sort()) row(`  ${fam}`, fam, cell, s?.accuracy.byFamily[fam]);
  lines.push(`greedy: format ${pct(r.greedy.formatRate)}, mean length ${r.greedy.meanLength.toFixed(1)} tokens, truncated ${pct(r.greedy.truncatedRate)}`);
  if (s) {
    lines.push(`sampled: format ${pct(s.formatRate)}, mean length ${s.meanLength.toFixed(1)}, pass@${s.k} ${pct(s.passAtK)}, prompts with mixed outcomes (RL signal) ${pct(s.mixedFraction)}`);
  }
  if (r.rewardFailures.length) lines.push(`reward failures: ${r.rewardFailures.length} (first: ${r.rewardFailures[0].id}: ${r.rewardFailures[0].reason})`);
  for (const e of r.examples) lines.push(`example ${e.id}: "${e.question}" -> ${JSON.stringify(e.response)} (answer ${e.answer})`);
  return lines.join('\n');
}
