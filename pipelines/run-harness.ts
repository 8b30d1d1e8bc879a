/**
 * The life of a run directory around a training loop, shared by `papo train` and `papo sft`:
 *
 *   lock -> refuse planted links -> sweep unfinished checkpoint writes -> the latest checkpoint, or the
 *   saved config.json of a run stopped before its first one -> (or a fresh directory; `--force` moves an
 *   earlier run aside) -> config.json, written before anything else -> logger (`run_start`; from here a
 *   failure is `run_failed` in log.jsonl), notes, TensorBoard ->
 *   signals (the first stops after the work in flight, the second abandons it) -> the body -> close.
 *
 * What the body trains, and how a saved config and the one given now may differ, the caller decides
 * (`settle`). The body sees one `Run`: where to write, what it continues from, how to stop.
 *
 * @example
 * await withRun({ command: 'papo train', dir, resume: 'auto', settle: (saved) => ({ config: check(saved, cfg) }) },
 *   async (run) => { ...; run.appendMetrics({ step, ...metrics }); ... });
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackgroundWriter } from '../storage/background-writer.ts';
import { CheckpointStore, type Checkpoint } from '../storage/checkpoints.ts';
import { writeFileAtomic } from '../storage/atomic.ts';
import { acquireRunLock } from '../storage/run-lock.ts';
import { RolloutLog } from '../storage/rollout-log.ts';
import { TensorBoardWriter } from '../storage/tensorboard.ts';
import { openAppendNoFollow } from '../util/append-file.ts';
import { createLogger, type Logger } from '../util/logger.ts';
import { prepareFreshRunDir, refuseLinkedRunFiles, truncateMetrics, type MetricsLine } from './run-dir.ts';

/** What the run directory holds of an earlier start of this run. */
export interface SavedRun {
  /** the saved config: the checkpoint's, or config.json's */
  config: unknown;
  /** where it was read ("checkpoint step_000010", "config.json") */
  from: string;
  /** the latest complete checkpoint (absent: stopped before its first, starts again from step 0) */
  checkpoint?: Checkpoint;
}

export interface RunOptions<C> {
  /** names the lock holder and the messages (`papo train`) */
  command: string;
  dir: string;
  /**
   * `auto`: continue the run in `dir` if there is one, else start one; `only`: continue it, and refuse a
   * directory without one (`--resume`); `never`: start a new run (a directory holding another is refused
   * unless `force`).
   */
  resume: 'auto' | 'only' | 'never';
  /** move an earlier run's files to previous-<time>/ and start over */
  force?: boolean;
  /** write nothing (tests): no lock, no files */
  noSave?: boolean;
  /**
   * The run's config given what the directory holds: throws when the saved one and this launch's differ
   * where a resume may not change them; notes are said and logged.
   */
  settle: (saved: SavedRun | undefined) => { config: C; notes?: string[] };
  /** the run writes metrics.jsonl (rewound on resume) */
  metrics?: boolean;
  /** the run writes a rollout log (rewound on resume) */
  rollouts?: boolean;
  /** open TensorBoard event files (rewound on resume) */
  tensorboard?: boolean;
  logger?: Logger;
  /** no terminal output */
  quiet?: boolean;
  /** handle SIGINT / SIGTERM; the first one's message is the caller's (what it finishes before stopping) */
  signals?: { stopping: (signal: NodeJS.Signals) => string; abandon: boolean };
  /** stops the run as SIGINT does */
  abort?: AbortSignal;
  /** a checkpoint of another run that a run without checkpoints of its own starts from (`trainer.load_checkpoint_path`) */
  startFrom?: () => Promise<{ checkpoint: Checkpoint; from: string } | undefined>;
}

