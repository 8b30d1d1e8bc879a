import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeStudy } from '../../pipelines/study-analysis.ts';
import { parseStudy } from '../../pipelines/study-config.ts';
import { studyPaths, studyRuns, evalKey, type RunResult } from '../../pipelines/study.ts';
import type { EvalReport } from '../../pipelines/evaluate.ts';
import { writeStudyReport } from '../../pipelines/study-report.ts';

/** Families of a fake task: two vision-dependent (10 and 30 prompts), one general (20). */
const FAMILIES = { read: 10, sum: 30, 'text-sum': 20 } as const;
const VISION = new Set(['read', 'sum']);

/** An evaluation report with the given per-family accuracies (multiples of 1/n keep it exact). */
function report(acc: Record<keyof typeof FAMILIES, number>, errors?: Record<string, number>): EvalReport {
  const cell = (fams: string[]) => {
    const n = fams.reduce((a, f) => a + FAMILIES[f as keyof typeof FAMILIES], 0);
    const hits = fams.reduce((a, f) => a + FAMILIES[f as keyof typeof FAMILIES] * acc[f as keyof typeof FAMILIES], 0);
    return { n, accuracy: hits / n };
  };
  const all = Object.keys(FAMILIES);
  const accuracy = {
    overall: cell(all),
    visionDependent: cell(all.filter((f) => VISION.has(f))),
    general: cell(all.filter((f) => !VISION.has(f))),
    byFamily: Object.fromEntries(all.map((f) => [f, cell([f])])),
  };
  return {
    task: 'fake',
    split: 'test',
    familyDependency: { read: 'high', sum: 'high', 'text-sum': 'low' },
    records: 60,
    policyVersion: 0,
    greedy: { accuracy, formatRate: 1, meanLength: 10, truncatedRate: 0, groups: {}, perRecord: [] },
    rewardFailures: [],
    seconds: 1,
    examples: [],
    ...(errors ? { errors: { overall: { counts: errors }, visionDependent: { counts: errors } } } : {}),
  } as unknown as EvalReport;
}

function studyDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'papo-study-analysis-'));
}

const STUDY = parseStudy({
  arms: { grpo: { algorithm: { preset: 'grpo' } }, papo_g: { algorithm: { preset: 'papo_g' } } },
  seeds: [1, 2, 3, 4],
  eval: { k: 0, errors: false },
  stats: { reps: 2000 },
});

async function writeResults(
  dir: string,
  acc: (arm: string, seed: number) => Record<keyof typeof FAMILIES, number>,
  errors?: (arm: string, seed: number) => Record<string, number>,
) {
  const p = studyPaths(dir);
  fs.mkdirSync(p.results, { recursive: true });
  const key = evalKey(STUDY, STUDY.arms[0]);
  fs.writeFileSync(p.start, JSON.stringify({ arm: 'start', seed: -1, evalKey: key, report: report({ read: 0.5, sum: 0.5, 'text-sum': 0.5 }) }));
  for (const r of studyRuns(STUDY, dir)) {
    fs.mkdirSync(path.dirname(r.resultFile), { recursive: true });
    const res: RunResult = { arm: r.arm.name, seed: r.seed, evalKey: key, report: report(acc(r.arm.name, r.seed), errors?.(r.arm.name, r.seed)) };
    fs.writeFileSync(r.resultFile, JSON.stringify(res));
  }
}

