/**
 * TensorBoard event files: the run's scalars where `tensorboard --logdir runs` finds them
 * (`<run>/tensorboard/events.out.tfevents.<time>.<host>.<pid>`), written as the run goes so a running job
 * can be watched.
 *
 * The format is TensorFlow's TFRecord framing around `Event` protocol buffers:
 *   uint64 length (little-endian) | uint32 masked_crc32c(length) | data[length] | uint32 masked_crc32c(data)
 * with masked_crc32c(x) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32), c = CRC32C of x. The first
 * event of a file carries `file_version: "brain.Event:2"`; each step is one event with its `step`,
 * `wall_time` and a `summary` of `value { tag, simple_value }`, one per metric, named as in metrics.jsonl;
 * a text summary (`texts`: validation generations) is a `value { tag, tensor { DT_STRING }, metadata }` for
 * TensorBoard's text plugin, its Markdown rendered.
 * CRC32C comes from `@node-rs/crc32` (storage/crc32c.ts), the messages from protobufjs with the few
 * fields of tensorflow/core/util/event.proto and summary.proto declared below.
 *
 * A resumed run rewinds what is on disk to its checkpoint's step, as it does metrics.jsonl, and then writes a
 * new file: every step is on disk exactly once. (TensorBoard itself drops the points of a step it sees again,
 * but only as it happens to read files and only in its own readers; a pandas export or tbparse would show
 * both.) A record cut short by a kill is dropped; a record that fails its checksum is an error naming the
 * file and the byte offset.
 *
 * @example
 * const tb = await TensorBoardWriter.open('runs/train/tensorboard', { rewindTo: 10 });
 * tb.scalars(11, { 'critic/score/mean': 0.42, 'actor/kl_prcp_loss': -0.2 });
 * tb.close();
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { crc32cOf } from './crc32c.ts';
import { isTmpName, tmpSibling } from './atomic.ts';

/** The fields of `tensorflow.Event` and `tensorflow.Summary` a scalar writer needs (field numbers as upstream). */
const schema = protobuf.Root.fromJSON({
  nested: {
    tensorflow: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['file_version', 'summary'] } },
          fields: {
            wall_time: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            file_version: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Value: {
              fields: {
                tag: { type: 'string', id: 1 },
                simple_value: { type: 'float', id: 2 },
                tensor: { type: 'TensorProto', id: 8 },
                metadata: { type: 'SummaryMetadata', id: 9 },
              },
            },
          },
        },
        // a text summary: a scalar DT_STRING tensor, marked for the text plugin (tensor.proto, summary.proto)
        TensorProto: {
          fields: {
            dtype: { type: 'int32', id: 1 },
            tensor_shape: { type: 'TensorShapeProto', id: 2 },
            string_val: { rule: 'repeated', type: 'bytes', id: 8 },
          },
        },
        TensorShapeProto: { fields: {} },
        SummaryMetadata: {
          fields: { plugin_data: { type: 'PluginData', id: 1 } },
          nested: { PluginData: { fields: { plugin_name: { type: 'string', id: 1 }, content: { type: 'bytes', id: 2 } } } },
        },
      },
    },
  },
});
const EventType = schema.lookupType('tensorflow.Event');

export const FILE_VERSION = 'brain.Event:2';
/** tensorflow.DataType DT_STRING */
const DT_STRING = 7;
const EVENT_FILE = 'tfevents';
const MASK_DELTA = 0xa282ead8;

/** One decoded event: either the file's version header or a step's scalars. */
export interface TensorBoardEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars?: Record<string, number>;
  /** text summaries (TensorBoard's Text tab, Markdown rendered) */
  texts?: Record<string, string>;
}

