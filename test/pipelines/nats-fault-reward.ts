/**
 * The reward of the NATS fault tests, `fault-digit-share`: the digit share of tiny-run.ts, registered under a
 * name of its own so that a worker process loads it with `papo --import test/pipelines/nats-fault-reward.ts
 * worker`. Two faults on demand:
 * - with `PAPO_TEST_DIE_ON_REWARD=<file>` in the environment and no such file yet, its first call creates the
 *   file and SIGKILLs its own process: a worker killed in the middle of a shard;
 * - `faultControl.slowMs` (in process): the next call waits that long, a shard slower than the ack wait.
 */
import * as fs from 'node:fs';
import { defineReward, registerReward } from '../../tasks/index.ts';
import { digitShare } from './tiny-run.ts';

export const FAULT_REWARD = 'fault-digit-share';

export const faultControl = { slowMs: 0, slowCalls: 0 };

registerReward(
  FAULT_REWARD,
  defineReward(FAULT_REWARD, async (input) => {
    const die = process.env.PAPO_TEST_DIE_ON_REWARD;
    if (die && !fs.existsSync(die)) {
      fs.writeFileSync(die, String(process.pid));
      process.kill(process.pid, 'SIGKILL');
    }
    if (faultControl.slowMs > 0) {
      const ms = faultControl.slowMs;
      faultControl.slowMs = 0;
      faultControl.slowCalls++;
      await new Promise((r) => setTimeout(r, ms));
    }
    return digitShare.score(input);
  }),
);
