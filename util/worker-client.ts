/**
 * A promise API over a worker thread that serves named calls (the worker runs `serveCalls`, see
 * serve-calls.ts). The client owns the lifecycle the callers would otherwise each write again:
 *
 * - start-up: `ready` resolves when the worker has set itself up (its `start` returned), and rejects with
 *   `<name> failed to start: <its error>` (or `<name> worker exited during start-up (code N)`);
 * - calls: `call(method, arg)` posts one message and resolves with the worker's result; an error thrown in
 *   the worker rejects that call with `<what>: <the worker's message>` (`what`: the method name, or what
 *   the `what` option makes of it; not repeated if the message starts with it), the worker's stack as its
 *   `cause`;
 * - failure: a worker that crashes or exits rejects every pending and every later call with
 *   `<what>: <name> worker crashed: ...` / `<what>: <name> worker exited unexpectedly (code N)`: no hangs;
 * - close: the calls already made finish, the worker's close hook runs, and the thread is stopped (terminated
 *   if it has not exited `exitTimeoutMs` after its last reply); later calls reject with `<name> is closed`;
 * - events: what the worker posts with `postEvent` (serve-calls.ts) outside any call goes to `onEvent`.
 *
 * Calls are posted in the order they are made and the worker starts them in that order. Arguments are
 * structured-cloned; pass `transfer` to move buffers the caller gives away. The worker moves the buffers of
 * fresh typed arrays in its results (see serve-calls.ts).
 *
 * Why not a library: comlink leaves pending calls unsettled when the worker dies or is released (its issue
 * #601), and piscina / workerpool run stateless tasks on a pool, not calls on one stateful worker.
 *
 * @example
 * // counter-calls.ts: the calls, shared by both sides
 * export interface CounterCalls { add(k: number): number; total(): number }
 * // main thread
 * const counter = await WorkerClient.start<CounterCalls>(new URL('./counter-worker.ts', import.meta.url), { name: 'counter' });
 * await counter.call('add', 2); // 2
 * await counter.close();
 */
import type { ResourceLimits, Worker } from 'node:worker_threads';
import { startTsWorker } from './ts-worker.ts';

/** The calls a worker serves: each method takes at most one (structured-cloneable) argument. */
export type Calls<C> = { [K in keyof C]: (arg: never) => unknown };

/** The arguments of `client.call(method, ...)` after the method: its argument (if any), then the options. */
export type CallArgs<F> = F extends () => unknown
  ? [arg?: undefined, options?: CallOptions]
  : F extends (arg: infer A) => unknown
    ? [arg: A, options?: CallOptions]
    : never;

/** What a call resolves with. */
export type CallResult<F> = F extends (...args: never[]) => infer R ? Awaited<R> : never;

/** Main thread -> worker. */
export type CallMessage = { type: 'call'; id: number; method: string; arg: unknown } | { type: 'close'; id: number };

/** Worker -> main thread. */
export type ReplyMessage =
  | { type: 'ready' }
  | { type: 'fatal'; message: string; stack?: string }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; message: string; stack?: string; code?: string }
  | { type: 'event'; event: unknown };

export interface WorkerClientOptions {
  /** Names the worker in lifecycle errors, e.g. 'policy engine'. */
  name: string;
  /** The worker's `workerData` (structured-cloned). */
  workerData?: unknown;
  /** What a call is called in its errors (default: its method name), e.g. (m) => `trainer ${m}`. */
  what?: (method: string) => string;
  /** How long `close` waits for the worker to exit by itself before terminating it (default 2000 ms). */
  exitTimeoutMs?: number;
  /** Caps of the worker's V8 heap: past them the worker is stopped and its calls reject (see ts-worker.ts). */
  resourceLimits?: ResourceLimits;
  /** The worker imports user `.ts` files (see ts-worker.ts). */
  userTypeScript?: boolean;
  /** Receives what the worker posts with `postEvent`. */
  onEvent?: (event: unknown) => void;
}

export interface CallOptions {
  /** What this call is called in its errors (default: the client's `what`). */
  what?: string;
  /** Buffers to move to the worker instead of cloning (they are detached here). */
  transfer?: readonly ArrayBuffer[];
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  what: string;
}

export class WorkerClient<C extends Calls<C>> {
  /** The thread itself (for diagnostics and tests). */
  readonly worker: Worker;
  /** Resolves when the worker takes calls; rejects if it fails to start. Calls made before queue up. */
  readonly ready: Promise<void>;
  readonly name: string;
  private readonly exitTimeoutMs: number;
  private readonly what: (method: string) => string;
  private readonly onEvent: ((event: unknown) => void) | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private started = false;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  private settleReady!: (err?: Error) => void;
  private readonly exited: Promise<void>;