export interface Run<C> {
  readonly config: C;
  readonly dir: string;
  /** undefined with `noSave` */
  readonly store?: CheckpointStore;
  /**
   * the checkpoint this launch continues from: the run's own, or (with `startedFrom`) another run's;
   * undefined again once `releaseResumed` is called
   */
  readonly resumed?: Checkpoint;
  /** the step of the checkpoint this launch continues from (kept after `releaseResumed`) */
  readonly resumedStep?: number;
  /** Forgets `resumed` (its weights and optimizer state) once the trainer and the engine hold them. */
  releaseResumed(): void;
  /** where `resumed` was read when it is another run's checkpoint (`startFrom`) */
  readonly startedFrom?: string;
  /** a run stopped before its first checkpoint, started again from step 0 in place */
  readonly restarted: boolean;
  /** metrics.jsonl's records up to the resumed step */
  readonly history: MetricsLine[];
  readonly logger: Logger;
  readonly tensorboard?: TensorBoardWriter;
  /** the terminal (stderr), unless quiet */
  say(line: string): void;
  /** appends one record to metrics.jsonl */
  appendMetrics(line: Record<string, number>): void;
  /** the background writer (rollout log, checkpoints), started on first use */
  writer(): BackgroundWriter;
  /** true once a signal, the abort signal or `stop()` asked the run to stop */
  readonly stopping: boolean;
  stop(): void;
  /** called once when the run is asked to stop (at once if it already is) */
  onStop(listener: () => void): void;
  /** rejects when a second signal abandons the work in flight */
  readonly abandoned: Promise<never>;
  /** called with the second signal, before `abandoned` rejects */
  onAbandon(listener: () => void): void;
}

/** Runs `body` inside the run directory's lifecycle (see the header); the lock is held throughout. */
export async function withRun<C, T>(opts: RunOptions<C>, body: (run: Run<C>) => Promise<T>): Promise<T> {
  const lock = opts.noSave ? undefined : acquireRunLock(opts.dir, { command: opts.command });
  const cleanup: (() => void | Promise<void>)[] = [];
  let run: Run<C> | undefined;
  const opened: { logger?: Logger } = {};
  try {
    run = await open(opts, cleanup, opened);
    return await body(run);
  } catch (err) {
    // a run that fails says why in its log too, not only on the terminal, even while it starts
    opened.logger?.error({ event: 'run_failed', message: (err as Error).message }, 'run failed');
    throw err;
  } finally {
    for (const c of cleanup.reverse()) await c();
    lock?.release();
  }
}