/** TFRecord's checksum: CRC32C rotated right by 15 bits plus a constant. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32cOf(bytes);
  return (((c >>> 15) | (c << 17)) + MASK_DELTA) >>> 0;
}

/** One TFRecord: length, its masked CRC, the data, its masked CRC. */
export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(16 + data.length);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** The encoded `Event` message. */
export function encodeEvent(e: TensorBoardEvent): Uint8Array {
  const msg: Record<string, unknown> = { wall_time: e.wallTime, step: e.step };
  if (e.fileVersion !== undefined) msg.file_version = e.fileVersion;
  const values: Record<string, unknown>[] = [];
  if (e.scalars) values.push(...Object.entries(e.scalars).map(([tag, v]) => ({ tag, simple_value: v })));
  if (e.texts)
    values.push(
      ...Object.entries(e.texts).map(([tag, text]) => ({
        tag,
        tensor: { dtype: DT_STRING, tensor_shape: {}, string_val: [Buffer.from(text, 'utf8')] },
        metadata: { plugin_data: { plugin_name: 'text', content: Buffer.alloc(0) } },
      })),
    );
  if (e.scalars || e.texts) msg.summary = { value: values };
  return EventType.encode(EventType.fromObject(msg)).finish();
}

function decodeEvent(data: Uint8Array): TensorBoardEvent {
  const o = EventType.toObject(EventType.decode(data), { longs: Number, defaults: true, arrays: true }) as {
    wall_time: number;
    step: number;
    file_version?: string;
    summary?: { value: { tag: string; simple_value: number; tensor?: { string_val: Uint8Array[] }; metadata?: { plugin_data?: { plugin_name: string } } }[] };
  };
  const e: TensorBoardEvent = { wallTime: o.wall_time, step: o.step };
  if (o.file_version) e.fileVersion = o.file_version;
  if (o.summary) {
    const isText = (v: { metadata?: { plugin_data?: { plugin_name: string } } }) => v.metadata?.plugin_data?.plugin_name === 'text';
    const scalars = o.summary.value.filter((v) => !isText(v));
    const texts = o.summary.value.filter(isText);
    if (scalars.length || !texts.length) e.scalars = Object.fromEntries(scalars.map((v) => [v.tag, v.simple_value]));
    if (texts.length) e.texts = Object.fromEntries(texts.map((v) => [v.tag, Buffer.from(v.tensor?.string_val[0] ?? new Uint8Array()).toString('utf8')]));
  }
  return e;
}

export interface EventFileContents {
  events: TensorBoardEvent[];
  /** bytes of whole, verified records from the start */
  validBytes: number;
  /** a record cut short at the end of the file (a kill mid-write): not an error, it is dropped */
  tornTail: boolean;
}

/**
 * Reads an event file, verifying both checksums of every record. A last record cut short (a kill while
 * writing) is reported as `tornTail`; a checksum mismatch is an error naming the file and byte offset.
 */
export function readEventFile(file: string): EventFileContents {
  const buf = fs.readFileSync(file);
  const events: TensorBoardEvent[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 12) return { events, validBytes: at, tornTail: true };
    const header = buf.subarray(at, at + 8);
    if (buf.readUInt32LE(at + 8) !== maskedCrc32c(header))
      throw new Error(`${file}: record at byte ${at}: the checksum of its length does not match (the file is damaged)`);
    const length = Number(buf.readBigUInt64LE(at));
    if (buf.length - at < 16 + length) return { events, validBytes: at, tornTail: true };
    const data = buf.subarray(at + 12, at + 12 + length);
    if (buf.readUInt32LE(at + 12 + length) !== maskedCrc32c(data))
      throw new Error(`${file}: record at byte ${at}: the checksum of its ${length} data bytes does not match (the file is damaged)`);
    try {
      events.push(decodeEvent(data));
    } catch (err) {
      throw new Error(`${file}: record at byte ${at} is not a TensorBoard Event: ${(err as Error).message}`, { cause: err });
    }
    at += 16 + length;
  }
  return { events, validBytes: at, tornTail: false };
}

/** The event files in `dir`, in the order TensorBoard reads them (by name: the time comes first). */
export function eventFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => n.includes(EVENT_FILE) && !isTmpName(n))
    .sort()
    .map((n) => path.join(dir, n));
}

