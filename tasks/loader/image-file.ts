/**
 * Reading a manifest's image file as untrusted input: where the path may point, what kind of file it may
 * be, and how many bytes may be read.
 *
 * - Confinement: a path (relative paths resolve against the manifest's directory) must lead inside that
 *   directory, symbolic links followed; `../x`, `/etc/passwd` or a link out of the directory are refused
 *   unless `allowOutside` is set (`--allow-outside-manifest-dir`, `data.allow_outside_manifest_dir`).
 * - Only regular files are opened: a FIFO would block the loader forever and `/dev/zero` would fill memory,
 *   so directories, pipes, devices and sockets are refused from `stat`, and the opened descriptor is
 *   checked again (non-blocking open, so a file swapped for a FIFO in between cannot block either).
 * - At most `maxBytes` are read; a larger file is refused from its size, before reading.
 *
 *   const where = confineImagePath(manifestDir, realpathSync(manifestDir), 'imgs/a.png', false);
 *   const bytes = readImageFile(where, { maxBytes: 64 * 2 ** 20 });
 *
 * Errors are `ImageFileError`s whose messages name the problem, never the file's contents.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRegularFile } from '../../util/read-file.ts';

export class ImageFileError extends Error {
  override name = 'ImageFileError';
}

/** Inside `dir` (or `dir` itself), for already-resolved paths. */
function isInside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

const OPT_IN = 'set --allow-outside-manifest-dir (data.allow_outside_manifest_dir: true) to allow it';

/**
 * The absolute path of a manifest's `image` field, or an ImageFileError when it leaves the manifest's
 * directory (`root`; `realRoot` is its realpath) and `allowOutside` is not set. A path that does not
 * exist is returned as is: reading it reports that it is missing.
 */
export function confineImagePath(root: string, realRoot: string, image: string, allowOutside: boolean): string {
  if (image.includes('\0')) throw new ImageFileError('image path contains a NUL character');
  const file = path.resolve(root, image);
  if (allowOutside) return file;
  if (!isInside(root, file)) throw new ImageFileError(`image path ${JSON.stringify(image)} leaves the manifest's directory ${root}; ${OPT_IN}`);
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch {
    return file;
  }
  if (!isInside(realRoot, real)) {
    throw new ImageFileError(`image path ${JSON.stringify(image)} leads out of the manifest's directory ${root} through a symbolic link; ${OPT_IN}`);
  }
  return file;
}

/** What a stat says a path is, for "not a regular file" messages. */
function kindOf(s: fs.Stats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

function notRegular(s: fs.Stats): ImageFileError {
  const kind = kindOf(s);
  return new ImageFileError(kind === 'not a regular file' ? 'not a regular file' : `is ${kind}, not a regular file`);
}

function tooLarge(size: number, maxBytes: number): ImageFileError {
  return new ImageFileError(`file is ${size} bytes, over the limit of ${maxBytes} (max_image_bytes); shrink it or raise the limit`);
}

/** The bytes of a regular file of at most `maxBytes`, else an ImageFileError. */
export function readImageFile(file: string, opts: { maxBytes: number }): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new ImageFileError(errnoReason(e));
  }
  if (!st.isFile()) throw notRegular(st);
  if (st.size > opts.maxBytes) throw tooLarge(st.size, opts.maxBytes);
  return readRegularFile(file, opts.maxBytes, {
    notRegular,
    tooLarge: (size) => tooLarge(size, opts.maxBytes),
    system: (e) => new ImageFileError(errnoReason(e)),
  });
}

/** A system error as a short reason (its code and description, not the path: the caller names the file). */
function errnoReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'image file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot read image: permission denied';
  if (code === 'ENOTDIR') return 'image file not found (a part of its path is not a directory)';
  if (code === 'ELOOP') return 'cannot read image: too many symbolic links';
  return `cannot read image: ${code ?? (e as Error).message}`;
}