  constructor(entry: URL, options: WorkerClientOptions) {
    this.name = options.name;
    this.exitTimeoutMs = options.exitTimeoutMs ?? 2000;
    this.what = options.what ?? ((method) => method);
    this.ready = new Promise<void>((resolve, reject) => (this.settleReady = (err) => (err ? reject(err) : resolve())));
    this.ready.catch(() => undefined); // a caller that never awaits `ready` learns of a failed start from its calls
    this.onEvent = options.onEvent;
    this.worker = startTsWorker(entry, options.workerData, { resourceLimits: options.resourceLimits, userTypeScript: options.userTypeScript });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (m: ReplyMessage) => this.onMessage(m));
    this.worker.on('error', (err) => this.fail(`${this.name} worker ${this.started ? 'crashed' : 'failed to start'}: ${err.message}`));
    this.worker.on('exit', (code) => {
      if (this.closing && this.pending.size === 0) this.fail(`${this.name} is closed`);
      else if (this.started) this.fail(`${this.name} worker exited unexpectedly (code ${code})`);
      else this.fail(`${this.name} worker exited during start-up (code ${code})`);
    });
  }

  /** Starts the worker and resolves when it takes calls (rejects, with the worker stopped, if it fails to start). */
  static async start<C extends Calls<C>>(entry: URL, options: WorkerClientOptions): Promise<WorkerClient<C>> {
    const client = new WorkerClient<C>(entry, options);
    await client.ready;
    return client;
  }

  /** Calls `method` in the worker with `arg`; resolves with its result (see the module doc for failures). */
  call<M extends keyof C & string>(method: M, ...[arg, options = {}]: CallArgs<C[M]>): Promise<CallResult<C[M]>> {
    return this.send(options.what ?? this.what(method), { type: 'call', method, arg }, options.transfer) as Promise<CallResult<C[M]>>;
  }

  /**
   * Lets the calls already made finish, runs the worker's close hook and stops the thread. Later calls
   * reject with `<name> is closed`. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    try {
      // Posted before `closing` is set (this runs synchronously up to the await): the last call accepted.
      if (!this.failure) await this.send(this.what('close'), { type: 'close' });
    } finally {
      await Promise.race([this.exited, new Promise<void>((resolve) => setTimeout(resolve, this.exitTimeoutMs).unref())]);
      await this.worker.terminate();
    }
  }

  private send(what: string, msg: { type: 'call'; method: string; arg: unknown } | { type: 'close' }, transfer: readonly ArrayBuffer[] = []): Promise<unknown> {
    const refused = this.failure ?? (this.closing ? new Error(`${this.name} is closed`) : undefined);
    if (refused) return Promise.reject(new Error(`${what}: ${refused.message}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, what });
      try {
        this.worker.postMessage({ ...msg, id } satisfies CallMessage, [...transfer]);
      } catch (err) {
        this.pending.delete(id);
        reject(new Error(`${what}: ${(err as Error).message}`));
      }
    });
  }

  private onMessage(m: ReplyMessage): void {
    if (m.type === 'ready') {
      this.started = true;
      this.settleReady();
      return;
    }
    if (m.type === 'fatal') {
      this.fail(`${this.name} failed to start: ${m.message}`);
      return;
    }
    if (m.type === 'event') {
      this.onEvent?.(m.event);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.type === 'result') p.resolve(m.result);
    else p.reject(remoteError(p.what, m.message, m.stack, m.code));
  }

  /** The worker is gone (or never started): every pending and later call rejects; the thread is stopped. */
  private fail(message: string): void {
    if (!this.failure) {
      this.failure = new Error(message);
      this.settleReady(this.failure);
      void this.worker.terminate();
    }
    for (const p of this.pending.values()) p.reject(new Error(`${p.what}: ${this.failure.message}`));
    this.pending.clear();
  }
}

/**
 * `<what>: <message>` (unless the message already starts with `what`), with the worker's error as the
 * cause; the worker error's `code` is kept, so a typed error stays recognisable across the thread.
 */
function remoteError(what: string, message: string, stack: string | undefined, code: string | undefined): Error {
  const named = message.startsWith(what) && !/^\w/.test(message.slice(what.length));
  const cause = new Error(message);
  if (stack) cause.stack = stack;
  const err = new Error(named ? message : `${what}: ${message}`, { cause });
  if (code !== undefined) Object.assign(err, { code });
  return err;
}
