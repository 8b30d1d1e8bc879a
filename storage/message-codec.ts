/**
 * One binary message: a JSON header and named typed arrays, for what crosses hosts (shard jobs and results,
 * policy weights). Layout: `PAPO` magic, uint32 (little-endian) header length, the header's UTF-8 JSON,
 * then each array's bytes in the header's order, every one starting at a multiple of 8. Decoding checks
 * every length against the message before reading, so a malformed message (truncated, a header that lies,
 * an unknown dtype) is an error naming the message, never an out-of-bounds read or a huge allocation.
 *
 * @example
 * const bytes = encodeMessage({ kind: 'job', step: 3 }, { tokens: Int32Array.of(1, 2) });
 * const { header, arrays } = decodeMessage(bytes, 'job papo.job.r1.3.1.0');
 */
import type { FieldDtype, TypedRow } from './batch-schema.ts';

const MAGIC = 0x4f504150; // 'PAPO' little-endian
const DTYPES: Record<FieldDtype, { bytes: number; make: (b: ArrayBuffer, n: number) => TypedRow }> = {
  float32: { bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  int32: { bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  uint8: { bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
};

interface ArrayEntry {
  name: string;
  dtype: FieldDtype;
  length: number;
}

export interface DecodedMessage {
  header: Record<string, unknown>;
  arrays: Map<string, TypedRow>;
}

const dtypeOf = (a: TypedRow): FieldDtype => (a instanceof Float32Array ? 'float32' : a instanceof Int32Array ? 'int32' : 'uint8');
const pad8 = (n: number) => (n + 7) & ~7;

export function encodeMessage(header: Record<string, unknown>, arrays: Record<string, TypedRow> = {}): Uint8Array {
  const entries: ArrayEntry[] = Object.entries(arrays).map(([name, a]) => ({ name, dtype: dtypeOf(a), length: a.length }));
  const json = new TextEncoder().encode(JSON.stringify({ ...header, arrays: entries }));
  let size = pad8(8 + json.length);
  for (const [, a] of Object.entries(arrays)) size += pad8(a.byteLength);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, json.length, true);
  out.set(json, 8);
  let at = pad8(8 + json.length);
  for (const a of Object.values(arrays)) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += pad8(a.byteLength);
  }
  return out;
}

/** The header and arrays of a message; `what` names it in errors. */
export function decodeMessage(bytes: Uint8Array, what: string): DecodedMessage {
  const fail = (why: string): never => {
    throw new Error(`${what}: malformed message (${bytes.length} bytes): ${why}`);
  };
  if (bytes.length < 8) fail('shorter than its 8-byte preamble');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('it does not start with PAPO');
  const headerLength = view.getUint32(4, true);
  if (8 + headerLength > bytes.length) fail(`its header length ${headerLength} runs past the end`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (err) {
    fail(`its header is not JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) fail('its header is not an object');
  const { arrays: entries, ...header } = parsed as Record<string, unknown>;
  if (!Array.isArray(entries)) fail('its header has no array list');
  const arrays = new Map<string, TypedRow>();
  let at = pad8(8 + headerLength);
  for (const e of entries as ArrayEntry[]) {
    const d = e && typeof e === 'object' ? DTYPES[e.dtype] : undefined;
    if (!d || typeof e.name !== 'string' || !Number.isSafeInteger(e.length) || e.length < 0) fail(`bad array entry ${JSON.stringify(e)}`);
    const n = e.length * d!.bytes;
    if (at + n > bytes.length) fail(`array ${e.name} (${e.length} ${e.dtype}) runs past the end`);
    if (arrays.has(e.name)) fail(`array ${e.name} appears twice`);
    const copy = new ArrayBuffer(n);
    new Uint8Array(copy).set(bytes.subarray(at, at + n));
    arrays.set(e.name, d!.make(copy, e.length));
    at += pad8(n);
  }
  if (at !== bytes.length) fail(`${bytes.length - at} bytes after its last array`);
  return { header, arrays };
}

/** Rows of per-token values as one flat array and offsets (rows + 1 entries). */
export function flattenRows<A extends Float32Array | Int32Array>(rows: readonly A[], make: (n: number) => A): { flat: A; offsets: Int32Array } {
  const offsets = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
  const flat = make(offsets[rows.length]);
  rows.forEach((r, i) => flat.set(r, offsets[i]));
  return { flat, offsets };
}

/** The rows of `flattenRows` back; `what` names the field in errors. */
export function unflattenRows<A extends Float32Array | Int32Array>(flat: A, offsets: Int32Array, what: string): A[] {
  const rows: A[] = [];
  if (offsets.length < 1 || offsets[0] !== 0 || offsets[offsets.length - 1] !== flat.length)
    throw new Error(`${what}: offsets do not span its ${flat.length} values`);
  for (let i = 0; i + 1 < offsets.length; i++) {
    if (offsets[i + 1] < offsets[i]) throw new Error(`${what}: offsets decrease at row ${i}`);
    rows.push(flat.slice(offsets[i], offsets[i + 1]) as A);
  }
  return rows;
}
