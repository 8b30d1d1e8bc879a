/**
 * Structured logs (pino). A run writes JSON lines to `<run dir>/log.jsonl`; without a file, logs go to
 * stderr at level `warn` so that progress lines on the terminal stay readable. `PAPO_LOG_LEVEL` sets the
 * level (fatal, error, warn, info, debug, trace, silent; any case); another value is an error naming it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pino, type Logger } from 'pino';
import { openAppendNoFollow } from './append-file.ts';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The level `PAPO_LOG_LEVEL` names, or `fallback` when it is unset or empty. */
export function logLevelFromEnv(fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  const v = env.PAPO_LOG_LEVEL;
  if (v === undefined || v.trim() === '') return fallback;
  const level = v.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new Error(`PAPO_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(v)}`);
  }
  return level;
}

export function createLogger(file?: string, level = logLevelFromEnv('info')): Logger {
  if (!file) return pino({ level: logLevelFromEnv('warn') }, pino.destination(2));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // opened here, not by pino: a symbolic link planted as the log file is refused, never appended through
  return pino({ level }, pino.destination({ fd: openAppendNoFollow(file), sync: true }));
}
