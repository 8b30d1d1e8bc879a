/**
 * The worker side of parquet-file.ts: hyparquet's reading is asynchronous (it reads byte ranges of the file
 * as it needs them), a task is built synchronously, so the main thread asks this worker for one thing at a
 * time and blocks on a shared flag until the answer is posted. One request in flight, so at most one row
 * group is held here.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import type { ParquetReply, ParquetRequest } from './parquet-protocol.ts';

let file: AsyncBuffer | undefined;
let metadata: FileMetaData | undefined;

function reply(port: MessagePort, flag: Int32Array, r: ParquetReply): void {
  try {
    port.postMessage(r);
  } catch (e) {
    port.postMessage({ ok: false, error: `cannot pass the rows back: ${(e as Error).message}` } satisfies ParquetReply);
  }
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

async function serve(req: ParquetRequest): Promise<ParquetReply> {
  if (req.kind === 'open') {
    file = await asyncBufferFromFile(req.file);
    metadata = await parquetMetadataAsync(file, { initialFetchSize: req.footerBytes });
    const columns = metadata.schema.slice(1);
    const top: string[] = [];
    // the schema is a depth-first list: the root's children are the top-level columns
    for (let i = 0, skip = 0; i < columns.length; i++) {
      if (skip === 0) top.push(columns[i].name);
      else skip--;
      skip += columns[i].num_children ?? 0;
    }
    return {
      ok: true,
      kind: 'open',
      columns: top,
      groups: metadata.row_groups.map((g) => ({
        rows: Number(g.num_rows),
        bytes: g.columns.reduce((n, c) => n + Number(c.meta_data?.total_uncompressed_size ?? 0), 0),
        codecs: g.columns.map((c) => ({ column: (c.meta_data?.path_in_schema ?? []).join('.'), codec: c.meta_data?.codec ?? 'UNCOMPRESSED' })),
      })),
    };
  }
  if (!file || !metadata) throw new Error('no parquet file open');
  const rows = await parquetReadObjects({ file, metadata, rowStart: req.rowStart, rowEnd: req.rowEnd, utf8: false });
  return { ok: true, kind: 'rows', rows };
}

parentPort?.once('message', ({ port, flag }: { port: MessagePort; flag: Int32Array }) => {
  port.on('message', (req: ParquetRequest) => {
    serve(req).then(
      (r) => reply(port, flag, r),
      (e: unknown) => reply(port, flag, { ok: false, error: e instanceof Error ? e.message : String(e) }),
    );
  });
});
