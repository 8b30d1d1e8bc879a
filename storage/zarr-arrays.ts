/**
 * Typed arrays in and out of Zarr v3 groups (zarrita on the local file system), every chunk closed by the
 * verified `crc32c` codec. Errors name the array and the directory.
 *
 * @example
 * const g = await createGroup('/tmp/x', { kind: 'demo' });
 * await writeArray(g, 'w', Float32Array.of(1, 2, 3, 4), [2, 2]);
 * const w = await readArray(g, 'w', { dtype: 'float32', shape: [2, 2] });
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as zarr from 'zarrita';
import FileSystemStore from '@zarrita/storage/fs';
import { registerCrc32c } from './crc32c.ts';

registerCrc32c();

export type Group = zarr.Group<FileSystemStore>;
export type StoredArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array | Int8Array | Uint16Array | Int16Array;

/** The codecs of every array this project writes: little-endian bytes, then a crc32c checksum. */
export const CHUNK_CODECS = [
  { name: 'bytes', configuration: { endian: 'little' } },
  { name: 'crc32c', configuration: {} },
];

const DTYPES = new Map<abstract new (...args: never[]) => StoredArray, zarr.DataType>([
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
  [Int32Array, 'int32'],
  [Uint32Array, 'uint32'],
  [Uint8Array, 'uint8'],
  [Int8Array, 'int8'],
  [Uint16Array, 'uint16'],
  [Int16Array, 'int16'],
]);

export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = acc;
    acc *= shape[i];
  }
  return out;
}

/** A new group at `dir` (created) with these attributes. */
export async function createGroup(dir: string, attributes: Record<string, unknown> = {}): Promise<Group> {
  return zarr.create(zarr.root(new FileSystemStore(dir)), { attributes });
}

/** A child group of `parent`. */
export async function createChildGroup(parent: Group, name: string, attributes: Record<string, unknown> = {}): Promise<Group> {
  return zarr.create(parent.resolve(name), { attributes });
}

/** The group at `dir`, or a clear error when there is none. */
export async function openGroup(dir: string, what = 'Zarr group'): Promise<Group> {
  try {
    return await zarr.open(zarr.root(new FileSystemStore(dir)), { kind: 'group' });
  } catch (err) {
    throw new Error(`${dir}: not a readable ${what} (${(err as Error).message})`);
  }
}

export async function openChildGroup(parent: Group, name: string, where: string): Promise<Group> {
  try {
    return await zarr.open(parent.resolve(name), { kind: 'group' });
  } catch (err) {
    throw new Error(`${where}: group '${name}' is missing or unreadable (${(err as Error).message})`);
  }
}

/** Writes `data` as array `name` of `parent`, one chunk, shape [data.length] unless given. */
export async function writeArray(parent: Group, name: string, data: StoredArray, shape: number[] = [data.length]): Promise<void> {
  const dtype = DTYPES.get(data.constructor as abstract new (...args: never[]) => StoredArray);
  if (!dtype) throw new Error(`array '${name}': unsupported element type ${data.constructor.name}`);
  if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new Error(`array '${name}': shape [${shape}] does not hold ${data.length} values`);
  const arr = await zarr.create(parent.resolve(name), {
    shape,
    chunkShape: shape.map((s) => Math.max(1, s)),
    dtype,
    codecs: CHUNK_CODECS,
    fillValue: 0,
  });
  if (data.length > 0) await zarr.set(arr, null, { data, shape, stride: strides(shape) } as never);
}

export interface ArrayExpectation {
  dtype?: zarr.DataType;
  shape?: readonly number[];
}

/** Reads array `name` of `parent`, checking its type and shape; errors name the array and `where`. */
export async function readArray<A extends StoredArray = StoredArray>(parent: Group, name: string, where: string, expect: ArrayExpectation = {}): Promise<A> {
  try {
    const arr = await zarr.open(parent.resolve(name), { kind: 'array' });
    if (expect.dtype && arr.dtype !== expect.dtype) throw new Error(`stored as ${arr.dtype}, expected ${expect.dtype}`);
    if (expect.shape && arr.shape.join() !== expect.shape.join()) throw new Error(`stored with shape [${arr.shape}], expected [${expect.shape}]`);
    const n = arr.shape.reduce((a, b) => a * b, 1);
    if (n === 0) return new (arrayTypeOf(arr.dtype))(0) as A;
    await checkChunk(parent, arr, n);
    return (await zarr.get(arr)).data as A;
  } catch (err) {
    const e = err as Error & { cause?: Error };
    const why = e.cause?.message ? `${e.message}: ${e.cause.message}` : e.message;
    throw new Error(`${where}: array '${name}' is unreadable: ${why}`);
  }
}

/**
 * Every array this project writes is one chunk of little-endian values and a 4-byte crc32c. Its file is
 * checked against the declared shape before anything is allocated: a missing chunk (which Zarr would read
 * as fill values), a short one, or metadata that declares more than the file holds is an error, not a
 * silent array of zeros or an allocation of whatever size the metadata claims.
 */
async function checkChunk(parent: Group, arr: zarr.Array<zarr.DataType, FileSystemStore>, n: number): Promise<void> {
  if (arr.chunks.join() !== arr.shape.join()) throw new Error(`stored in chunks [${arr.chunks}] of shape [${arr.shape}], expected one chunk`);
  const file = path.join(parent.store.root, arr.path, 'c', ...arr.shape.map(() => '0'));
  let size: number;
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    throw new Error(`its chunk ${file} is missing or unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  // format version 1 of the weights kept its CRC-32 in the attributes (no crc32c codec); compressed chunks
  // (not written here) have no size to check
  const codecs = (JSON.parse(await fsp.readFile(path.join(parent.store.root, arr.path, 'zarr.json'), 'utf8')).codecs ?? []) as { name: string }[];
  if (codecs.some((c) => c.name !== 'bytes' && c.name !== 'crc32c')) return;
  const expected = n * new (arrayTypeOf(arr.dtype))(0).BYTES_PER_ELEMENT + (codecs.some((c) => c.name === 'crc32c') ? 4 : 0);
  if (size !== expected)
    throw new Error(`its chunk ${file} has ${size} bytes, but shape [${arr.shape}] of ${arr.dtype} needs ${expected} (cut short or replaced)`);
}

function arrayTypeOf(dtype: string): new (n: number) => StoredArray {
  for (const [ctor, name] of DTYPES) if (name === dtype) return ctor as new (n: number) => StoredArray;
  throw new Error(`unsupported dtype ${dtype}`);
}
