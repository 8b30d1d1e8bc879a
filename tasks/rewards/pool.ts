/**
 * The reward pool: user reward code (a reward file, or a reward registered by an `--import`ed module) runs
 * in worker threads, never in the calling thread, so that a reward cannot hang, exhaust or end a run:
 *
 * - a call that blocks its worker past `timeoutMs` (`while (true) {}`) is a `timeout` failure of its
 *   record; the worker is stopped (`terminate` interrupts even a loop that never yields) and a fresh one
 *   replaces it, and the other inputs it held go to a worker again;
 * - a worker that dies (`process.exit`, its heap over `maxMemoryMb`, more buffers than `maxMemoryMb`, a
 *   crash) is a `crashed` failure of the records whose calls were running, and is replaced; the outcomes
 *   it had already (journalled in shared memory as they come) stand, and the inputs it held but had not
 *   called go to a worker again (a death that settles nothing counts against each: at the third, they fail);
 * - a stray rejection or exception of the reward's code is reported through `onStray` in one line naming
 *   the reward and the record, and the worker goes on;
 * - the calling thread stays free: signals, timers and the run's other stages go on while a reward hangs.
 *
 * Each worker gets one chunk of a batch per message (one message per worker per batch each way, not one
 * per record); runReward runs the chunk inside the worker, so throws, bad values and late async calls are
 * failures there already. Progress is shared through a SharedArrayBuffer per chunk (pool-protocol.ts): a
 * worker whose count of started and settled calls has not moved for `timeoutMs` + 1 s has a blocked
 * thread (its own timers would have settled an async call by then).
 *
 * Why threads, not processes: a thread's heap has a cap (`resourceLimits`: the worker alone is stopped; on
 * a best-effort basis, since one array grown past it can abort the process, Node issue 47224), `terminate()` stops even a synchronous loop, `process.exit` in a worker ends only the
 * worker, inputs and results move by structured clone without a pipe, and a worker starts in a fraction
 * of a process's time (no second Node and TypeScript loader start-up per replacement). What a thread does
 * not bound is memory outside the V8 heap (buffers): the worker ends itself when the buffers it holds pass
 * the cap after a call, and the pool stops its busy workers if the process's resident memory grows past
 * `workers x 2 x maxMemoryMb + 512 MB` while they run (a single call allocating without end). Code that
 * takes the whole process down itself (`process.kill(process.pid)`, `process.abort()`, a crash in native
 * code) is beyond what a thread can stop; a process could, at the cost above.
 *
 * Results are the same as runReward's in the calling thread, bit for bit: a reward is a function of its
 * input, and the pool puts each result back in its place.
 *
 * @example
 * const pool = await RewardPool.start({ spec: './my_reward.ts:score', workers: 2, maxMemoryMb: 512 });
 * const { results, failures } = await pool.run(inputs, { timeoutMs: 10_000, concurrency: 32 });
 * await pool.close();
 */
import { extensionModules } from '../../util/user-module.ts';
import { WorkerClient } from '../../util/worker-client.ts';
import {
  CAUSE_BUFFERS,
  INPUT_CALLED,
  JOURNAL_BYTES_PER_INPUT,
  RUNNING_BATCH,
  STATE,
  type PoolCalls,
  type PoolWorkerInit,
  type StrayEvent,
} from './pool-protocol.ts';
import { checkResult, runLimits, type RewardFailure, type RewardFailureKind, type RewardRun, type RewardRunOptions, type RewardScorer } from './runner.ts';
import type { RewardInput, RewardResult } from './types.ts';
import type { RewardType } from './load.ts';

export interface RewardPoolOptions {
  /** A registered reward name or `file.ts:export` (relative to baseDir), as `worker.reward.score_function`. */
  spec: string;
  /** Relative reward files resolve against it (default: the working directory). */
  baseDir?: string;
  /** Modules the workers import before looking the reward up (default: those imported with `--import`). */
  modules?: readonly string[];
  /** Worker threads (default 2). */
  workers?: number;
  /** Each worker's cap, of its V8 heap and of its buffers alike, in MB (default 512). */
  maxMemoryMb?: number;
  /** Receives each stray error of the reward's code, as one line (default: written to stderr). */
  onStray?: (line: string) => void;
  /** How long a worker may take to import the reward (default 60 s). */
  startTimeoutMs?: number;
  /** How a plain function of a reward file is called (`worker.reward.reward_type`; default: the file's REWARD_TYPE, else sequential). */
  rewardType?: RewardType;
}

