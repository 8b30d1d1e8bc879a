/**
 * A TensorBoard event-file reader written from the format's description alone, sharing no code with
 * storage/tensorboard.ts: its own CRC32C (bitwise table over the Castagnoli polynomial), its own TFRecord
 * framing and its own protobuf wire decoder for the `Event` / `Summary` fields TensorBoard's scalars use
 * (tensorflow/core/util/event.proto: wall_time = 1 double, step = 2 int64, file_version = 3 string,
 * summary = 5; summary.proto: value = 1, Value.tag = 1 string, Value.simple_value = 2 float).
 * Any checksum mismatch, short record or malformed message throws.
 */
import * as fs from 'node:fs';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function masked(crc: number): number {
  const rotated = ((crc >>> 15) | ((crc << 17) >>> 0)) >>> 0;
  return (rotated + 0xa282ead8) % 2 ** 32;
}

export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: { tag: string; simpleValue: number }[];
}

/** The TFRecord payloads of a file; throws on any framing or checksum error. */
export function records(buf: Uint8Array): Uint8Array[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < buf.length) {
    if (at + 12 > buf.length) throw new Error(`short header at ${at}`);
    const lo = view.getUint32(at, true);
    const hi = view.getUint32(at + 4, true);
    if (masked(crc32c(buf.subarray(at, at + 8))) !== view.getUint32(at + 8, true)) throw new Error(`length crc mismatch at ${at}`);
    if (hi !== 0) throw new Error(`implausible length at ${at}`);
    const end = at + 12 + lo;
    if (end + 4 > buf.length) throw new Error(`short record at ${at}`);
    const data = buf.subarray(at + 12, end);
    if (masked(crc32c(data)) !== view.getUint32(end, true)) throw new Error(`data crc mismatch at ${at}`);
    out.push(data);
    at = end + 4;
  }
  return out;
}

/** Protobuf wire format: (field number, wire type, value) triples of one message. */
function* fields(msg: Uint8Array): Generator<[number, number, number | bigint | Uint8Array]> {
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= msg.length) throw new Error('truncated varint');
      const b = msg[at++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      if (shift > 63n) throw new Error('varint too long');
    }
  };
  while (at < msg.length) {
    const key = Number(varint());
    const [num, wire] = [key >>> 3, key & 7];
    if (num === 0) throw new Error('field number 0');
    if (wire === 0) yield [num, wire, varint()];
    else if (wire === 1) {
      if (at + 8 > msg.length) throw new Error('truncated fixed64');
      yield [num, wire, view.getFloat64(at, true)];
      at += 8;
    } else if (wire === 5) {
      if (at + 4 > msg.length) throw new Error('truncated fixed32');
      yield [num, wire, view.getFloat32(at, true)];
      at += 4;
    } else if (wire === 2) {
      const n = Number(varint());
      if (at + n > msg.length) throw new Error('truncated bytes');
      yield [num, wire, msg.subarray(at, at + n)];
      at += n;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

const text = (b: Uint8Array) => new TextDecoder('utf-8', { fatal: true }).decode(b);

export function decodeEvent(msg: Uint8Array): ReadEvent {
  const e: ReadEvent = { wallTime: NaN, step: 0, values: [] };
  for (const [num, wire, v] of fields(msg)) {
    if (num === 1 && wire === 1) e.wallTime = v as number;
    else if (num === 2 && wire === 0) e.step = Number(BigInt.asIntN(64, v as bigint));
    else if (num === 3 && wire === 2) e.fileVersion = text(v as Uint8Array);
    else if (num === 5 && wire === 2) {
      for (const [sn, sw, sv] of fields(v as Uint8Array)) {
        if (sn !== 1 || sw !== 2) throw new Error(`unexpected Summary field ${sn}`);
        let tag: string | undefined;
        let simpleValue: number | undefined;
        for (const [vn, vw, vv] of fields(sv as Uint8Array)) {
          if (vn === 1 && vw === 2) tag = text(vv as Uint8Array);
          else if (vn === 2 && vw === 5) simpleValue = vv as number;
          else throw new Error(`unexpected Summary.Value field ${vn}`);
        }
        if (tag === undefined || simpleValue === undefined) throw new Error('Summary.Value without tag or simple_value');
        e.values.push({ tag, simpleValue });
      }
    } else throw new Error(`unexpected Event field ${num} (wire type ${wire})`);
  }
  return e;
}

export function readEvents(file: string): ReadEvent[] {
  return records(fs.readFileSync(file)).map(decodeEvent);
}

/**
 * Every step's scalars (tag -> value) of a TensorBoard log directory, reading its event files in name order
 * as TensorBoard does; a step written twice is an error naming it.
 */
export function scalarsByStep(dir: string): Map<number, Record<string, number>> {
  const out = new Map<number, Record<string, number>>();
  const files = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((n) => n.includes('tfevents'))
        .sort()
    : [];
  for (const name of files) {
    for (const e of readEvents(`${dir}/${name}`)) {
      if (e.fileVersion !== undefined) continue;
      if (out.has(e.step)) throw new Error(`step ${e.step} is written twice (${name})`);
      out.set(e.step, Object.fromEntries(e.values.map((v) => [v.tag, v.simpleValue])));
    }
  }
  return out;
}
