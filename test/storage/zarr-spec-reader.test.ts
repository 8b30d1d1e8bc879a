/**
 * Checkpoints and rollout logs read by a reader written here from the Zarr v3 specification alone (not
 * zarrita): metadata documents, the default chunk key encoding, the `bytes` codec (little endian) and the
 * `crc32c` codec verified with a table-driven CRC32C of its own (Castagnoli polynomial, reflected
 * 0x82F63B78), so another Zarr v3 implementation that honours the standard codecs reads what we write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { policyConfig } from '../../models/config.ts';
import { initParams } from '../../models/params.ts';
import { CheckpointStore } from '../../storage/checkpoints.ts';
import { RolloutLog } from '../../storage/rollout-log.ts';

const TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const ITEM: Record<string, [number, (v: DataView, o: number) => number]> = {
  float32: [4, (v, o) => v.getFloat32(o, true)],
  int32: [4, (v, o) => v.getInt32(o, true)],
  uint8: [1, (v, o) => v.getUint8(o)],
};

/** Every array under `root`, read by the spec: name -> values (one chunk per array, as this project writes). */
function readAll(root: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const walk = (dir: string) => {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'zarr.json'), 'utf8'));
    assert.equal(meta.zarr_format, 3, dir);
    if (meta.node_type === 'group') {
      for (const e of fs.readdirSync(dir, { withFileTypes: true }))
        if (e.isDirectory() && fs.existsSync(path.join(dir, e.name, 'zarr.json'))) walk(path.join(dir, e.name));
      return;
    }
    assert.equal(meta.node_type, 'array');
    assert.deepEqual(
      meta.codecs,
      [
        { name: 'bytes', configuration: { endian: 'little' } },
        { name: 'crc32c', configuration: {} },
      ],
      `${dir}: codecs`,
    );
    assert.equal(meta.chunk_key_encoding.name, 'default');
    assert.deepEqual(
      meta.chunk_grid.configuration.chunk_shape,
      meta.shape.map((s: number) => Math.max(1, s)),
      'one chunk per array',
    );
    const n = meta.shape.reduce((a: number, b: number) => a * b, 1);
    const [size, get] = ITEM[meta.data_type];
    if (n === 0) {
      out.set(path.relative(root, dir), []);
      return;
    }
    const sep = meta.chunk_key_encoding.configuration?.separator ?? '/';
    const key = ['c', ...meta.shape.map(() => '0')].join(sep);
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir, key)));
    assert.equal(bytes.length, n * size + 4, `${dir}: chunk size`);
    const body = bytes.subarray(0, bytes.length - 4);
    const stored = new DataView(bytes.buffer, bytes.byteOffset + body.length, 4).getUint32(0, true);
    assert.equal(stored, crc32c(body), `${dir}: crc32c`);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    out.set(
      path.relative(root, dir),
      Array.from({ length: n }, (_, i) => get(view, i * size)),
    );
  };
  walk(root);
  return out;
}

test('a checkpoint read by the specification: every chunk checksummed, values as saved', async () => {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-spec-'));
  const cfg = policyConfig({ dModel: 16, nHeads: 2, nLayers: 1, maxPromptLen: 8, maxResponseLen: 8, seed: 3 });
  const params = initParams(cfg, 4);
  const { dir } = await new CheckpointStore(run).save({
    kind: 'train',
    step: 1,
    policy: { config: cfg, params },
    optimizer: { step: 1, m: initParams(cfg, 5), v: initParams(cfg, 6) },
    samplers: [],
    state: { version: 1 },
  });
  const arrays = readAll(dir);
  assert.deepEqual(arrays.get('policy/tok_emb'), Array.from(params.tok_emb));
  assert.equal(arrays.size, 3 * Object.keys(params).length);
});

test('a rollout log read by the specification', async () => {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-spec-'));
  const log = new RolloutLog(run);
  const responses = [Int32Array.of(5, 6, 2), Int32Array.of(7), Int32Array.of(), Int32Array.of(8, 9)];
  await log.append({
    step: 3,
    version: 2,
    groupSize: 2,
    split: 'train',
    task: 'digits',
    taskFingerprint: 'f',
    seed: 9,
    maskSeed: 11,
    rounds: 1,
    recordIds: ['a', 'b'],
    recordIndices: Int32Array.of(4, 7),
    responses,
    oldLogprobs: responses.map((r) => Float32Array.from(r, (t) => -t / 10)),
    rewards: Float32Array.of(1, 0, 0.1, 1),
    accuracy: Float32Array.of(1, 0, 0, 1),
    format: Float32Array.of(1, 1, 0, 1),
    advantages: Float32Array.of(0.5, -0.5, -1, 1),
    versions: Int32Array.of(2, 2, 2, 2),
    finished: Uint8Array.of(1, 0, 0, 1),
    droppedGroups: 0,
    surplusGroups: 0,
    zeroVarianceGroups: 0,
    rewardFailures: [],
    cursor: { version: 1, task: 'digits', fingerprint: 'f', split: 'train', seed: 0, shuffle: true, epochs: null, epoch: 0, position: 2 },
  });
  const arrays = readAll(log.dir);
  assert.deepEqual(arrays.get('step_000003/tokens'), [5, 6, 2, 7, 8, 9]);
  assert.deepEqual(arrays.get('step_000003/offsets'), [0, 3, 4, 4, 6]);
  assert.deepEqual(arrays.get('step_000003/old_logprobs'), Array.from(Float32Array.of(-0.5, -0.6, -0.2, -0.7, -0.8, -0.9)));
  assert.deepEqual((await log.read(3)).responses, responses, 'and zarrita reads it back');
});
