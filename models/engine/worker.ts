/**
 * Worker-thread entry of the policy engine: owns the onnxruntime sessions and the weight snapshots.
 * Calls start in arrival order, interleaved: a call that awaits onnxruntime lets later calls (e.g. a
 * weight update) be handled meanwhile, which is safe because each call holds its own snapshot.
 */
import { workerData } from 'node:worker_threads';
import { serveCalls } from '../../util/serve-calls.ts';
import { OrtPolicyRunner } from './runner.ts';
import type { EngineCalls, WorkerInit } from './protocol.ts';

const init = workerData as WorkerInit;
serveCalls<EngineCalls>(
  async () => {
    const runner = await OrtPolicyRunner.create(init.config, init.options);
    return {
      calls: {
        setWeights: ({ version, buffer, slot }) => {
          runner.setWeights({ version, buffer }, slot);
          return version;
        },
        getWeights: (version) => runner.getWeights(version),
        sample: ({ request, first }) => runner.sample(request, first),
        logProbs: ({ request, first }) => runner.logProbs(request, first),
        logProbViews: ({ requests, first }) => runner.logProbViews(requests, first),
      },
      close: () => runner.release(),
    };
  },
  { interleave: true },
);