/** How many times an input may be sent again after a worker died under it without calling it. */
const MAX_RESENDS = 2;
/** A worker whose calls neither start nor settle for the timeout plus this is blocked. */
const GRACE_MS = 1000;
/** Slack of the process-memory guard above the workers' caps. */
const RSS_SLACK_MB = 512;

const ZERO = (): RewardResult => ({ overall: 0, accuracy: 0, format: 0 });

/** One `run`: its inputs, results and failures, and how many inputs still wait for an outcome. */
interface Run {
  inputs: readonly RewardInput[];
  results: RewardResult[];
  failures: RewardFailure[];
  resends: Uint8Array;
  left: number;
  timeoutMs: number;
  done: () => void;
}

/** A chunk of a run's inputs for one worker. */
interface Job {
  run: Run;
  /** positions in run.inputs */
  indices: number[];
  concurrency: number;
}

interface Slot {
  client: WorkerClient<PoolCalls>;
  /** resolves true when the worker takes calls, false if it failed to start */
  ready: Promise<boolean>;
  up: boolean;
  job?: Job;
  state?: Int32Array;
  /** the events count last seen, and when it last moved */
  seen: number;
  since: number;
  /** why the pool stopped this worker */
  stopped?: 'timeout' | 'memory';
  startError?: string;
}

export class RewardPool implements RewardScorer {
  readonly name: string;
  readonly mode: 'single' | 'batch';
  /** What happened so far: calls stopped for blocking, workers that died, stray errors reported. */
  readonly stats = { timeouts: 0, deaths: 0, strays: 0, replaced: 0 };
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private watchdog: NodeJS.Timeout | undefined;
  private idleRss = 0;
  private closed = false;

  private constructor(
    private readonly opts: Required<Omit<RewardPoolOptions, 'onStray' | 'rewardType'>> & Pick<RewardPoolOptions, 'onStray' | 'rewardType'>,
    first: { name: string; mode: 'single' | 'batch' },
    slots: Slot[],
  ) {
    this.name = first.name;
    this.mode = first.mode;
    this.slots = slots;
  }

  /** Starts the workers and resolves once every one has loaded the reward (rejects, all stopped, if one cannot). */
  static async start(options: RewardPoolOptions): Promise<RewardPool> {
    const opts = {
      spec: options.spec,
      baseDir: options.baseDir ?? process.cwd(),
      modules: [...(options.modules ?? extensionModules())],
      workers: options.workers ?? 2,
      maxMemoryMb: options.maxMemoryMb ?? 512,
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
      onStray: options.onStray,
      rewardType: options.rewardType,
    };
    if (!(Number.isInteger(opts.workers) && opts.workers >= 1)) throw new Error(`reward pool: workers must be an integer of at least 1, got ${opts.workers}`);
    if (!(Number.isFinite(opts.maxMemoryMb) && opts.maxMemoryMb >= 16))
      throw new Error(`reward pool: maxMemoryMb must be at least 16, got ${opts.maxMemoryMb}`);
    let pool: RewardPool | undefined;
    const slots: Slot[] = [];
    for (let i = 0; i < opts.workers; i++) slots.push(RewardPool.spawn(opts, { stray: (e) => pool?.reportStray(e), exit: (c) => pool?.exited(c) }));
    try {
      const ok = await Promise.all(slots.map((s) => s.ready));
      const failed = slots.find((_, i) => !ok[i]);
      if (failed) throw new Error(failed.startError);
      const first = await slots[0].client.call('describe');
      pool = new RewardPool(opts, first, slots);
      return pool;
    } catch (err) {
      await Promise.all(slots.map((s) => s.client.worker.terminate()));
      throw err;
    }
  }

