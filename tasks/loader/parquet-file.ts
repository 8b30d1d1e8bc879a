/**
 * A parquet file read synchronously, one row group at a time, with hyparquet (pure JavaScript: no native
 * build, reads only the byte ranges it needs). hyparquet's API is asynchronous and a task is built
 * synchronously, so the reading happens in a worker (parquet-worker.ts) while this thread waits on a
 * shared flag: one request in flight, at most one row group in memory at once.
 *
 * Checked before any data is read: the magic bytes, the footer's length (at most `maxFooterBytes`), and
 * the compression codec of every column chunk: hyparquet alone decodes uncompressed and snappy data
 * (hyparquet-compressors, which adds gzip, zstd, brotli and lz4, is not a dependency), so another codec is
 * an error naming the column and the codec.
 *
 *   const pq = ParquetFile.open('train.parquet', { maxFooterBytes: 64 * 2 ** 20 });
 *   for (const [i, g] of pq.groups.entries()) rows = pq.rows(start, start + g.rows);
 *   pq.close();
 */
import * as fs from 'node:fs';
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { startTsWorker } from '../../util/ts-worker.ts';
import type { ParquetGroup, ParquetReply, ParquetRequest } from './parquet-protocol.ts';

/** Codecs hyparquet decodes without hyparquet-compressors. */
export const PARQUET_CODECS = ['UNCOMPRESSED', 'SNAPPY'] as const;

/** How long one request may take before the worker is taken for dead. */
const ANSWER_TIMEOUT_MS = 120_000;

export class ParquetFile {
  private constructor(
    readonly file: string,
    readonly columns: string[],
    readonly groups: ParquetGroup[],
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly flag: Int32Array,
  ) {}

  /** Opens `file` (a regular file already checked by the caller) and reads its metadata. */
  static open(file: string, opts: { maxFooterBytes: number }): ParquetFile {
    const footerBytes = checkFraming(file, opts.maxFooterBytes);
    const { port1, port2 } = new MessageChannel();
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const worker = startTsWorker(new URL('./parquet-worker.ts', import.meta.url), undefined);
    worker.unref();
    worker.postMessage({ port: port2, flag }, [port2]);
    const pq = new ParquetFile(file, [], [], worker, port1, flag);
    let opened: ParquetReply;
    try {
      opened = pq.ask({ kind: 'open', file, footerBytes: footerBytes + 8 });
    } catch (e) {
      pq.close();
      throw e;
    }
    if (!opened.ok || opened.kind !== 'open') throw new Error('unexpected reply');
    const unsupported = opened.groups.flatMap((g) => g.codecs).find((c) => !(PARQUET_CODECS as readonly string[]).includes(c.codec));
    if (unsupported) {
      pq.close();
      throw new Error(
        `column "${unsupported.column}" is compressed with ${unsupported.codec}, which the parquet reader (hyparquet, without hyparquet-compressors) cannot decode: it reads ${PARQUET_CODECS.join(' and ')} files; write the file with snappy (pyarrow: compression="snappy"; HF datasets: to_parquet does by default)`,
      );
    }
    return new ParquetFile(file, opened.columns, opened.groups, worker, port1, flag);
  }

  /** Rows [rowStart, rowEnd) as objects: strings for UTF8 columns, Uint8Array for binary ones, nested lists and structs as arrays and objects. */
  rows(rowStart: number, rowEnd: number): Record<string, unknown>[] {
    const r = this.ask({ kind: 'rows', rowStart, rowEnd });
    if (!r.ok || r.kind !== 'rows') throw new Error('unexpected reply');
    return r.rows;
  }

  close(): void {
    this.port.close();
    void this.worker.terminate();
  }

  private ask(req: ParquetRequest): ParquetReply {
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage(req);
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    for (;;) {
      const got = receiveMessageOnPort(this.port);
      if (got) {
        const reply = got.message as ParquetReply;
        if (!reply.ok) throw new Error(`cannot read parquet: ${reply.error}`);
        return reply;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the parquet reader gave no answer in ${ANSWER_TIMEOUT_MS / 1000} s`);
      Atomics.wait(this.flag, 0, 0, Math.min(left, 1000));
      Atomics.store(this.flag, 0, 0);
    }
  }
}

/** Checks `PAR1` at both ends and returns the footer's length, refused over `maxFooterBytes`. */
function checkFraming(file: string, maxFooterBytes: number): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 12) throw new Error(`not a parquet file: ${size} bytes, fewer than its framing needs`);
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(8);
    fs.readSync(fd, head, 0, 4, 0);
    fs.readSync(fd, tail, 0, 8, size - 8);
    if (head.toString('latin1') !== 'PAR1' || tail.subarray(4).toString('latin1') !== 'PAR1')
      throw new Error('not a parquet file (no PAR1 magic at its start and end)');
    const footer = tail.readUInt32LE(0);
    if (footer > size - 12) throw new Error(`not a parquet file: its footer claims ${footer} bytes, more than the file has`);
    if (footer > maxFooterBytes) throw new Error(`its footer (metadata) is ${footer} bytes, over the limit of ${maxFooterBytes}`);
    return footer;
  } finally {
    fs.closeSync(fd);
  }
}
