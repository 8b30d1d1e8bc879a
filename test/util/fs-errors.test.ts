import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { explainFsError } from '../../util/fs-errors.ts';

const errno = (code: string, syscall: string, p: string) =>
  Object.assign(new Error(`${code}: something, ${syscall} '${p}'`), { code, syscall, path: p }) as NodeJS.ErrnoException;

test('read-only, permission, full disk: what, where (the file, not its temporary name) and why', () => {
  assert.equal(
    explainFsError(errno('EROFS', 'open', '/runs/a/.lock.tmp-20490-a4490e97')),
    'cannot write .lock in /runs/a: the file system is read-only (EROFS)',
  );
  assert.equal(explainFsError(errno('EACCES', 'rename', '/runs/a/report.html')), 'cannot write report.html in /runs/a: permission denied (EACCES)');
  assert.equal(
    explainFsError(errno('ENOSPC', 'write', '/runs/a/metrics.jsonl')),
    'cannot write metrics.jsonl in /runs/a: no space left on the device (ENOSPC)',
  );
  assert.equal(explainFsError(errno('EISDIR', 'read', '/runs/a/checkpoints/latest')), 'cannot read /runs/a/checkpoints/latest: it is a directory (EISDIR)');
  assert.equal(explainFsError(errno('EACCES', 'scandir', '/runs/a')), 'cannot read /runs/a: permission denied (EACCES)');
});

test('other errors are left as they are', () => {
  assert.equal(explainFsError(new Error('plain')), undefined);
  assert.equal(explainFsError(errno('ENOENT', 'open', '/nowhere')), undefined);
  assert.equal(explainFsError(Object.assign(new Error('x'), { code: 'EROFS' })), undefined, 'no path: nothing to say better');
  assert.equal(explainFsError('EROFS'), undefined);
});

test('a mkdir below a read-only file system names the directory that cannot be written', (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-rofs-'));
  try {
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'none', root]).status !== 0) return t.skip('cannot mount a read-only tmpfs here');
    try {
      const target = path.join(root, 'new', 'run');
      let err: unknown;
      try {
        fs.mkdirSync(target, { recursive: true });
      } catch (e) {
        err = e;
      }
      assert.ok(err, 'the mkdir fails');
      assert.equal(explainFsError(err), `cannot create ${target}: cannot write in ${root}: the file system is read-only (EROFS)`);
    } finally {
      spawnSync('umount', [root]);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