test('a study whose treatment is ahead by exactly 0.1 on read on every seed: figures by hand', async () => {
  const dir = studyDir();
  // control: read 0.5 + 0.1 * (seed - 1) / 3 ... kept on multiples of 1/10 and 1/30
  const base = (seed: number) => ({ read: [0.5, 0.6, 0.4, 0.7][seed - 1], sum: [0.5, 0.6, 0.7, 0.4][seed - 1], 'text-sum': 0.5 });
  await writeResults(
    dir,
    (arm, seed) => (arm === 'grpo' ? base(seed) : { ...base(seed), read: base(seed).read + 0.1 }),
    (arm) => (arm === 'grpo' ? { perception: 10, reasoning: 5 } : { perception: 7, reasoning: 5 }),
  );
  const a = analyzeStudy(STUDY, dir);
  assert.deepEqual(a.missing, []);
  assert.deepEqual(a.splits, ['overall', 'vision_dependent', 'general', 'family:read', 'family:sum', 'family:text-sum']);
  const g = a.perArm.grpo.greedy!;
  // grpo vision-dependent per seed: (10 read + 30 sum) / 40
  const vd = [1, 2, 3, 4].map((s) => (10 * base(s).read + 30 * base(s).sum) / 40);
  g.vision_dependent.values.forEach((v, i) => assert.ok(Math.abs(v - vd[i]) < 1e-12));
  assert.ok(Math.abs(g.vision_dependent.mean - vd.reduce((x, y) => x + y) / 4) < 1e-12);
  assert.ok(Math.abs(g.vision_dependent.change! - (g.vision_dependent.mean - 0.5)) < 1e-12);
  const c = a.comparisons[0];
  assert.equal(c.treatment, 'papo_g');
  assert.equal(c.control, 'grpo');
  const d = c.metrics.greedy!;
  // +0.1 on read (10 of 40 vision-dependent prompts, 10 of 60 overall) on every seed, nothing elsewhere
  for (const x of d.vision_dependent.diffs) assert.ok(Math.abs(x - 0.025) < 1e-12);
  for (const x of d.overall.diffs) assert.ok(Math.abs(x - 0.1 / 6) < 1e-12);
  assert.deepEqual(d.general.diffs, [0, 0, 0, 0]);
  // a constant difference: a zero-width bootstrap interval, every seed a win
  assert.ok(Math.abs(d.vision_dependent.ci.lo - 0.025) < 1e-12 && Math.abs(d.vision_dependent.ci.hi - 0.025) < 1e-12);
  assert.equal(d.vision_dependent.wins, 4);
  // the exact sign-flip test of 4 equal positive differences: 2 of 16 assignments are as extreme
  assert.equal(d.vision_dependent.p, 2 / 16);
  assert.equal(d.general.p, 1);
  // rliable's probability of improvement: over all pairs of runs (not only same-seed pairs), ties half, then
  // the unweighted mean over the split's families. read: treatment {.6,.7,.5,.8} vs control {.5,.6,.4,.7}:
  // 2.5 + 3.5 + 1.5 + 4 = 11.5 of 16; sum: the same values in both arms, 0.5.
  assert.equal(d['family:read'].probabilityOfImprovement, 11.5 / 16);
  assert.equal(d.vision_dependent.probabilityOfImprovement, (11.5 / 16 + 0.5) / 2);
  // Holm over 3 confirmatory hypotheses (overall, vision-dependent, general; greedy only): 0.125 * 3, 0.125 * 2 -> 0.375, 1
  assert.equal(d.overall.pHolm, 0.375);
  assert.equal(d.vision_dependent.pHolm, 0.375);
  assert.equal(d.general.pHolm, 1);
  assert.equal(d['family:read'].pHolm, undefined);
  // perception errors: 3 fewer on every seed
  assert.deepEqual(c.perceptionErrors!.diffs, [-3, -3, -3, -3]);
  assert.equal(c.perceptionErrors!.wins, 4);
  assert.equal(a.errors.grpo.vision_dependent!.classes.perception.mean, 10);
  assert.ok(Math.abs(a.errors.papo_g.vision_dependent!.classes.perception.share - 7 / 12) < 1e-12);
  // the report: study.json round-trips, the page and three charts are written
  const rep = await writeStudyReport(STUDY, dir, a, { png: true, scale: 1 });
  assert.deepEqual(JSON.parse(fs.readFileSync(rep.json, 'utf8')).comparisons[0].metrics.greedy.general.diffs, [0, 0, 0, 0]);
  assert.match(fs.readFileSync(rep.html, 'utf8'), /papo_g - grpo/);
  assert.equal(rep.pngs.length, 2); // no learning curves: these runs have no metrics.jsonl
});

test('missing runs are listed and comparisons use the seeds both arms have', async () => {
  const dir = studyDir();
  await writeResults(dir, () => ({ read: 0.5, sum: 0.5, 'text-sum': 0.5 }));
  fs.rmSync(studyRuns(STUDY, dir).find((r) => r.arm.name === 'papo_g' && r.seed === 3)!.resultFile);
  const a = analyzeStudy(STUDY, dir);
  assert.deepEqual(a.missing, ['papo_g seed 3']);
  assert.deepEqual(a.comparisons[0].metrics.greedy!.overall.seeds, [1, 2, 4]);
  assert.equal(a.perArm.grpo.greedy!.overall.values.length, 4);
});
