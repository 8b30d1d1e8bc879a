/**
 * A reward worker of the pool (pool.ts): imports the extension modules and the user's reward once, then
 * scores the chunks of inputs it is sent with runReward (so a throw, a bad value or a late call is a failure
 * here already). Through the chunk's shared arrays it shows, without a message, which call runs and which
 * inputs have their outcome (and what it is, in the journal): the pool stops a worker whose thread is
 * blocked (`while (true) {}`), knows which record blocked it, and keeps what the worker had scored.
 *
 * Memory: the V8 heap is capped by the worker's resourceLimits (set by the pool). Buffers live outside the
 * heap: after a call the worker checks how much of them it holds (after every call that took 2 ms or more,
 * and every 2 ms among quicker ones), and past the cap it ends itself, naming the call that went over.
 *
 * Stray errors of the user's code (a rejected promise nobody awaits, an exception thrown from a timer) are
 * caught here, posted to the pool as one line naming the record whose call they came from (each call runs
 * in an AsyncLocalStorage context holding its record id), and the worker goes on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as path from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { workerData } from 'node:worker_threads';
import { packageFile, RUNS_BUILT } from '../../util/package-files.ts';
import { postEvent, serveCalls } from '../../util/serve-calls.ts';
import { importUserModule } from '../../util/user-module.ts';
import { importRewardFile, SCORE_FUNCTION_KEY, splitRewardSpec } from './load.ts';
import { CAUSE_BUFFERS, INPUT_CALLED, INPUT_SETTLED, RUNNING_BATCH, STATE, type PoolCalls, type PoolWorkerInit, type StrayEvent } from './pool-protocol.ts';
import { rewardFunctions } from './registry.ts';
import { runReward, type RewardFailure } from './runner.ts';
import type { BatchRewardFunction, RewardFunction, RewardInput, RewardResult, SingleRewardFunction } from './types.ts';

const init = workerData as PoolWorkerInit;
const calls = new AsyncLocalStorage<string>();
const LIBRARY = packageFile('');

/** The error in one line: name and message, and the first place in the user's code it was thrown from. */
function oneLine(err: unknown): string {
  try {
    const text = err instanceof Error ? `${err.name}: ${err.message}` : `${typeof err} ${String(err)}`;
    const flat = text.replace(/\s+/g, ' ').trim();
    const short = flat.length > 300 ? `${flat.slice(0, 300)}...` : flat;
    const frame =
      err instanceof Error && typeof err.stack === 'string'
        ? err.stack
            .split('\n')
            .slice(1)
            .map((l) => l.trim().replace(/^at /, ''))
            .find((l) => !l.includes('node:') && !l.includes('/node_modules/') && !l.includes(LIBRARY) && /[/\\]/.test(l))
        : undefined;
    return frame ? `${short} (at ${frame.replace(/^.*\((.*)\)$/, '$1')})` : short;
  } catch {
    return 'a value that cannot be printed';
  }
}

function stray(what: StrayEvent['what'], err: unknown): void {
  const event: StrayEvent = { kind: 'stray', what, record: calls.getStore(), message: oneLine(err) };
  try {
    postEvent(event);
  } catch {
    // the pool is gone: nothing to tell
  }
}
process.on('unhandledRejection', (reason) => stray('unhandled rejection', reason));
process.on('uncaughtException', (err) => stray('uncaught exception', err));

/** From the built package, a user's TypeScript needs tsx, registered here as the user registered it for papo. */
async function typeScriptLoader(files: string[]): Promise<void> {
  if (!RUNS_BUILT || !files.some((f) => /\.[cm]?ts$/.test(f))) return;
  try {
    const tsx = (await import('tsx/esm/api' as string)) as { register: () => void };
    tsx.register();
  } catch {
    // no tsx: importUserModule says what to install
  }
}

