import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { createGroup, openGroup, readArray, writeArray } from '../../storage/zarr-arrays.ts';

async function stored(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zarr-arrays-'));
  await writeArray(await createGroup(dir), 'w', Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3]);
  return dir;
}

const meta = (dir: string) => path.join(dir, 'w', 'zarr.json');
const chunk = (dir: string) => path.join(dir, 'w', 'c', '0', '0');

test('an intact array reads back', async () => {
  const dir = await stored();
  assert.deepEqual([...(await readArray(await openGroup(dir), 'w', 'here', { dtype: 'float32', shape: [2, 3] }))], [1, 2, 3, 4, 5, 6]);
});

test('metadata declaring a 2 GiB array over a short chunk is refused before anything is allocated', async () => {
  const dir = await stored();
  const m = JSON.parse(fs.readFileSync(meta(dir), 'utf8'));
  m.shape = [2 ** 14, 2 ** 15];
  m.chunk_grid.configuration.chunk_shape = [2 ** 14, 2 ** 15];
  fs.writeFileSync(meta(dir), JSON.stringify(m));
  const before = process.memoryUsage().rss;
  await assert.rejects(
    readArray(await openGroup(dir), 'w', 'here'),
    /here: array 'w' is unreadable: its chunk .* has 28 bytes, but shape \[16384,32768\] of float32 needs 2147483652/,
  );
  assert.ok(process.memoryUsage().rss - before < 512 * 2 ** 20);
});

test('a missing chunk is an error, not an array of fill values; a short one too; several chunks are not ours', async () => {
  let dir = await stored();
  fs.rmSync(chunk(dir));
  await assert.rejects(readArray(await openGroup(dir), 'w', 'here'), /its chunk .* is missing or unreadable \(ENOENT\)/);
  dir = await stored();
  fs.truncateSync(chunk(dir), 20);
  await assert.rejects(readArray(await openGroup(dir), 'w', 'here'), /has 20 bytes, but shape \[2,3\] of float32 needs 28/);
  dir = await stored();
  const m = JSON.parse(fs.readFileSync(meta(dir), 'utf8'));
  m.chunk_grid.configuration.chunk_shape = [1, 3];
  fs.writeFileSync(meta(dir), JSON.stringify(m));
  await assert.rejects(readArray(await openGroup(dir), 'w', 'here'), /stored in chunks \[1,3\] of shape \[2,3\], expected one chunk/);
});
