/**
 * `papo study`: every arm x seed of a study file trained as a normal `papo train` run from the same starting
 * weights, each run's final weights evaluated the same way (`papo eval`: greedy, avg@k, error classes), then
 * the comparisons (pipelines/study-analysis.ts) and a report (pipelines/study-report.ts).
 *
 * Layout of a study directory:
 *   runs/<arm>/seed_<seed>/      a run directory (papo report, replay, rollouts, eval and --resume work on it)
 *   results/start.json           the evaluation of the starting weights
 *   results/<arm>/seed_<seed>.json  the evaluation of the run's final weights
 *   logs/<arm>-seed_<seed>.log   what the run's train and eval commands printed
 *   study.json, study.html, study-*.png   the analysis and its report
 *
 * Runs go in seed-major order (every arm of seed 1, then of seed 2, ...), so a study stopped early still has
 * paired seeds. A finished run (its result file there, for the same evaluation) is skipped; a run killed at
 * any point is resumed from its latest checkpoint by `papo train` itself (`trainer.resume_mode=auto`), so a
 * killed study goes on where it stopped. Each run is a child process: `--jobs` runs several at once, and a
 * run that fails is reported with its log and does not stop the others.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../storage/atomic.ts';
import { acquireRunLock } from '../storage/run-lock.ts';
import { packageFile } from '../util/package-files.ts';
import type { EvalReport } from './evaluate.ts';
import { type Study, type StudyArm, toOverrides } from './study-config.ts';
import { configChanges, defaultsLike, RESUME_SAFE_KEYS, trainConfig, type TrainConfig } from './train-config.ts';
import { applyOverrides } from '../util/overrides.ts';
import { parse } from 'yaml';
import { loadPolicyWeights, paramsFingerprint } from '../storage/policy-weights.ts';

const PAPO_BIN = packageFile('bin/papo.js'); // the package's launcher, from the sources or built (dist/)

/** What a result file holds: the evaluation, and the options it was made with (a change re-evaluates). */
export interface RunResult {
  arm: string;
  seed: number;
  evalKey: string;
  /** seconds the training command took in the launch that finished it (absent for the starting weights) */
  trainSeconds?: number;
  /** fingerprint of the weights the run started from, as its checkpoint recorded it */
  startFingerprint?: string;
  report: EvalReport;
}

export interface StudyRun {
  arm: StudyArm;
  seed: number;
  dir: string;
  resultFile: string;
  logFile: string;
}

export interface StudyRunOptions {
  /** runs at once (each a `papo train` process); default 1 */
  jobs?: number;
  /** called with a line for a person (progress, failures) */
  say?: (line: string) => void;
  /** abort: no new run starts; running ones are asked to stop (SIGTERM: they write a checkpoint) */
  signal?: AbortSignal;
  /** the command that runs `papo` (tests); default this package's bin/papo.js with this node */
  papo?: { command: string; args: string[] };
}

export interface StudyRunSummary {
  done: number;
  skipped: number;
  failed: { arm: string; seed: number; message: string; log: string }[];
  interrupted: boolean;
  seconds: number;
  /** the starting weights' fingerprint, when the run list was reached (for `analyzeStudy`) */
  startFingerprint?: string;
}

export const studyPaths = (dir: string) => ({
  runs: path.join(dir, 'runs'),
  results: path.join(dir, 'results'),
  logs: path.join(dir, 'logs'),
  start: path.join(dir, 'results', 'start.json'),
  json: path.join(dir, 'study.json'),
});

/** The runs of a study in the order they are trained: seed-major. */
export function studyRuns(study: Study, dir: string): StudyRun[] {
  const p = studyPaths(dir);
  return study.seeds.flatMap((seed) =>
    study.arms.map((arm) => ({
      arm,
      seed,
      dir: path.join(p.runs, arm.name, `seed_${seed}`),
      resultFile: path.join(p.results, arm.name, `seed_${seed}.json`),
      logFile: path.join(p.logs, `${arm.name}-seed_${seed}.log`),
    })),
  );
}

/** The task flags of `papo eval` that make it evaluate on the arms' task, whatever the weights say. */
function taskFlags(arm: StudyArm): string[] {
  const d = arm.config.data;
  const flags = ['--task', d.task];
  if (d.families?.length) flags.push('--families', d.families.join(','));
  if (d.manifest) flags.push('--manifest', d.manifest);
  if (d.allow_outside_manifest_dir) flags.push('--allow-outside-manifest-dir');
  return flags;
}

/** Everything an evaluation depends on besides the weights: a result made otherwise is made again. */
export function evalKey(study: Study, arm: StudyArm): string {
  return JSON.stringify({ eval: study.config.eval, task: taskFlags(arm) });
}

