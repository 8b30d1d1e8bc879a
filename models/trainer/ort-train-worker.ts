/**
 * Worker-thread entry of the onnxruntime trainer: owns an OrtTrainRunner (sessions, parameters, AdamW
 * state, accumulated gradients). Calls are handled strictly one after another, in arrival order, so a
 * forward, its backward and the step that follows never interleave.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OrtTrainRunner } from './ort-train-runner.ts';
import type { TrainerCall, TrainerInit, TrainerReply } from './ort-train-protocol.ts';

const port = parentPort;
if (!port) throw new Error('models/trainer/ort-train-worker.ts must run as a worker_thread');
const post = (m: TrainerReply, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

const init = workerData as TrainerInit;
let runner: OrtTrainRunner;
try {
  runner = await OrtTrainRunner.create(init.config, init.params, init.optimizer, init.options);
} catch (err) {
  post({ type: 'fatal', message: `onnxruntime trainer failed to start: ${(err as Error).message}`, stack: (err as Error).stack });
  process.exit(1);
}
post({ type: 'ready' });

/** Fresh arrays in a result are this worker's own: move them instead of cloning. */
function buffersOf(r: unknown): ArrayBuffer[] {
  if (r instanceof Float32Array) return [r.buffer as ArrayBuffer];
  if (r && typeof r === 'object') {
    const out: ArrayBuffer[] = [];
    for (const v of Object.values(r)) if (v instanceof Float32Array || (v && typeof v === 'object')) out.push(...buffersOf(v));
    return out;
  }
  return [];
}

async function handle(msg: TrainerCall): Promise<unknown> {
  switch (msg.method) {
    case 'forward':
      return runner.forward(msg.rows);
    case 'backward':
      return runner.backward(msg.cotangent);
    case 'forwardBackward':
      return runner.forwardBackward(msg.rows, msg.cotangent);
    case 'step':
      return runner.step();
    case 'zeroGrad':
      return runner.zeroGrad();
    case 'gradients':
      return runner.gradients();
    case 'getParams':
      return runner.getParams();
    case 'setParams':
      return runner.setParams(msg.params);
    case 'exportState':
      return runner.exportState();
    case 'importState':
      return runner.importState(msg.state);
    case 'heldArrays':
      return runner.heldArrays();
    case 'close':
      await runner.release();
      return null;
  }
}

let queue: Promise<unknown> = Promise.resolve();
port.on('message', (msg: TrainerCall) => {
  queue = queue.then(async () => {
    try {
      const result = await handle(msg);
      post({ type: 'result', id: msg.id, result: result ?? null }, buffersOf(result));
      if (msg.method === 'close') port.close();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      post({ type: 'error', id: msg.id, message: e.message, stack: e.stack });
    }
  });
});
