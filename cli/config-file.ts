/** Reading a run config from a YAML or JSON file (YAML is a superset of JSON), and parsers of flag values. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parse } from 'yaml';
import { readRegularFile } from '../util/read-file.ts';

/** The largest config file read (a run config is a few KB; a larger file is not one). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * A run config from a YAML or JSON file: a regular file (not a FIFO or device, which could block or never
 * end) of at most MAX_CONFIG_BYTES, holding a mapping. Errors name the file, never its contents.
 */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readRegularFile(file, MAX_CONFIG_BYTES, {
      notRegular: (st) => new Error(st.isDirectory() ? 'it is a directory' : 'it is not a regular file'),
      tooLarge: (size) => new Error(`it has ${size} bytes, more than a config file's ${MAX_CONFIG_BYTES}`),
      system: (e) => e as Error,
    }).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    // the parser's message quotes the offending text: say where only
    const e = err as { linePos?: { line: number; col: number }[] };
    const at = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
    throw new Error(`config file ${file} is not valid YAML/JSON${at}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`config file ${file} must hold a mapping of options`);
  return value as Record<string, unknown>;
}

/** YAML scalar / flow value of a dotted override (`4`, `1e-4`, `true`, `[sum, read]`, `./r.ts:score`). */
export function parseOverrideValue(text: string): unknown {
  try {
    return parse(text);
  } catch {
    return text;
  }
}

/** Integer option parser for commander that names the flag in its error. */
export function intOption(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${flag} must be an integer, got '${v}'`);
    return n;
  };
}

export function numberOption(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`${flag} must be a number, got '${v}'`);
    return n;
  };
}

/** Integer option parser with a lower bound, naming the flag in its error. */
export function intAtLeastOption(flag: string, min: number) {
  const parseInteger = intOption(flag);
  return (v: string): number => {
    const n = parseInteger(v);
    if (n < min) throw new InvalidArgumentError(`${flag} must be at least ${min}, got '${v}'`);
    return n;
  };
}

/** Fails before any work when `file` cannot be written later (its directory is missing, or it is a directory). */
export function checkWritableFile(flag: string, file: string): void {
  const where = path.resolve(file);
  const dir = path.dirname(where);
  if (!fs.existsSync(dir)) throw new Error(`${flag} ${file}: directory ${dir} does not exist`);
  if (!fs.statSync(dir).isDirectory()) throw new Error(`${flag} ${file}: ${dir} is not a directory`);
  if (fs.existsSync(where) && fs.statSync(where).isDirectory()) throw new Error(`${flag} ${file} is a directory, not a file`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new Error(`${flag} ${file}: directory ${dir} is not writable`);
  }
}

/** A comma-separated flag value (`--families sum,read`) as its non-empty, trimmed items. */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