function evalArgs(study: Study, arm: StudyArm, weights: string, json: string): string[] {
  const e = study.config.eval;
  const args = ['eval', '--weights', weights, '--split', e.split, '--k', String(e.k), '--temperature', String(e.temperature), '--seed', String(e.seed)];
  if (e.limit > 0) args.push('--limit', String(e.limit));
  if (e.errors) args.push('--errors');
  return [...args, ...taskFlags(arm), '--json', json];
}

/** The `papo train` overrides of one run: the arm's config, its seed and directory; the study evaluates. */
export function trainArgs(run: StudyRun): string[] {
  return [
    'train',
    '--force', // only ever moves aside the files of a run killed before it saved its config (resume_mode=auto resumes anything else)
    ...toOverrides(run.arm.input),
    `data.seed=${run.seed}`,
    `trainer.save_checkpoint_path=${JSON.stringify(run.dir)}`,
    'trainer.resume_mode=auto',
    'trainer.test_before_and_after=false',
  ];
}

/** A result made with these evaluation options by a `papo eval` that reports what the analysis reads. */
export function isCurrent(res: RunResult | undefined, key: string): res is RunResult {
  return res !== undefined && res.evalKey === key && res.report?.familyDependency !== undefined;
}

/** The validated config a run of the study trains with (what its `papo train` command line gives). */
export function runConfig(run: StudyRun): TrainConfig {
  return trainConfig(
    applyOverrides(
      {},
      trainArgs(run).filter((a) => !a.startsWith('--') && a !== 'train'),
      (t) => parse(t),
    ),
  );
}

/** The fingerprint of the weights every arm starts from (the check a resume makes of its reference weights). */
export async function startFingerprint(study: Study): Promise<string> {
  return paramsFingerprint((await loadPolicyWeights(study.arms[0].config.worker.actor.model.model_path)).params);
}

/** The fingerprint of the starting weights a run recorded in its latest checkpoint, if it has one. */
function recordedFingerprint(runDir: string): string | undefined {
  try {
    const name = fs.readFileSync(path.join(runDir, 'checkpoints', 'latest'), 'utf8').trim();
    const attrs = JSON.parse(fs.readFileSync(path.join(runDir, 'checkpoints', name, 'zarr.json'), 'utf8')).attributes;
    return attrs?.state?.reference?.fingerprint;
  } catch {
    return undefined;
  }
}

/**
 * Why the run directory holds a run of another config than the arm's (a study directory shared by several
 * study files, or an arm edited after its runs), or undefined if it holds none or the arm's. Starting weights
 * found at another path (the package moved) are the same when the run recorded their fingerprint.
 */
export function foreignRun(run: StudyRun, fingerprint?: string, recorded?: string): string | undefined {
  const file = path.join(run.dir, 'config.json');
  if (!fs.existsSync(file)) return undefined;
  let saved: unknown;
  try {
    saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    return `${file} is unreadable (${(err as Error).message})`;
  }
  const want = runConfig(run);
  let { unsafe } = configChanges(saved, want, RESUME_SAFE_KEYS, defaultsLike(want));
  if (fingerprint !== undefined && (recorded ?? recordedFingerprint(run.dir)) === fingerprint)
    unsafe = unsafe.filter((c) => !c.startsWith('worker.actor.model.model_path:'));
  return unsafe.length
    ? `${run.dir} holds a run of another config (${unsafe.slice(0, 3).join('; ')}${unsafe.length > 3 ? '; ...' : ''}): name the arm otherwise or use another --out`
    : undefined;
}

export function readResult(file: string): RunResult | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RunResult;
  } catch (err) {
    throw new Error(`${file}: unreadable study result (${(err as Error).message}); delete it to evaluate that run again`);
  }
}

