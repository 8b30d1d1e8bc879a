/**
 * The reward of the NATS fault tests, `fault-digit-share`: the digit share of tiny-run.ts, registered under a
 * name of its own so that a worker process loads it with `papo --import test/pipelines/nats-fault-reward.ts
 * worker`. Two faults on demand:
 * - with `PAPO_TEST_DIE_ON_REWARD=<file>` in the environment and no such file yet, its first call creates the
 *   file and SIGKILLs its own process: a worker killed in the middle of a shard;
 * - with `PAPO_TEST_SLOW_REWARD=<file>` in the environment, the first call that finds the file renames it to
 *   `<file>.taken` and waits the milliseconds written in it: a shard slower than the ack wait. (A file, not a
 *   variable: the reward of an `--import`ed module runs in the reward pool's threads.)
 */
import * as fs from 'node:fs';
import { defineReward, registerReward } from '../../tasks/index.ts';
import { digitShare } from './tiny-run.ts';

export const FAULT_REWARD = 'fault-digit-share';

/** Makes the next call of the reward, in any thread of this machine, wait `ms`. */
export function slowNextCall(ms: number): void {
  const file = process.env.PAPO_TEST_SLOW_REWARD;
  if (!file) throw new Error('PAPO_TEST_SLOW_REWARD is not set');
  fs.writeFileSync(`${file}.tmp`, String(ms));
  fs.renameSync(`${file}.tmp`, file);
}

/** How many calls waited (0 or 1). */
export function slowCalls(): number {
  const file = process.env.PAPO_TEST_SLOW_REWARD;
  return file && fs.existsSync(`${file}.taken`) ? 1 : 0;
}

registerReward(
  FAULT_REWARD,
  defineReward(FAULT_REWARD, async (input) => {
    const die = process.env.PAPO_TEST_DIE_ON_REWARD;
    if (die && !fs.existsSync(die)) {
      fs.writeFileSync(die, String(process.pid));
      process.kill(process.pid, 'SIGKILL');
    }
    const slow = process.env.PAPO_TEST_SLOW_REWARD;
    if (slow && fs.existsSync(slow)) {
      let ms = 0;
      try {
        ms = Number(fs.readFileSync(slow, 'utf8'));
        fs.renameSync(slow, `${slow}.taken`); // only one caller wins
      } catch {
        ms = 0;
      }
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    }
    return digitShare.score(input);
  }),
);