async function open<C>(opts: RunOptions<C>, cleanup: (() => void | Promise<void>)[], opened: { logger?: Logger }): Promise<Run<C>> {
  const { dir } = opts;
  const say = (line: string) => {
    if (!opts.quiet) process.stderr.write(`${line}\n`);
  };
  const store = opts.noSave ? undefined : new CheckpointStore(dir);
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const notes: string[] = [];
  let saved: SavedRun | undefined;
  if (store) refuseLinkedRunFiles(dir);
  if (store && opts.resume !== 'never') {
    const swept = await store.sweep();
    if (swept.length) notes.push(`removed ${swept.length} unfinished checkpoint write(s): ${swept.join(', ')}`);
    const name = await store.latest();
    const configFile = path.join(dir, 'config.json');
    if (name) {
      const checkpoint = await store.load(name);
      saved = { config: checkpoint.state.config, from: `its checkpoint's (${name})`, checkpoint };
    } else if (fs.existsSync(configFile)) {
      saved = { config: readSavedConfig(configFile), from: 'its config.json' };
    } else if (opts.resume === 'only') {
      throw new Error(
        `cannot resume ${dir}: it holds no complete checkpoint and no config.json, so there is no run to continue (a start stopped before it saved its config leaves this); ` +
          `start the run anew with its config: the same command without --resume${fs.existsSync(path.join(dir, 'checkpoints')) ? ' and with --force (the files there are moved to previous-<time>/)' : ''}`,
      );
    } else notes.push(`no run in ${dir}: starting a new run`);
  }
  const settled = opts.settle(saved);
  notes.push(...(settled.notes ?? []));
  // a run without checkpoints of its own starts from the one it names, again after a kill before its first
  const loaded = saved?.checkpoint ? undefined : await opts.startFrom?.();
  if (loaded) notes.push(`starting from ${loaded.from} (step ${loaded.checkpoint.step}): its weights, optimizer state and data position`);
  const resumed = saved?.checkpoint ?? loaded?.checkpoint;
  const restarted = saved !== undefined && !saved.checkpoint;
  let history: MetricsLine[] = [];
  if (store && saved) {
    const step = resumed?.step ?? 0;
    if (restarted) notes.push(`no complete checkpoint in ${dir}: starting its run again from ${loaded ? `step ${step} of ${loaded.from}` : 'step 0'}`);
    if (opts.metrics) history = await truncateMetrics(metricsFile, step);
    if (opts.rollouts) await new RolloutLog(dir).truncateAfter(step);
  }
  if (store && !saved) {
    const aside = prepareFreshRunDir(dir, opts.force ?? false);
    if (aside) notes.push(`moved the earlier run's files to ${aside}`);
  }
  // The config first: a run stopped at any later instant continues with --resume (its config.json says what it is).
  if (store) await writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(settled.config, null, 2));
  const logger = opts.logger ?? createLogger(store ? path.join(dir, 'log.jsonl') : undefined);
  opened.logger = logger;
  logger.info(
    { event: 'run_start', command: opts.command, dir, pid: process.pid, node: process.version, resumed_from: resumed?.step, restarted },
    `${opts.command} start`,
  );
  if (saved) logger.debug({ event: 'checkpoint_selected', from: saved.from, step: resumed?.step ?? 0 }, `continuing from ${saved.from}`);
  for (const n of notes) {
    say(n);
    logger.info({ event: 'run_dir', message: n }, n);
  }
  // Event files are rewound with metrics.jsonl on resume, whether or not this launch writes them.
  const tensorboard =
    store && opts.metrics
      ? TensorBoardWriter.open(path.join(dir, 'tensorboard'), {
          rewindTo: saved ? (resumed?.step ?? 0) : undefined,
          onNote: (n) => logger.info({ event: 'run_dir', message: n }, n),
        })
      : undefined;
  if (tensorboard) cleanup.push(() => tensorboard.close());

  let metricsFd: number | undefined;
  cleanup.push(() => {
    if (metricsFd !== undefined) fs.closeSync(metricsFd);
  });
  let writer: BackgroundWriter | undefined;
  cleanup.push(() => writer?.close());

  let stopping = false;
  const stopListeners: (() => void)[] = [];
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const l of stopListeners) l();
  };
  let abandon: ((err: Error) => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => (abandon = reject));
  abandoned.catch(() => undefined);
  const abandonListeners: (() => void)[] = [];
  if (opts.abort?.aborted) stop();
  else opts.abort?.addEventListener('abort', stop, { once: true });
  if (opts.signals) {
    const signals = opts.signals;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const h = () => {
        if (!stopping) {
          say(`\n${sig}: ${signals.stopping(sig)}`);
          logger.warn({ event: 'signal', signal: sig }, 'stopping after the work in flight');
          stop();
        } else if (signals.abandon) {
          say(`\n${sig} again: abandoning the steps in flight; the last checkpoint stands`);
          logger.warn({ event: 'signal_abandon', signal: sig }, 'abandoning the steps in flight');
          for (const l of abandonListeners) l();
          abandon?.(new Error(`interrupted by ${sig}: abandoned the steps in flight; resume from the last checkpoint with --resume`));
        }
      };
      process.on(sig, h);
      cleanup.push(() => {
        process.off(sig, h);
      });
    }
  }

  let held = resumed;
  return {
    config: settled.config,
    dir,
    store,
    get resumed() {
      return held;
    },
    resumedStep: resumed?.step,
    releaseResumed() {
      held = undefined;
    },
    startedFrom: loaded?.from,
    restarted,
    history,
    logger,
    tensorboard: opts.tensorboard ? tensorboard : undefined,
    say,
    appendMetrics(line) {
      if (!store) return;
      metricsFd ??= openAppendNoFollow(metricsFile);
      fs.writeSync(metricsFd, `${JSON.stringify(line)}\n`);
    },
    writer() {
      writer ??= new BackgroundWriter();
      return writer;
    },
    get stopping() {
      return stopping;
    },
    stop,
    onStop(listener) {
      if (stopping) listener();
      else stopListeners.push(listener);
    },
    abandoned,
    onAbandon(listener) {
      abandonListeners.push(listener);
    },
  };
}

/** A saved config.json, or an error naming it. */
function readSavedConfig(file: string): unknown {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}): it is this run's saved config; restore it, or start over with --force`);
  }
}