const fmt = (s: number) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(0)} s`);
const pct = (x: number | null | undefined) => (x == null ? '-' : `${(100 * x).toFixed(1)}%`);

/** Runs a `papo` command, its output appended to `log`; resolves with its exit code (or signal). */
function runPapo(
  papo: { command: string; args: string[] },
  args: string[],
  log: string,
  children: Set<ChildProcess>,
): Promise<{ code: number | null; signal: string | null }> {
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `\n$ papo ${args.map((a) => (/[\s"'[\]{}]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
  return new Promise((resolve, reject) => {
    // an IPC channel: a papo command whose parent goes away stops as on SIGTERM (cli/main.ts)
    const child = spawn(papo.command, [...papo.args, ...args], { stdio: ['ignore', fd, fd, 'ipc'], env: { ...process.env, PAPO_PARENT: 'study' } });
    children.add(child);
    child.on('error', (err) => {
      children.delete(child);
      fs.closeSync(fd);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      fs.closeSync(fd);
      resolve({ code, signal });
    });
  });
}

function lastLines(file: string, n = 3): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join(' | ');
  } catch {
    return '';
  }
}

/** Trains and evaluates every run of the study that has no result yet. */
export async function runStudy(study: Study, dir: string, opts: StudyRunOptions = {}): Promise<StudyRunSummary> {
  const say = opts.say ?? ((l: string) => process.stdout.write(`${l}\n`));
  const papo = opts.papo ?? { command: process.execPath, args: [PAPO_BIN, ...study.config.import.flatMap((m) => ['--import', m])] };
  const jobs = Math.max(1, opts.jobs ?? 1);
  const p = studyPaths(dir);
  const t0 = performance.now();
  const children = new Set<ChildProcess>();
  /** `papo eval` of `weights` as `arm` evaluates, its output in `log`: the report, or the exit code (or signal) it failed with. */
  const evaluateInto = async (arm: StudyArm, weights: string, result: string, log: string): Promise<EvalReport | { exit: string }> => {
    fs.mkdirSync(path.dirname(result), { recursive: true });
    const tmp = `${result}.tmp-${process.pid}`;
    const r = await runPapo(papo, evalArgs(study, arm, weights, tmp), log, children);
    if (r.code !== 0) return { exit: String(r.code ?? r.signal) };
    const report = JSON.parse(fs.readFileSync(tmp, 'utf8')) as EvalReport;
    fs.rmSync(tmp, { force: true });
    return report;
  };
  const stop = () => {
    for (const c of children) c.kill('SIGTERM');
  };
  const summary: StudyRunSummary = { done: 0, skipped: 0, failed: [], interrupted: false, seconds: 0 };
  // one papo study per study directory at a time (each run has its own lock too, taken by papo train)
  const lock = acquireRunLock(dir, { command: 'papo study' });
  opts.signal?.addEventListener('abort', stop, { once: true });
  try {
    for (const d of [p.runs, p.results, p.logs]) fs.mkdirSync(d, { recursive: true });
    // The starting weights, evaluated once: the "before" of every run.
    const first = study.arms[0];
    const startKey = evalKey(study, first);
    if (!isCurrent(readResult(p.start), startKey)) {
      say(`study: evaluating the starting weights (${first.config.worker.actor.model.model_path})`);
      const log = path.join(p.logs, 'start.log');
      const ev = await evaluateInto(first, first.config.worker.actor.model.model_path, p.start, log);
      if ('exit' in ev) {
        if (opts.signal?.aborted) return { ...summary, interrupted: true, seconds: (performance.now() - t0) / 1000 };
        throw new Error(`evaluating the starting weights failed (exit ${ev.exit}): ${lastLines(log)} (log: ${log})`);
      }
      await writeFileAtomic(p.start, JSON.stringify({ arm: 'start', seed: -1, evalKey: startKey, report: ev } satisfies RunResult));
    }

    const runs = studyRuns(study, dir);
    // a run directory of another config is neither trained on nor counted: said once, before anything runs
    const fingerprint = await startFingerprint(study);
    summary.startFingerprint = fingerprint;
    const foreign = new Map(runs.map((r) => [r, foreignRun(r, fingerprint)] as const).filter((x): x is [StudyRun, string] => x[1] !== undefined));
    for (const [r, why] of foreign) {
      summary.failed.push({ arm: r.arm.name, seed: r.seed, message: why, log: r.logFile });
      say(`study: ${r.arm.name} seed ${r.seed} skipped: ${why}`);
    }
    const todo = runs.filter((r) => !foreign.has(r) && !isCurrent(readResult(r.resultFile), evalKey(study, r.arm)));
    summary.skipped = runs.length - todo.length - foreign.size;
    say(
      `study: ${runs.length} runs (${study.arms.length} arms x ${study.seeds.length} seeds), ${summary.skipped} already done, ${todo.length} to go, ${jobs} at a time`,
    );
    let next = 0;
    const durations: number[] = [];
    const worker = async () => {
      while (next < todo.length && !opts.signal?.aborted) {
        const run = todo[next++];
        const label = `${run.arm.name} seed ${run.seed}`;
        const index = runs.indexOf(run) + 1;
        const resumed = fs.existsSync(path.join(run.dir, 'config.json'));
        say(`study: [${index}/${runs.length}] ${label}: ${resumed ? 'resuming' : 'training'} in ${run.dir}`);
        const t = performance.now();
        const fail = (message: string) => {
          summary.failed.push({ arm: run.arm.name, seed: run.seed, message, log: run.logFile });
          say(`study: [${index}/${runs.length}] ${label} FAILED: ${message} (log: ${run.logFile})`);
        };
        const tr = await runPapo(papo, trainArgs(run), run.logFile, children);
        if (tr.code !== 0) {
          if (opts.signal?.aborted) break;
          fail(`papo train exited with ${tr.code ?? tr.signal}: ${lastLines(run.logFile)}`);
          continue;
        }
        const trainSeconds = (performance.now() - t) / 1000;
        const report = await evaluateInto(run.arm, run.dir, run.resultFile, run.logFile);
        if ('exit' in report) {
          if (opts.signal?.aborted) break;
          fail(`papo eval exited with ${report.exit}: ${lastLines(run.logFile)}`);
          continue;
        }
        const result: RunResult = {
          arm: run.arm.name,
          seed: run.seed,
          evalKey: evalKey(study, run.arm),
          trainSeconds,
          startFingerprint: recordedFingerprint(run.dir),
          report,
        };
        await writeFileAtomic(run.resultFile, JSON.stringify(result));
        summary.done++;
        const seconds = (performance.now() - t) / 1000;
        durations.push(seconds);
        const left = todo.length - summary.done - (summary.failed.length - foreign.size); // runs of another config were never in todo
        const eta = left > 0 ? `; about ${fmt(((durations.reduce((a, b) => a + b, 0) / durations.length) * left) / jobs)} to go` : '';
        const a = report.greedy.accuracy;
        say(
          `study: [${index}/${runs.length}] ${label} done in ${fmt(seconds)}: greedy ${pct(a.overall.accuracy)} overall, ${pct(a.visionDependent.accuracy)} vision-dependent` +
            `${report.sampled ? `; avg@${report.sampled.k} ${pct(report.sampled.accuracy.overall.accuracy)}` : ''}${eta}`,
        );
      }
    };
    await Promise.all(Array.from({ length: Math.min(jobs, todo.length) }, worker));
    summary.interrupted = opts.signal?.aborted ?? false;
  } finally {
    lock.release();
    opts.signal?.removeEventListener('abort', stop);
    summary.seconds = (performance.now() - t0) / 1000;
  }
  return summary;
}

/** The results of a study directory: the start, and every run's (missing runs are absent). */
export function loadStudyResults(study: Study, dir: string, fingerprint?: string): { start: RunResult | undefined; runs: Map<string, Map<number, RunResult>> } {
  const runs = new Map<string, Map<number, RunResult>>();
  for (const r of studyRuns(study, dir)) {
    const res = readResult(r.resultFile);
    if (!isCurrent(res, evalKey(study, r.arm)) || foreignRun(r, fingerprint, res.startFingerprint) !== undefined) continue;
    if (!runs.has(r.arm.name)) runs.set(r.arm.name, new Map());
    runs.get(r.arm.name)!.set(r.seed, res);
  }
  const start = readResult(studyPaths(dir).start);
  return { start: isCurrent(start, evalKey(study, study.arms[0])) ? start : undefined, runs };
}

/**
 * Copies what a study's figures are made from, without checkpoints or rollout logs, to `dest`: the study
 * file (as study.yaml), study.json, study.html and its charts, results/ and each run's config.json and
 * metrics.jsonl. `papo study DEST/study.yaml --out DEST --analyze` then remakes every figure from the copy.
 */
export function publishStudy(study: Study, dir: string, studyFile: string, dest: string): string[] {
  const copied: string[] = [];
  const copy = (from: string, to: string) => {
    if (!fs.existsSync(from)) return;
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.rmSync(to, { force: true }); // a link planted at the destination is replaced, not followed
    fs.copyFileSync(from, to);
    copied.push(to);
  };
  copy(studyFile, path.join(dest, 'study.yaml'));
  for (const f of fs.readdirSync(dir))
    if (f === 'study.json' || f === 'study.html' || /^study-[a-z]+\.png$/.test(f)) copy(path.join(dir, f), path.join(dest, f));
  copy(studyPaths(dir).start, path.join(dest, 'results', 'start.json'));
  for (const r of studyRuns(study, dir)) {
    const rel = path.relative(dir, r.dir);
    const res = readResult(r.resultFile);
    if (res) {
      // the copy has no checkpoints: it carries the fingerprint they recorded
      const to = path.join(dest, path.relative(dir, r.resultFile));
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.rmSync(to, { force: true });
      fs.writeFileSync(to, JSON.stringify({ ...res, startFingerprint: res.startFingerprint ?? recordedFingerprint(r.dir) }), { flag: 'wx' });
      copied.push(to);
    }
    for (const f of ['config.json', 'metrics.jsonl']) copy(path.join(r.dir, f), path.join(dest, rel, f));
  }
  return copied;
}
