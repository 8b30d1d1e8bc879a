/**
 * Reading a file given by a user as untrusted input: opened without blocking (a FIFO with no writer must not
 * hang the command), the descriptor checked to be a regular file of at most `maxBytes` (so `/dev/zero` or a
 * huge file is refused from its size, before reading), then exactly the bytes its size said, no more (a file
 * growing while it is read cannot pass the limit). The caller words the errors.
 *
 * @example
 * readRegularFile(file, 2 ** 20, { notRegular: () => new Error('not a file'), tooLarge: (n) => new Error(`${n} bytes`), system: (e) => e as Error });
 */
import * as fs from 'node:fs';

export interface ReadFailures {
  /** the opened path is not a regular file (its stat) */
  notRegular(stats: fs.Stats): Error;
  /** the file has `size` bytes, over the limit */
  tooLarge(size: number): Error;
  /** the system refused to open, stat or read it */
  system(err: unknown): Error;
}

export function readRegularFile(file: string, maxBytes: number, fail: ReadFailures): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw fail.system(e);
  }
  try {
    let opened: fs.Stats;
    try {
      opened = fs.fstatSync(fd);
    } catch (e) {
      throw fail.system(e);
    }
    if (!opened.isFile()) throw fail.notRegular(opened);
    if (opened.size > maxBytes) throw fail.tooLarge(opened.size);
    const buf = Buffer.allocUnsafe(opened.size);
    let n = 0;
    try {
      while (n < buf.length) {
        const got = fs.readSync(fd, buf, n, buf.length - n, n);
        if (got === 0) break;
        n += got;
      }
    } catch (e) {
      throw fail.system(e);
    }
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}
