/**
 * Structured logs (pino). A run writes JSON lines to `<run dir>/log.jsonl`; without a file, logs go to
 * stderr at level `warn` so that progress lines on the terminal stay readable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(file?: string, level = process.env.PAPO_LOG_LEVEL ?? 'info'): Logger {
  if (!file) return pino({ level: process.env.PAPO_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  return pino({ level }, pino.destination({ dest: file, append: true, sync: true }));
}

/** A logger that drops everything (library calls without a run directory). */
export const silentLogger: Logger = pino({ level: 'silent' });
