/**
 * The worker thread of `BackgroundWriter`: writes checkpoints and rollout-log steps, one request at a
 * time, in the order received.
 */
import { serveCalls } from '../util/serve-calls.ts';
import { CheckpointStore } from './checkpoints.ts';
import { RolloutLog } from './rollout-log.ts';
import type { RetainRequest, WriterCalls } from './background-writer.ts';

serveCalls<WriterCalls>(() => ({
  calls: {
    appendRollout: ({ runDir, record }) => new RolloutLog(runDir).append(record),
    saveCheckpoint: async ({ runDir, checkpoint, retain: r }) => {
      const store = new CheckpointStore(runDir);
      const saved = await store.save(checkpoint);
      return { ...saved, removed: r ? await retain(store, r) : [] };
    },
  },
}));

function retain(store: CheckpointStore, r: RetainRequest): Promise<string[]> {
  return store.retain({
    keepLast: r.keepLast,
    best: r.metric ? { name: r.metric, higherIsBetter: r.higherIsBetter, value: (name) => store.metricOf(name, r.metric!) } : undefined,
  });
}
