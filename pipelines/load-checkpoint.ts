/**
 * `trainer.load_checkpoint_path`, as EasyR1 means it: a new run starts from another run's checkpoint, its
 * weights, optimizer state, step and data position (EasyR1 loads the actor, the optimizer and the
 * dataloader state and goes on from `global_step_N`), and trains to `max_steps` in its own directory. The
 * reference policy stays the weights of `worker.actor.model.model_path`, as EasyR1's reference model is.
 * The path is a checkpoint directory (`<run>/checkpoints/step_000010`) or a run directory (its latest
 * complete checkpoint). A run that already has checkpoints of its own continues from those (`--resume`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointStore, type Checkpoint } from '../storage/checkpoints.ts';

const KEY = 'trainer.load_checkpoint_path';

/** The checkpoint `where` names, and the directory it was read from; errors name the key and the path. */
export async function loadTrainCheckpoint(where: string): Promise<{ checkpoint: Checkpoint; from: string }> {
  const abs = path.resolve(where);
  if (!fs.existsSync(abs)) throw new Error(`${KEY}: ${where} does not exist`);
  let store: CheckpointStore;
  let name: string | undefined;
  if (fs.existsSync(path.join(abs, 'checkpoints'))) {
    store = new CheckpointStore(abs);
    name = await store.latest();
    if (!name) throw new Error(`${KEY}: the run ${where} holds no complete checkpoint`);
  } else if (/^step_\d+$/.test(path.basename(abs)) && path.basename(path.dirname(abs)) === 'checkpoints') {
    store = new CheckpointStore(path.dirname(path.dirname(abs)));
    name = path.basename(abs);
  } else throw new Error(`${KEY}: ${where} is neither a run directory nor a checkpoint directory (<run>/checkpoints/step_N)`);
  let checkpoint: Checkpoint;
  try {
    checkpoint = await store.load(name);
  } catch (err) {
    throw new Error(`${KEY}: cannot read the checkpoint ${path.join(store.dir, name)}: ${(err as Error).message}`, { cause: err });
  }
  if (checkpoint.kind !== 'train')
    throw new Error(`${KEY}: ${path.join(store.dir, name)} is a papo ${checkpoint.kind} checkpoint; start from its weights with worker.actor.model.model_path`);
  return { checkpoint, from: path.join(store.dir, name) };
}
