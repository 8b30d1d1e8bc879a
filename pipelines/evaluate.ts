/**
 * Evaluation on a held-out split, with the onnxruntime engine: greedy decoding, and k samples at
 * temperature 1 (what RL will see). Scores with the task's reward function and reports accuracy, format
 * rate and mean response length overall, per vision-dependency group (general vs vision-dependent, as the
 * paper reports) and per family, plus the fraction of prompts whose k samples are neither all right nor
 * all wrong: the groups that carry signal for GRPO. With `errors`, each greedy failure is classified as
 * format / perception / reasoning / calculation / inconsistency / unclassified (tasks/error-taxonomy.ts).
 */
import { lastValueFrom, map, tap, type Observable } from 'rxjs';
import { CreditGate } from '../operators/credit-gate.ts';
import { promptBatches } from '../operators/prompt-batches.ts';
import { sampleGroups } from '../operators/sample-groups.ts';
import { scoreRewards } from '../operators/score-rewards.ts';
import type { PromptBatch, RolloutEngine, SampledGroups, ScoredBatch, ScoredGroups } from '../operators/types.ts';
import { accuracyReport, sumByGroup, type AccuracyReport, type GroupSums } from '../tasks/accuracy-report.ts';
import { classifyFailure, ERROR_CLASSES, errorTable, type ErrorClass, type ErrorTable } from '../tasks/error-taxonomy.ts';
import { compositeReward } from '../tasks/rewards/composite.ts';
import type { RewardFailure, RewardScorer } from '../tasks/rewards/runner.ts';
import type { RewardFunction } from '../tasks/rewards/types.ts';
import { RecordStream } from '../tasks/stream.ts';
import type { Split, Task, TaskRecord, VisionDependency } from '../tasks/types.ts';
import { createProgress } from '../util/progress.ts';
import { describeKinds, failureKinds } from './reward-failures.ts';

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
  /** Default the paper's composite reward; a scorer is the reward workers of a run (tasks/rewards/pool.ts). */
  reward?: RewardFunction | RewardScorer;
  quiet?: boolean;
  /** Classify every greedy failure (accuracy < 1 from `reward`) by the task's `classifyError`: the report's `errors`. */
  errors?: boolean;
  /** Greedy responses kept as the report's `examples`, the first records' (default 3). */
  examples?: number;
}

/** A greedy failure shown as an example of its class. */
export interface ErrorExample {
  id: string;
  question: string;
  answer: string;
  response: string;
  detail?: string;
}

/** The error taxonomy of the greedy responses: failures by class per group, with examples. */
export interface ErrorReport extends ErrorTable {
  /** each record's class in record order, null for a right response: to compare two policies on the same prompts */
  perRecord: (ErrorClass | null)[];
  /** up to three failures per class, the first in record order */
  examples: Record<ErrorClass, ErrorExample[]>;
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
  /** each evaluated family's vision dependency ('high': the answer needs the image) */
  familyDependency: Record<string, VisionDependency>;
  records: number;
  policyVersion: number | undefined;
  greedy: DecodingReport & {
    /** accuracy of each record's greedy response, in record order: for paired comparisons of two policies */
    perRecord: number[];
  };
  sampled?: DecodingReport & {
    k: number;
    temperature: number;
    /** prompts whose k samples are neither all right nor all wrong */
    mixedFraction: number;
    /** prompts with at least one right sample */
    passAtK: number;
  };
  /** the reward that scored the responses (its name) */
  reward: string;
  /** reward calls, greedy and sampled: what `rewardFailures` is out of */
  rewardCalls: number;
  /** the calls that failed (each scored 0: it counts as a wrong response), in order */
  rewardFailures: RewardFailure[];
  seconds: number;
  /** Example responses (greedy) of the first records, three unless `examples` says, for a person to look at; `score` is the reward's overall. */
  examples: { id: string; question: string; answer: string; response: string; score: number }[];
  /** With `errors`: why the greedy responses that failed failed (tasks/error-taxonomy.ts). */
  errors?: ErrorReport;
}

interface Scored {
  record: TaskRecord;
  accuracy: number;
  format: number;
  length: number;
  finished: boolean;
}

