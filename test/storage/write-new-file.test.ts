/** writeNewFileAtomic (storage/atomic.ts): a new file complete or not at all, never over an existing one unless asked. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeNewFileAtomic } from '../../storage/atomic.ts';

test('writeNewFileAtomic: creates, refuses an existing name with EEXIST, replaces (a link too, not its target) only with overwrite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-write-new-'));
  const file = path.join(dir, 'model.onnx');
  await writeNewFileAtomic(file, Buffer.from('one'));
  assert.equal(fs.readFileSync(file, 'utf8'), 'one');
  await assert.rejects(writeNewFileAtomic(file, Buffer.from('two')), { code: 'EEXIST' });
  assert.equal(fs.readFileSync(file, 'utf8'), 'one');
  await writeNewFileAtomic(file, Buffer.from('three'), { overwrite: true });
  assert.equal(fs.readFileSync(file, 'utf8'), 'three');
  // a link planted at the name: refused, or replaced itself; what it points to is never written
  const target = path.join(dir, 'elsewhere');
  fs.writeFileSync(target, 'keep');
  const link = path.join(dir, 'link.onnx');
  fs.symlinkSync(target, link);
  await assert.rejects(writeNewFileAtomic(link, Buffer.from('x')), { code: 'EEXIST' });
  await writeNewFileAtomic(link, Buffer.from('new'), { overwrite: true });
  assert.equal(fs.readFileSync(target, 'utf8'), 'keep');
  assert.equal(fs.lstatSync(link).isSymbolicLink(), false);
  assert.equal(fs.readFileSync(link, 'utf8'), 'new');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['elsewhere', 'link.onnx', 'model.onnx'], 'no temporary left');
});
