/**
 * The worker thread of `BackgroundWriter`: writes checkpoints and rollout-log steps, one request at a
 * time, in the order received.
 */
import { parentPort } from 'node:worker_threads';
import { CheckpointStore, type Checkpoint } from './checkpoints.ts';
import { RolloutLog, type RolloutStepRecord } from './rollout-log.ts';
import type { RetainRequest, WriterRequest, WriterReply } from './background-writer.ts';

async function handle(req: WriterRequest): Promise<unknown> {
  if (req.kind === 'rollout') return new RolloutLog(req.runDir).append(req.record as RolloutStepRecord);
  const store = new CheckpointStore(req.runDir);
  const saved = await store.save(req.checkpoint as Checkpoint);
  const removed = req.retain ? await retain(store, req.retain) : [];
  return { ...saved, removed };
}

function retain(store: CheckpointStore, r: RetainRequest): Promise<string[]> {
  return store.retain({
    keepLast: r.keepLast,
    best: r.metric ? { name: r.metric, higherIsBetter: r.higherIsBetter, value: (name) => store.metricOf(name, r.metric!) } : undefined,
  });
}

parentPort!.on('message', (req: WriterRequest) => {
  handle(req).then(
    (result) => parentPort!.postMessage({ id: req.id, ok: true, result } satisfies WriterReply),
    (err: Error) => parentPort!.postMessage({ id: req.id, ok: false, error: err.message } satisfies WriterReply),
  );
});