/** Replaces `file` by `data` through a temporary whose name TensorBoard ignores (it reads any name holding "tfevents"). */
function replaceFile(file: string, data: Uint8Array): void {
  const tmp = tmpSibling(path.join(path.dirname(file), 'rewind'));
  try {
    fs.writeFileSync(tmp, data, { flag: 'wx' });
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Rewinds the event files of `dir` to the steps up to `step` (a resumed run writes the later ones again),
 * dropping records cut short by a kill and leftovers of an interrupted rewind. A file left without any step
 * is removed (it is this writer's own, and holds nothing a reader shows). Returns what was changed.
 */
export function rewindEventFiles(dir: string, step: number): string[] {
  if (!fs.existsSync(dir)) return [];
  const notes: string[] = [];
  for (const n of fs.readdirSync(dir).filter(isTmpName)) fs.rmSync(path.join(dir, n), { force: true });
  for (const file of eventFiles(dir)) {
    if (!fs.lstatSync(file).isFile()) continue; // not an event file this writer made (a link, a directory): never read or written through
    const { events, tornTail } = readEventFile(file);
    const kept = events.filter((e) => !(e.scalars || e.texts) || e.step <= step);
    if (kept.length === events.length && !tornTail) continue;
    const dropped = events.length - kept.length;
    if (!kept.some((e) => e.scalars || e.texts)) {
      fs.rmSync(file);
      notes.push(`tensorboard: removed ${path.basename(file)} (only steps after ${step})`);
    } else {
      replaceFile(file, Buffer.concat(kept.map((e) => frameRecord(encodeEvent(e)))));
      notes.push(
        `tensorboard: ${path.basename(file)} rewound to step ${step} (${dropped} step(s) after it dropped${tornTail ? ', and a record cut short' : ''})`,
      );
    }
  }
  return notes;
}

export interface TensorBoardWriterOptions {
  /** a resumed run: rewind the directory's files to this step first (rewindEventFiles) */
  rewindTo?: number;
  /** what the rewind changed, for the run's log */
  onNote?: (note: string) => void;
}

/**
 * Appends each step's scalars to a new event file of `dir`, one `write` per step (visible to a reader at
 * once). The file is created with the first step, so a launch that trains nothing leaves none.
 */
export class TensorBoardWriter {
  readonly dir: string;
  private fd: number | undefined;
  private fileName: string | undefined;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static open(dir: string, opts: TensorBoardWriterOptions = {}): TensorBoardWriter {
    if (opts.rewindTo !== undefined) for (const note of rewindEventFiles(dir, opts.rewindTo)) opts.onNote?.(note);
    return new TensorBoardWriter(dir);
  }

  /** The file this launch writes (once a step is written). */
  get file(): string | undefined {
    return this.fileName && path.join(this.dir, this.fileName);
  }

  /** Writes one step's metrics as scalars named by their keys (non-numbers skipped). */
  scalars(step: number, metrics: Record<string, unknown>, wallTime = Date.now() / 1000): void {
    const scalars: Record<string, number> = {};
    for (const [k, v] of Object.entries(metrics)) if (typeof v === 'number') scalars[k] = v;
    const fd = this.fd ?? this.create(wallTime);
    fs.writeSync(fd, frameRecord(encodeEvent({ wallTime, step, scalars })));
  }

  /** Writes text summaries (Markdown; a table renders as one) for a step: TensorBoard's Text tab. */
  texts(step: number, texts: Record<string, string>, wallTime = Date.now() / 1000): void {
    const fd = this.fd ?? this.create(wallTime);
    fs.writeSync(fd, frameRecord(encodeEvent({ wallTime, step, texts })));
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private create(wallTime: number): number {
    fs.mkdirSync(this.dir, { recursive: true });
    const base = `events.out.tfevents.${Math.floor(wallTime)}.${os.hostname()}.${process.pid}`;
    for (let n = 0; ; n++) {
      const name = n ? `${base}.${n}` : base;
      try {
        this.fd = fs.openSync(path.join(this.dir, name), 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw new Error(`tensorboard: cannot create an event file in ${this.dir}: ${(err as Error).message}`, { cause: err });
      }
      this.fileName = name;
      fs.writeSync(this.fd, frameRecord(encodeEvent({ wallTime, step: 0, fileVersion: FILE_VERSION })));
      return this.fd;
    }
  }
}
