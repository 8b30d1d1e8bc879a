/**
 * A seeded, resumable stream of records over epochs.
 *
 * Epoch e of a split visits every record index once, in an order drawn from `Rng.derive(seed, 'order',
 * split, e)` (or in index order when `shuffle` is false, as evaluation wants). The stream's whole state is
 * a small JSON object (`StreamCursor`): a checkpoint stores it and `RecordStream.resume` continues with
 * exactly the record that would have come next.
 */
import { Rng } from '../util/rng.ts';
import { checkSplit, type Split, type Task, type TaskRecord } from './types.ts';

export interface StreamOptions {
  split: Split;
  /** Seeds the per-epoch order. Default 0. */
  seed?: number;
  /** Default: true for train, false otherwise. */
  shuffle?: boolean;
  /** Stop after this many epochs; default unbounded. */
  epochs?: number;
}

export interface StreamCursor {
  readonly version: 1;
  readonly task: string;
  readonly fingerprint: string;
  readonly split: Split;
  readonly seed: number;
  readonly shuffle: boolean;
  /** null: unbounded */
  readonly epochs: number | null;
  readonly epoch: number;
  /** Records already taken from this epoch. */
  readonly position: number;
}

export class RecordStream implements IterableIterator<TaskRecord> {
  private order: Uint32Array | null = null;
  private orderEpoch = -1;

  private constructor(
    readonly task: Task,
    private state: StreamCursor,
  ) {
    if (task.size(state.split) <= 0) throw new Error(`${task.name}: split ${state.split} is empty`);
  }

  static open(task: Task, opts: StreamOptions): RecordStream {
    const split = checkSplit(opts.split);
    const seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(seed)) throw new Error(`stream seed must be a safe integer, got ${seed}`);
    const epochs = opts.epochs ?? null;
    if (epochs !== null && !(Number.isInteger(epochs) && epochs > 0)) {
      throw new Error(`stream epochs must be a positive integer, got ${epochs}`);
    }
    return new RecordStream(task, {
      version: 1,
      task: task.name,
      fingerprint: task.fingerprint,
      split,
      seed,
      shuffle: opts.shuffle ?? split === 'train',
      epochs,
      epoch: 0,
      position: 0,
    });
  }

  /** Continue a stream from a saved cursor; refuses a cursor made for another task configuration. */
  static resume(task: Task, cursor: StreamCursor): RecordStream {
    if (cursor?.version !== 1) throw new Error(`unsupported stream cursor ${JSON.stringify(cursor)}`);
    if (cursor.task !== task.name || cursor.fingerprint !== task.fingerprint) {
      throw new Error(
        `stream cursor is for task ${cursor.task} (${cursor.fingerprint}), not ${task.name} (${task.fingerprint}): ` +
          'the data configuration changed since the checkpoint',
      );
    }
    checkSplit(cursor.split);
    const n = task.size(cursor.split);
    if (!(Number.isInteger(cursor.epoch) && cursor.epoch >= 0 && Number.isInteger(cursor.position))) {
      throw new Error(`stream cursor has a bad epoch/position: ${JSON.stringify(cursor)}`);
    }
    if (cursor.position < 0 || cursor.position > n) {
      throw new Error(`stream cursor position ${cursor.position} outside split ${cursor.split} of size ${n}`);
    }
    return new RecordStream(task, { ...cursor });
  }

  /** The position to store in a checkpoint (a copy; JSON-serialisable). */
  cursor(): StreamCursor {
    return { ...this.state };
  }

  get epoch(): number {
    return this.normalised().epoch;
  }

  /** The index (within the split) of the record `next()` will return, or null at the end. */
  peekIndex(): number | null {
    const s = this.normalised();
    if (s.epochs !== null && s.epoch >= s.epochs) return null;
    return this.orderFor(s.epoch)[s.position];
  }

  next(): IteratorResult<TaskRecord> {
    const index = this.peekIndex();
    if (index === null) return { done: true, value: undefined };
    const s = this.normalised();
    this.state = { ...s, position: s.position + 1 };
    return { done: false, value: this.task.recordAt(s.split, index) };
  }

  /** Up to n records (fewer only when a bounded stream ends). */
  take(n: number): TaskRecord[] {
    const out: TaskRecord[] = [];
    for (let i = 0; i < n; i++) {
      const r = this.next();
      if (r.done) break;
      out.push(r.value);
    }
    return out;
  }

  [Symbol.iterator](): IterableIterator<TaskRecord> {
    return this;
  }

  /** Roll a finished epoch over to the next one. */
  private normalised(): StreamCursor {
    const n = this.task.size(this.state.split);
    if (this.state.position >= n) this.state = { ...this.state, epoch: this.state.epoch + 1, position: 0 };
    return this.state;
  }

  private orderFor(epoch: number): Uint32Array {
    if (this.orderEpoch !== epoch || !this.order) {
      this.order = epochOrder(this.task.size(this.state.split), this.state, epoch);
      this.orderEpoch = epoch;
    }
    return this.order;
  }
}

/** The order of record indices in one epoch. */
export function epochOrder(n: number, c: Pick<StreamCursor, 'seed' | 'split' | 'shuffle'>, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!c.shuffle) return order;
  const rng = Rng.derive(c.seed, 'order', c.split, epoch);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