function groupStats(items: Scored[]): Record<string, GroupStats> {
  const groups = sumByGroup(
    items.map((s) => ({ family: s.record.family, visionDependency: s.record.visionDependency, format: s.format, length: s.length })),
    (s) => ({ format: s.format, length: s.length }),
  );
  const out: Record<string, GroupStats> = {};
  const named: [string, GroupSums<'format' | 'length'>][] = [
    ['overall', groups.overall],
    ['vision-dependent', groups.visionDependent],
    ['general', groups.general],
    ...Object.entries(groups.byFamily),
  ];
  for (const [k, g] of named) if (g.n > 0) out[k] = { n: g.n, formatRate: g.sums.format / g.n, meanLength: g.sums.length / g.n };
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

/** What the report needs of one decoding pass over a batch (the stage fields it reads). */
type Pass = Pick<SampledGroups, 'groupSize' | 'responses' | 'texts' | 'finished'> & Pick<ScoredGroups, 'rewards' | 'accuracy' | 'format' | 'rewardFailures'>;

const passOf = (b: ScoredBatch): Pass => ({
  groupSize: b.groupSize,
  responses: b.responses,
  texts: b.texts,
  finished: b.finished,
  rewards: b.rewards,
  accuracy: b.accuracy,
  format: b.format,
  rewardFailures: b.rewardFailures,
});

const promptOf = ({ step, rounds, records, indices, cursor, seed, timing }: PromptBatch): PromptBatch => ({
  step,
  rounds,
  records,
  indices,
  cursor,
  seed,
  timing,
});

interface EvalBatch {
  step: number;
  records: readonly TaskRecord[];
  greedy: Pass;
  sampled?: Pass;
}

/** The first `n` records of a split as a task of their own, so a stream over it ends exactly at `n`. */
function firstRecords(task: Task, split: Split, n: number): Task {
  return {
    name: task.name,
    imageHeight: task.imageHeight,
    imageWidth: task.imageWidth,
    families: task.families,
    fingerprint: `${task.fingerprint}/${split}[:${n}]`,
    size: (s) => (s === split ? n : task.size(s)),
    recordAt: (s, i) => task.recordAt(s, i),
  };
}

/**
 * The graph: promptBatches -> sampleGroups (greedy) -> scoreRewards -> sampleGroups (k samples) ->
 * scoreRewards -> summary, the same stages RL training samples and scores with.
 */
export async function evaluate(engine: Pick<RolloutEngine, 'sample' | 'version'>, task: Task, opts: EvalOptions = {}): Promise<EvalReport> {
  const split = opts.split ?? 'test';
  const total = Math.min(opts.limit ?? Infinity, task.size(split));
  const k = opts.k ?? 4;
  const temperature = opts.temperature ?? 1;
  const batchSize = opts.batchSize ?? 64;
  const seed = opts.seed ?? 0;
  const reward = opts.reward ?? compositeReward();
  if (!(Number.isInteger(k) && k >= 0)) throw new Error(`evaluate: k must be an integer >= 0 (0: greedy only), got ${k}`);
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit > 0))
    throw new Error(`evaluate: limit must be a positive integer, got ${opts.limit}`);
  if (!(total > 0)) throw new Error(`evaluate: split ${split} of ${task.name} has no records`);
  const t0 = performance.now();
  const stream = RecordStream.open(firstRecords(task, split, total), { split, shuffle: false, epochs: 1 });
  // The weights do not change during evaluation, so staleness cannot arise: two batches in flight let one
  // be scored while the next is sampled, and bound memory to two batches.
  const gate = new CreditGate({ maxInflight: 2, maxStaleness: 1 });
  // Step s (1-based) carries records [(s - 1) * batchSize, s * batchSize) of the split.
  const offsetOf = (b: { step: number }) => (b.step - 1) * batchSize;

  const greedy$ = promptBatches(stream, { batchSize, grants: gate.grants$, seed }).pipe(
    sampleGroups(engine, { n: 1, temperature: 0, seedOf: () => seed }),
    scoreRewards(reward),
    // Only the prompts and the greedy pass go on, so the sampled pass's stages add their fields afresh.
    map((b) => ({ ...promptOf(b), greedy: passOf(b) })),
  );
  const batches$: Observable<EvalBatch> =
    k > 0
      ? greedy$.pipe(
          sampleGroups(engine, { n: k, temperature, seedOf: (b) => seed + 1 + offsetOf(b) }),
          scoreRewards(reward),
          map((b) => ({ step: b.step, records: b.records, greedy: b.greedy, sampled: passOf(b) })),
        )
      : greedy$;

  const greedy: Scored[] = [];
  const sampled: Scored[] = [];
  const perPromptRight: number[] = [];
  const failures: RewardFailure[] = [];
  const examples: EvalReport['examples'] = [];
  const errorClasses: (ErrorClass | null)[] = [];
  const errorExamples = Object.fromEntries(ERROR_CLASSES.map((c) => [c, []])) as unknown as ErrorReport['examples'];
  const scored = (records: readonly TaskRecord[], p: Pass): Scored[] =>
    p.texts.map((_, i) => ({
      record: records[Math.floor(i / p.groupSize)],
      accuracy: p.accuracy[i],
      format: p.format[i],
      length: p.responses[i].length,
      finished: p.finished[i] === 1,
    }));
  const progress = createProgress(`eval ${split}`, total, { quiet: opts.quiet });
  const summary = (b: EvalBatch) => {
    const { records } = b;
    greedy.push(...scored(records, b.greedy));
    failures.push(...b.greedy.rewardFailures);
    for (let i = 0; i < records.length && examples.length < (opts.examples ?? 3); i++) {
      examples.push({ id: records[i].id, question: records[i].question, answer: records[i].answer, response: b.greedy.texts[i], score: b.greedy.rewards[i] });
    }
    if (opts.errors) {
      // greedy is one response per prompt; failure is the reward's accuracy, the one the report gives
      records.forEach((r, i) => {
        const c = classifyFailure(task, r, b.greedy.texts[i], b.greedy.accuracy[i]);
        errorClasses.push(c?.class ?? null);
        if (c && errorExamples[c.class].length < 3) {
          errorExamples[c.class].push({ id: r.id, question: r.question, answer: r.answer, response: b.greedy.texts[i], detail: c.detail });
        }
      });
    }
    if (b.sampled) {
      sampled.push(...scored(records, b.sampled));
      failures.push(...b.sampled.rewardFailures);
      for (let p = 0; p < records.length; p++) {
        let right = 0;
        for (let j = 0; j < k; j++) right += b.sampled.accuracy[p * k + j] >= 1 ? 1 : 0;
        perPromptRight.push(right);
      }
    }
    progress.update(offsetOf(b) + records.length);
    gate.complete(b.step);
  };
  await lastValueFrom(batches$.pipe(tap(summary)), { defaultValue: undefined });
  progress.stop();

  const report: EvalReport = {
    task: task.name,
    split,
    familyDependency: Object.fromEntries(greedy.map((g) => [g.record.family, g.record.visionDependency])),
    records: total,
    policyVersion: engine.version,
    greedy: { ...summarise(greedy), perRecord: greedy.map((g) => g.accuracy) },
    reward: reward.name,
    rewardCalls: greedy.length + sampled.length,
    rewardFailures: failures,
    seconds: (performance.now() - t0) / 1000,
    examples,
  };
  if (opts.errors) {
    const table = errorTable(greedy.map((g, i) => ({ family: g.record.family, visionDependency: g.record.visionDependency, errorClass: errorClasses[i] })));
    report.errors = { ...table, perRecord: errorClasses, examples: errorExamples };
  }
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
  lines.push(
    `${'group'.padEnd(22)} ${'n'.padStart(5)}  greedy: acc  format  length${s ? `${`   avg@${s.k} (T=${s.temperature}):`.padEnd(29)}acc  format  length` : ''}`,
  );
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
  lines.push(`scored by ${r.reward}: ${describeRewardFailures(r)}`);
  lines.push(`greedy: format ${pct(r.greedy.formatRate)}, mean length ${r.greedy.meanLength.toFixed(1)} tokens, truncated ${pct(r.greedy.truncatedRate)}`);
  if (s) {
    lines.push(
      `sampled: format ${pct(s.formatRate)}, mean length ${s.meanLength.toFixed(1)}, pass@${s.k} ${pct(s.passAtK)}, prompts with mixed outcomes (RL signal) ${pct(s.mixedFraction)}`,
    );
  }
  for (const e of r.examples) lines.push(`example ${e.id}: "${e.question}" -> ${JSON.stringify(e.response)} (answer ${e.answer})`);
  if (r.errors) lines.push(formatErrorReport(r.errors));
  return lines.join('\n');
}