  private static spawn(opts: RewardPool['opts'], hooks: { stray: (e: unknown) => void; exit: (client: WorkerClient<PoolCalls>) => void }): Slot {
    const workerData: PoolWorkerInit = {
      spec: opts.spec,
      baseDir: opts.baseDir,
      modules: [...opts.modules],
      maxBufferBytes: opts.maxMemoryMb * 2 ** 20,
      ...(opts.rewardType ? { rewardType: opts.rewardType } : {}),
    };
    const client = new WorkerClient<PoolCalls>(new URL('./pool-worker.ts', import.meta.url), {
      name: 'reward worker',
      workerData,
      resourceLimits: { maxOldGenerationSizeMb: opts.maxMemoryMb },
      userTypeScript: true,
      onEvent: hooks.stray,
    });
    const slot: Slot = { client, ready: Promise.resolve(false), up: false, seen: 0, since: 0 };
    client.worker.once('exit', () => hooks.exit(client));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the reward worker did not load ${opts.spec} within ${opts.startTimeoutMs / 1000} s`)), opts.startTimeoutMs);
      timer.unref();
    });
    slot.ready = Promise.race([client.ready, late]).then(
      () => {
        clearTimeout(timer);
        slot.up = true;
        return true;
      },
      (err: Error) => {
        clearTimeout(timer);
        // A start-up error of the user's module already names its setting: drop the worker's prefix.
        slot.startError = err.message.replace(/^reward worker failed to start: /, '');
        void client.worker.terminate();
        return false;
      },
    );
    return slot;
  }

  /** Scores `inputs` in the workers: runReward's contract (one outcome per input, in order; failures named). */
  async run(inputs: readonly RewardInput[], opts: RewardRunOptions = {}): Promise<RewardRun> {
    const { timeoutMs, concurrency } = runLimits(opts);
    if (this.closed) throw new Error('the reward pool is closed');
    const results = inputs.map(ZERO);
    const failures: RewardFailure[] = [];
    if (inputs.length === 0) return { results, failures };
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const run: Run = { inputs, results, failures, resends: new Uint8Array(inputs.length), left: inputs.length, timeoutMs, done };
    // a worker that could not start before is tried again
    for (const slot of this.slots) if (slot.startError !== undefined) this.replace(slot);
    const all = inputs.map((_, i) => i);
    if (this.mode === 'batch') this.queue.push({ run, indices: all, concurrency });
    else {
      const k = Math.min(this.slots.length, inputs.length, concurrency);
      for (let c = 0; c < k; c++) {
        const indices = all.slice(Math.floor((c * inputs.length) / k), Math.floor(((c + 1) * inputs.length) / k));
        const share = concurrency === Infinity ? Infinity : Math.floor(concurrency / k) + (c < concurrency % k ? 1 : 0);
        this.queue.push({ run, indices, concurrency: share });
      }
    }
    this.pump();
    await finished;
    failures.sort((a, b) => a.index - b.index);
    return { results, failures };
  }

  /** Stops every worker at once (a reward worker holds nothing to save); runs in progress end with failures. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    for (const job of this.queue.splice(0)) for (const i of job.indices) this.fail(job.run, i, 'crashed', 'the reward pool was closed');
    await Promise.all(this.slots.map((s) => s.client.worker.terminate()));
  }

  /** Gives waiting chunks to idle workers. */
  private pump(): void {
    if (this.closed) return;
    const idle = this.slots.filter((s) => s.up && !s.job);
    if (this.queue.length && idle.length === this.slots.length) this.idleRss = process.memoryUsage.rss();
    for (const slot of idle) {
      const job = this.queue.shift();
      if (!job) break;
      this.send(slot, job);
    }
    // no worker can take the rest: every one failed to start
    if (this.queue.length && this.slots.every((s) => s.startError !== undefined)) {
      const why = `no reward worker could start: ${this.slots[0].startError}`;
      for (const job of this.queue.splice(0)) for (const i of job.indices) this.fail(job.run, i, 'crashed', why);
    }
  }

  private send(slot: Slot, job: Job): void {
    const state = new Int32Array(new SharedArrayBuffer(4 * (STATE.inputs + job.indices.length)));
    const journal = new SharedArrayBuffer(JOURNAL_BYTES_PER_INPUT * job.indices.length);
    Object.assign(slot, { job, state, seen: 0, since: performance.now(), stopped: undefined });
    this.watch();
    const inputs = job.indices.map((i) => job.run.inputs[i]);
    const request = { inputs, state: state.buffer as SharedArrayBuffer, journal, timeoutMs: job.run.timeoutMs, concurrency: job.concurrency };
    slot.client.call('score', request).then(
      (reply) => this.received(slot, job, reply),
      (err: Error) => this.died(slot, job, state, journal, err),
    );
  }

  /** A chunk's outcomes, each checked again (the user's code shared the worker's thread). */
  private received(slot: Slot, job: Job, reply: RewardRun): void {
    slot.job = undefined;
    // stopped just after it replied: it is gone all the same
    if (slot.stopped) this.replace(slot);
    const { run, indices } = job;
    const failed = new Map<number, RewardFailure>();
    try {
      for (const f of reply.failures) failed.set(f.index, f);
    } catch {
      // a malformed reply: every input without a valid result fails below
    }
    for (let j = 0; j < indices.length; j++) {
      const f = failed.get(j);
      if (f) {
        this.fail(run, indices[j], f.kind, String(f.reason));
        continue;
      }
      const checked = checkResult(reply.results?.[j]);
      if ('problem' in checked) this.fail(run, indices[j], 'invalid', `the reward worker's reply: ${checked.problem}`);
      else this.settle(run, indices[j], checked.result);
    }
    this.pump();
  }

  /**
   * The worker is gone: the outcomes it had (its journal) stand, the records whose calls ran fail, the others
   * are sent again; a fresh worker takes its place.
   */
  private died(slot: Slot, job: Job, state: Int32Array, journal: SharedArrayBuffer, err: Error): void {
    slot.job = undefined;
    const { run, indices } = job;
    const running = Atomics.load(state, STATE.running);
    const known = this.journalled(run, indices, journal, Atomics.load(state, STATE.journal), running);
    const why =
      slot.stopped === 'timeout'
        ? `no result within ${run.timeoutMs} ms: the call blocked its reward worker, which was stopped`
        : slot.stopped === 'memory'
          ? `the process's memory grew past ${this.rssLimitMb()} MB above its level between batches while this call ran: its reward worker was stopped`
          : Atomics.load(state, STATE.cause) === CAUSE_BUFFERS
            ? `its reward worker held more than ${this.opts.maxMemoryMb} MB of buffers after this call (worker.reward.max_memory_mb) and was stopped`
            : `its reward worker died: ${deathOf(err.message)}`;
    const kind: RewardFailureKind = slot.stopped === 'timeout' ? 'timeout' : 'crashed';
    if (slot.stopped === 'timeout') this.stats.timeouts++;
    else this.stats.deaths++;
    // The record whose call ran synchronously; else those whose calls were awaited; else (it died between
    // calls, from what the last one left: its heap, a timer) the one called last.
    const called = indices.map((_, j) => Atomics.load(state, STATE.inputs + j) === INPUT_CALLED);
    const last = called.includes(true) ? -1 : Atomics.load(state, STATE.last) - 1;
    const culprit = (j: number) => (running === RUNNING_BATCH ? true : running > 0 ? j === running - 1 : called[j] || j === last);
    // An input not yet called is sent again freely when this death settled something (the run moves on);
    // one that was called, or any when nothing was settled, at most MAX_RESENDS times: no endless round.
    const progress = known.size > 0 || indices.some((_, j) => culprit(j));
    const again: number[] = [];
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (known.has(j)) continue;
      if (culprit(j)) this.fail(run, i, kind, `${why}; a fresh worker replaced it`);
      else if (progress && Atomics.load(state, STATE.inputs + j) === 0) again.push(i);
      else if (run.resends[i] >= MAX_RESENDS)
        this.fail(run, i, 'crashed', `its reward worker died ${MAX_RESENDS + 1} times while it held this record (last: ${why})`);
      else {
        run.resends[i]++;
        again.push(i);
      }
    }
    if (again.length) this.queue.unshift({ run, indices: again, concurrency: job.concurrency });
    if (this.closed) {
      for (const i of again) this.fail(run, i, 'crashed', 'the reward pool was closed');
      this.queue.length = 0;
      return;
    }
    this.replace(slot);
  }

  /** A worker ended between chunks (a stray timer of the reward's code called process.exit): replace it now. */
  private exited(client: WorkerClient<PoolCalls>): void {
    const slot = this.slots.find((s) => s.client === client);
    if (this.closed || !slot || slot.job || !slot.up) return;
    this.stats.deaths++;
    this.replace(slot);
  }

  /** Takes the outcomes of a dead worker's journal (but not the running call's: it killed the worker); returns their positions. */
  private journalled(run: Run, indices: number[], journal: SharedArrayBuffer, length: number, running: number): Set<number> {
    const known = new Set<number>();
    if (running === RUNNING_BATCH) return known;
    const text = new TextDecoder().decode(new Uint8Array(journal, 0, Math.min(length, journal.byteLength)));
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const entry = JSON.parse(line) as unknown[];
        const j = entry[0];
        if (typeof j !== 'number' || !Number.isInteger(j) || j < 0 || j >= indices.length || known.has(j) || j === running - 1) continue;
        if (entry.length === 2) {
          const checked = checkResult(entry[1]);
          if ('problem' in checked) continue;
          this.settle(run, indices[j], checked.result);
        } else {
          const kind = entry[1] as RewardFailureKind;
          if (!['threw', 'timeout', 'invalid', 'crashed'].includes(kind)) continue;
          this.fail(run, indices[j], kind, String(entry[2]));
        }
        known.add(j);
      } catch {
        // a torn or foreign line: that input is sent again
      }
    }
    return known;
  }

  private replace(slot: Slot): void {
    void slot.client.worker.terminate();
    const fresh = RewardPool.spawn(this.opts, { stray: (e) => this.reportStray(e), exit: (c) => this.exited(c) });
    Object.assign(slot, { client: fresh.client, ready: fresh.ready, up: false, job: undefined, state: undefined, stopped: undefined, startError: undefined });
    this.stats.replaced++;
    void fresh.ready.then(() => {
      // the slot may have been replaced again meanwhile
      if (slot.client !== fresh.client) return;
      slot.up = fresh.up;
      slot.startError = fresh.startError;
      this.pump();
    });
  }

  private settle(run: Run, i: number, result: RewardResult): void {
    run.results[i] = result;
    this.outcome(run);
  }

  private fail(run: Run, i: number, kind: RewardFailureKind, reason: string): void {
    run.failures.push({ id: run.inputs[i].id, index: i, reward: this.name, kind, reason });
    run.results[i] = ZERO();
    this.outcome(run);
  }

  private outcome(run: Run): void {
    if (--run.left === 0) run.done();
  }

  private rssLimitMb(): number {
    return this.slots.length * 2 * this.opts.maxMemoryMb + RSS_SLACK_MB;
  }

  /** Watches the busy workers: one whose calls have not moved for the timeout (+ grace) is blocked; the process's memory is bounded. */
  private watch(): void {
    if (this.watchdog) return;
    const period = Math.max(10, Math.min(250, Math.min(...this.slots.map((s) => s.job?.run.timeoutMs ?? Infinity)) / 4));
    this.watchdog = setInterval(() => {
      const busy = this.slots.filter((s) => s.job && s.state && !s.stopped);
      if (busy.length === 0 && this.slots.every((s) => !s.job)) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
        return;
      }
      const now = performance.now();
      for (const slot of busy) {
        const events = Atomics.load(slot.state!, STATE.events);
        if (events !== slot.seen) {
          slot.seen = events;
          slot.since = now;
        } else if (now - slot.since > slot.job!.run.timeoutMs + GRACE_MS) this.stop(slot, 'timeout');
      }
      if (busy.length && process.memoryUsage.rss() > this.idleRss + this.rssLimitMb() * 2 ** 20) for (const slot of busy) this.stop(slot, 'memory');
    }, period);
    this.watchdog.unref();
  }

  private stop(slot: Slot, why: 'timeout' | 'memory'): void {
    slot.stopped = why;
    void slot.client.worker.terminate();
  }

  private reportStray(e: unknown): void {
    const event = e as StrayEvent;
    if (event?.kind !== 'stray') return;
    this.stats.strays++;
    const record = event.record === undefined ? 'outside any call' : `record ${event.record}`;
    const line = `reward ${this.name}: ${record}: a stray ${event.what} in the reward's code (its call's result stands): ${event.message}`;
    if (this.opts.onStray) this.opts.onStray(line);
    else process.stderr.write(`${line}\n`);
  }
}

/** What a worker's death looks like to a user: the exit code, the heap cap, or the crash. */
function deathOf(message: string): string {
  const m = message.replace(/^.*?reward worker /, '');
  if (/reaching memory limit/.test(m)) return 'its V8 heap reached worker.reward.max_memory_mb';
  const exit = /exited unexpectedly \(code (-?\d+)\)/.exec(m);
  if (exit) return `it exited (code ${exit[1]}; process.exit in a reward ends its worker)`;
  return m;
}
