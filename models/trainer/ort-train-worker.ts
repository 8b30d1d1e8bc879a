/**
 * Worker-thread entry of the onnxruntime trainer: owns an OrtTrainRunner (sessions, parameters, AdamW
 * state, accumulated gradients). Calls are handled strictly one after another, in arrival order, so a
 * forward, its backward and the step that follows never interleave.
 */
import { workerData } from 'node:worker_threads';
import { serveCalls } from '../../util/serve-calls.ts';
import { OrtTrainRunner } from './ort-train-runner.ts';
import type { TrainerCalls, TrainerInit } from './ort-train-protocol.ts';

const init = workerData as TrainerInit;
serveCalls<TrainerCalls>(async () => {
  const runner = await OrtTrainRunner.create(init.config, init.params, init.optimizer, init.options);
  return {
    calls: {
      forward: (rows) => runner.forward(rows),
      backward: (cotangent) => runner.backward(cotangent),
      forwardBackward: ({ rows, cotangent }) => runner.forwardBackward(rows, cotangent),
      takeGradients: () => runner.takeGradients(),
      applyGradients: (grads) => runner.applyGradients(grads),
      zeroGrad: () => runner.zeroGrad(),
      gradients: () => runner.gradients(),
      getParams: () => runner.getParams(),
      setParams: (params) => runner.setParams(params),
      exportState: () => runner.exportState(),
      importState: (state) => runner.importState(state),
      heldArrays: () => runner.heldArrays(),
    },
    close: () => runner.release(),
  };
});