/**
 * `no reward call failed`, or `12 of 1000 reward calls failed, each scored 0 (threw 12 (first: record a/3: Error: boom))`:
 * a failed call counts as a wrong response, so the accuracy beside it is a lower bound.
 */
export function describeRewardFailures(r: Pick<EvalReport, 'rewardCalls' | 'rewardFailures'>): string {
  const n = r.rewardFailures.length;
  if (n === 0) return `no reward call failed (${r.rewardCalls} calls)`;
  return `${n} of ${r.rewardCalls} reward calls failed, each scored 0 as a wrong response (${describeKinds(failureKinds(r.rewardFailures))})`;
}

/** The error taxonomy as a table: class x overall / vision-dependent / general, count and share of failures; one example per class. */
export function formatErrorReport(e: ErrorReport): string {
  const groups: [string, ErrorReport['overall']][] = [
    ['overall', e.overall],
    ['vision-dependent', e.visionDependent],
    ['general', e.general],
  ];
  const lines = [`greedy failures by class (share of the group's failures):`];
  lines.push(`${'class'.padEnd(14)}${groups.map(([name]) => name.padStart(20)).join('')}`);
  const cell = (n: number, share: number | null) => `${String(n).padStart(6)} ${pct(share)}`.padStart(20);
  for (const c of ERROR_CLASSES) lines.push(`${c.padEnd(14)}${groups.map(([, g]) => cell(g.counts[c], g.shares[c])).join('')}`);
  lines.push(`${'failures'.padEnd(14)}${groups.map(([, g]) => `${g.failures} of ${g.n}`.padStart(20)).join('')}`);
  for (const c of ERROR_CLASSES) {
    const x = e.examples[c][0];
    if (x) lines.push(`  ${c} ${x.id}: "${x.question}" -> ${JSON.stringify(x.response)} (answer ${x.answer})${x.detail ? `: ${x.detail}` : ''}`);
  }
  return lines.join('\n');
}
