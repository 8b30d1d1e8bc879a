/** The messages between parquet-file.ts (main thread) and parquet-worker.ts. */

export type ParquetRequest = { kind: 'open'; file: string; footerBytes: number } | { kind: 'rows'; rowStart: number; rowEnd: number };

export interface ParquetGroup {
  rows: number;
  /** Uncompressed bytes of its column chunks, as the file's metadata declares them. */
  bytes: number;
  codecs: { column: string; codec: string }[];
}

export type ParquetReply =
  | { ok: true; kind: 'open'; columns: string[]; groups: ParquetGroup[] }
  | { ok: true; kind: 'rows'; rows: Record<string, unknown>[] }
  | { ok: false; error: string };
