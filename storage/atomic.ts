/**
 * Crash-safe file-system steps for saved state. A reader must only ever see complete data, and a kill
 * at any instant must leave the previous save intact:
 *   - new content is written under a unique temporary name in the destination's directory (unique per
 *     process and call, so concurrent writers never share one), fsynced, then renamed into place;
 *   - a directory is published by one rename to a name nobody else holds (`publishDir`);
 *   - a small pointer file is replaced by rename (`writeFileAtomic`), the only overwrite there is.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';

/** The prefix of every temporary name this module makes: `<name>.tmp-<pid>-<random>`. */
export const TMP_MARK = '.tmp-';

export function tmpSibling(target: string): string {
  return `${target}${TMP_MARK}${process.pid}-${randomUUID().slice(0, 8)}`;
}

/** Is `name` a temporary left by an interrupted write (of this or another process)? */
export function isTmpName(name: string): boolean {
  return name.includes(TMP_MARK);
}

async function fsyncPath(p: string, dir: boolean): Promise<void> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(p, dir ? 'r' : 'r+');
    await fh.sync();
  } catch (err) {
    // Some file systems refuse fsync on directories; data files must sync.
    if (!dir) throw err;
  } finally {
    await fh?.close();
  }
}

/** fsync every file and directory under `dir` (concurrently: the file system batches them), then `dir` itself. */
export async function fsyncTree(dir: string): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true });
  const parentOf = (e: { parentPath?: string; path?: string }) => e.parentPath ?? e.path ?? dir;
  await Promise.all(entries.filter((e) => e.isFile()).map((e) => fsyncPath(path.join(parentOf(e), e.name), false)));
  await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => fsyncPath(path.join(parentOf(e), e.name), true)));
  await fsyncPath(dir, true);
}

/**
 * Replaces `file` with `data` atomically: readers see the old or the new content, never a mix. The rename
 * replaces a symbolic link at `file` too: the link's target is never written.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tmpSibling(file);
  try {
    await fs.writeFile(tmp, data, { flag: 'wx' }); // a new file: never through a link planted under that name
    await fsyncPath(tmp, false);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(path.dirname(file), true);
}

/**
 * Writes a new `file` with `data`, complete or not at all: a temporary sibling, fsynced, then published by
 * link() (which fails on an existing name, so nothing is ever replaced) or, with `overwrite`, by rename()
 * (readers see the old or the new content; a symbolic link at `file` is replaced, never written through).
 * Throws an error with code EEXIST when `file` exists and `overwrite` is not set.
 */
export async function writeNewFileAtomic(file: string, data: Uint8Array, opts: { overwrite?: boolean } = {}): Promise<void> {
  const tmp = tmpSibling(file);
  try {
    await fs.writeFile(tmp, data, { flag: 'wx' });
    await fsyncPath(tmp, false);
    if (opts.overwrite) await fs.rename(tmp, file);
    else await linkNew(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
  await fsyncPath(path.dirname(file), true);
}

/** link(tmp, file); where the file system has no hard links, a check then a rename (no clobber, short of a race). */
async function linkNew(tmp: string, file: string): Promise<void> {
  try {
    await fs.link(tmp, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    if (await exists(file)) throw Object.assign(new Error(`${file} exists`), { code: 'EEXIST' });
    await fs.rename(tmp, file);
  }
}

/**
 * Renames the finished directory `tmp` to `parent/<base>`, or `<base>-2`, `<base>-3`, ... when that name
 * is taken (another writer got there first): never replaces anything. Returns the name it got.
 */
export async function publishDir(tmp: string, parent: string, base: string): Promise<string> {
  for (let i = 1; i < 1000; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    const target = path.join(parent, name);
    // rename() replaces an existing *empty* directory: only take names that do not exist at all.
    if (await exists(target)) continue;
    try {
      await fs.rename(tmp, target);
      await fsyncPath(parent, true);
      return name;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') continue;
      throw err;
    }
  }
  throw new Error(`cannot find a free name for ${base} in ${parent}`);
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** The names in `dir`, or none when it does not exist (yet). */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Total size in bytes of the files under `dir`. */
export async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await fs.stat(path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))).size;
  }
  return n;
}
