/**
 * Worker-thread entry of the policy engine: owns the onnxruntime sessions and the weight snapshots.
 * Messages are handled in arrival order; a call that awaits onnxruntime lets later messages (e.g. a
 * weight update) be handled meanwhile, which is safe because each call holds its own snapshot.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OrtPolicyRunner } from './runner.ts';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.ts';
import type { SampleResult, LogProbResult } from './types.ts';

const port = parentPort;
if (!port) throw new Error('models/engine/worker.ts must run as a worker_thread');
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

function resultBuffers(r: unknown): ArrayBuffer[] {
  // Typed arrays in results are fresh copies owned by this worker: move them instead of cloning.
  const out: ArrayBuffer[] = [];
  if (r && typeof r === 'object' && 'responses' in r) {
    for (const s of (r as SampleResult).responses)
      out.push(s.tokens.buffer as ArrayBuffer, s.logprobs.buffer as ArrayBuffer, s.samplingLogprobs.buffer as ArrayBuffer);
  } else if (r && typeof r === 'object' && 'logprobs' in r) {
    const lr = r as LogProbResult;
    for (const a of [...lr.logprobs, ...(lr.entropy ?? [])]) out.push(a.buffer as ArrayBuffer);
  }
  return out;
}

const init = workerData as WorkerInit;
let runner: OrtPolicyRunner;
try {
  runner = await OrtPolicyRunner.create(init.config, init.options);
} catch (err) {
  post({ type: 'fatal', message: `policy engine failed to start: ${(err as Error).message}`, stack: (err as Error).stack });
  process.exit(1);
}
post({ type: 'ready' });

// Calls in progress: `close` waits for them before releasing the sessions they use.
const inflight = new Set<Promise<unknown>>();

port.on('message', (msg: ToWorker) => {
  const reply = async () => {
    switch (msg.type) {
      case 'weights':
        runner.setWeights({ version: msg.version, buffer: msg.buffer }, msg.slot);
        return msg.version;
      case 'sample':
        return runner.sample(msg.request);
      case 'logprobs':
        return runner.logProbs(msg.request);
      case 'close':
        await Promise.allSettled([...inflight]);
        await runner.release();
        return null;
    }
  };
  const done = reply();
  if (msg.type !== 'close') {
    inflight.add(done);
    const forget = () => inflight.delete(done);
    done.then(forget, forget);
  }
  done.then(
    (result) => {
      post({ type: 'result', id: msg.id, result }, resultBuffers(result));
      if (msg.type === 'close') port.close();
    },
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      post({ type: 'error', id: msg.id, message: e.message, stack: e.stack });
    },
  );
});
