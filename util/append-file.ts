/**
 * Files a command appends to inside a run directory (log.jsonl, metrics.jsonl) are opened without following
 * a symbolic link: a link planted under that name (pointing anywhere) is refused, never written through.
 */
import * as fs from 'node:fs';

/** Opens `file` for appending (created if missing); a symbolic link there is an error naming it. */
export function openAppendNoFollow(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new Error(`${file} is a symbolic link: papo appends only to files of its own, never through a link; remove it`, { cause: err });
    throw err;
  }
}
