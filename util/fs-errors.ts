/**
 * A file-system error from Node (`EROFS: read-only file system, open '/x/.lock.tmp-1-ab'`) said for people:
 * what could not be done, where (the directory, not the temporary name inside it) and why, in one line.
 *
 *   explainFsError(err) // "cannot write in /runs/a: the file system is read-only (EROFS)"
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';

const WHY: Record<string, string> = {
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EMFILE: 'too many open files (raise ulimit -n)',
  ENAMETOOLONG: 'the name is too long',
};

const WRITES = new Set(['open', 'mkdir', 'rename', 'write', 'unlink', 'rmdir', 'symlink', 'link', 'copyfile', 'utime', 'chmod', 'fsync']);

/** Temporary names this project writes beside a file (`x.tmp-<pid>-<hex>`) stand for the file they become. */
const finalName = (p: string) => p.replace(/\.tmp-\d+-[0-9a-f]+$/, '');

/** The one-line explanation of a Node file-system error, or undefined for any other error. */
export function explainFsError(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof e.code !== 'string' || typeof e.path !== 'string') return undefined;
  const target = finalName(e.path);
  const writing = e.syscall !== undefined && WRITES.has(e.syscall);
  if (e.code === 'ENOENT' && e.syscall === 'mkdir') {
    // a recursive mkdir below a read-only or unwritable directory reports ENOENT: say what stops it
    let up = dirname(target);
    while (!existsSync(up) && dirname(up) !== up) up = dirname(up);
    try {
      accessSync(up, constants.W_OK);
    } catch (inner) {
      const code = (inner as NodeJS.ErrnoException).code ?? 'EACCES';
      return `cannot create ${target}: cannot write in ${up}: ${WHY[code] ?? code} (${code})`;
    }
    return undefined;
  }
  const why = WHY[e.code];
  if (!why) return undefined;
  if (e.code === 'EISDIR' || e.code === 'ENOTDIR' || e.code === 'ENAMETOOLONG') return `cannot ${writing ? 'write' : 'read'} ${target}: ${why} (${e.code})`;
  return writing ? `cannot write ${basename(target)} in ${dirname(target)}: ${why} (${e.code})` : `cannot read ${target}: ${why} (${e.code})`;
}