async function loadReward(): Promise<RewardFunction> {
  const file = rewardFunctions.has(init.spec) ? undefined : splitRewardSpec(init.spec);
  await typeScriptLoader([...init.modules, ...(file ? [file.file] : [])]);
  for (const m of init.modules) await importUserModule(m, init.baseDir, '--import');
  if (file) return importRewardFile(file, init.baseDir, init.rewardType);
  if (rewardFunctions.has(init.spec)) return rewardFunctions.get(init.spec);
  throw new Error(
    `${SCORE_FUNCTION_KEY}: reward '${init.spec}' is not registered in the reward workers: register it in a module given with --import` +
      (init.modules.length ? ` (imported: ${init.modules.map((m) => path.basename(m)).join(', ')})` : ''),
  );
}

serveCalls<PoolCalls>(async () => {
  const reward = await loadReward();
  // read once: the object is the user's
  const name = String(reward.name);
  const mode = reward.mode;
  let state = new Int32Array(new SharedArrayBuffer(4 * STATE.inputs));
  let journal: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  let indexOf = new Map<RewardInput, number>();
  const encoder = new TextEncoder();
  let lastLook = -Infinity;
  const started = (i: number) => {
    Atomics.store(state, STATE.running, i + 1);
    Atomics.store(state, STATE.last, i + 1);
    Atomics.store(state, STATE.inputs + i, INPUT_CALLED);
    Atomics.add(state, STATE.events, 1);
  };
  const returned = () => Atomics.store(state, STATE.running, 0);
  const settled = (i: number, outcome: { result: RewardResult } | { failure: RewardFailure }) => {
    Atomics.store(state, STATE.inputs + i, INPUT_SETTLED);
    Atomics.add(state, STATE.events, 1);
    // (a look costs ~3 us: not more often than every 2 ms; a call that allocates much takes longer than that)
    const now = performance.now();
    const look = now - lastLook >= 2;
    if (look) lastLook = now;
    if (look && getHeapStatistics().external_memory > init.maxBufferBytes) {
      Atomics.store(state, STATE.cause, CAUSE_BUFFERS);
      Atomics.store(state, STATE.running, mode === 'batch' ? RUNNING_BATCH : i + 1);
      process.exit(1);
    }
    const line = `${JSON.stringify('result' in outcome ? [i, outcome.result] : [i, outcome.failure.kind, outcome.failure.reason])}\n`;
    const at = Atomics.load(state, STATE.journal);
    const { read, written } = encoder.encodeInto(line, journal.subarray(at));
    if (read === line.length) Atomics.store(state, STATE.journal, at + written);
  };
  let wrapped: RewardFunction;
  if (mode === 'single') {
    const user = reward as SingleRewardFunction;
    wrapped = {
      name,
      mode,
      score: (x) => {
        const i = indexOf.get(x) ?? -1;
        started(i);
        try {
          return calls.run(x.id, () => user.score(x));
        } finally {
          returned();
        }
      },
    };
  } else if (mode === 'batch') {
    const user = reward as BatchRewardFunction;
    wrapped = {
      name,
      mode,
      scoreBatch: (xs) => {
        for (let i = 0; i < xs.length; i++) Atomics.store(state, STATE.inputs + i, INPUT_CALLED);
        Atomics.store(state, STATE.running, RUNNING_BATCH);
        Atomics.add(state, STATE.events, 1);
        try {
          return calls.run(xs.map((x) => x.id).join(', '), () => user.scoreBatch(xs));
        } finally {
          returned();
        }
      },
    };
  } else throw new Error(`${SCORE_FUNCTION_KEY}: reward function ${name}: mode must be 'single' or 'batch'`);
  return {
    calls: {
      describe: () => ({ name, mode }),
      score: ({ inputs, state: shared, journal: bytes, timeoutMs, concurrency }) => {
        state = new Int32Array(shared);
        journal = new Uint8Array(bytes);
        indexOf = new Map(inputs.map((x, i) => [x, i]));
        return runReward(wrapped, inputs, { timeoutMs, concurrency, onSettled: settled });
      },
    },
  };
});
