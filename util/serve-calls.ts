/**
 * The worker side of `WorkerClient` (worker-client.ts): sets the worker up, then answers the calls it is
 * sent, in arrival order.
 *
 * - `start` runs once; its failure is posted to the client (`<name> failed to start: ...`) and the worker
 *   exits. Calls that arrive meanwhile wait for it.
 * - By default a call starts when the one before it has settled (a forward, its backward and the step that
 *   follows never interleave). With `interleave: true` each call starts as soon as it arrives (still in
 *   arrival order) and calls that await may overlap: for services whose calls each hold what they use.
 * - A handler's result is handed over: typed arrays in it (in plain objects and arrays) that own their whole
 *   buffer are moved, not cloned, so a handler returns fresh arrays, never ones it keeps.
 * - An error thrown by a handler rejects that call only; the worker goes on.
 * - On `client.close()`, every call made before it settles, the service's `close` hook runs (release
 *   sessions, ...), the reply is posted and the port closes, so the thread can exit.
 * - `postEvent(e)` sends `e` to the client's `onEvent`, outside any call (what happened between calls).
 *
 * @example
 * // counter-worker.ts
 * serveCalls<CounterCalls>(() => {
 *   let n = 0;
 *   return { calls: { add: (k) => (n += k), total: () => n } };
 * });
 */
import { parentPort } from 'node:worker_threads';
import type { CallMessage, Calls, ReplyMessage } from './worker-client.ts';

/** Handlers of the calls `C`: the same signatures, free to return a promise. */
export type Handlers<C> = { [K in keyof C]: C[K] extends (...args: infer A) => infer R ? (...args: A) => R | Promise<R> : never };

export interface Service<C> {
  calls: Handlers<C>;
  /** Runs once on `client.close()`, after every earlier call has settled. */
  close?: () => unknown;
}

export interface ServeOptions {
  /** Start each call on arrival instead of after the previous one has settled (default false). */
  interleave?: boolean;
}

export function serveCalls<C extends Calls<C>>(start: () => Service<C> | Promise<Service<C>>, options: ServeOptions = {}): void {
  const port = parentPort;
  if (!port) throw new Error('serveCalls must run in a worker thread');
  const post = (m: ReplyMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

  const service = (async () => start())();
  service.then(
    () => post({ type: 'ready' }),
    (err: unknown) => {
      post({ type: 'fatal', ...describe(err) });
      process.exit(1);
    },
  );

  /** Runs one call once the service is up and posts its result or error; never rejects. */
  const answer = (msg: CallMessage): Promise<void> =>
    service.then(async (s) => {
      try {
        const result = msg.type === 'close' ? await s.close?.() : await handlerOf(s, msg.method)(msg.arg);
        post({ type: 'result', id: msg.id, result }, buffersOf(result));
      } catch (err) {
        post({ type: 'error', id: msg.id, ...describe(err) });
      }
    });

  let queue: Promise<void> = Promise.resolve(); // the sequential calls, and close
  const running = new Set<Promise<void>>(); // interleaved calls in progress
  port.on('message', (msg: CallMessage) => {
    if (msg.type === 'close') {
      queue = Promise.all([queue, ...running])
        .then(() => answer(msg))
        .then(() => port.close());
    } else if (options.interleave) {
      const call = answer(msg);
      running.add(call);
      call.then(() => running.delete(call));
    } else queue = queue.then(() => answer(msg));
  });
}

/** Posts `event` (structured-cloned) to the client's `onEvent` (worker-client.ts). */
export function postEvent(event: unknown): void {
  if (!parentPort) throw new Error('postEvent must run in a worker thread');
  parentPort.postMessage({ type: 'event', event } satisfies ReplyMessage);
}

function handlerOf<C>(s: Service<C>, method: string): (arg: unknown) => unknown {
  const h = (s.calls as Record<string, ((arg: unknown) => unknown) | undefined>)[method];
  if (typeof h !== 'function' || !Object.hasOwn(s.calls, method)) throw new Error(`unknown call '${method}'`);
  return h;
}

function describe(err: unknown): { message: string; stack?: string; code?: string } {
  if (!(err instanceof Error)) return { message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { message: err.message, stack: err.stack, ...(typeof code === 'string' ? { code } : {}) };
}

/** The buffers of the typed arrays in a result that own their whole buffer (each once). */
export function buffersOf(result: unknown): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const walk = (v: unknown): void => {
    if (ArrayBuffer.isView(v)) {
      if (v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) out.add(v.buffer);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach(walk);
  };
  walk(result);
  return [...out];
}
