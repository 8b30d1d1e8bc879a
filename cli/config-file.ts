/** Reading a run config from a YAML or JSON file (YAML is a superset of JSON). */
import * as fs from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { parse } from 'yaml';

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new Error(`config file ${file} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`config file ${file} must hold a mapping of options`);
  return value as Record<string, unknown>;
}

/** Integer option parser for commander that names the flag in its error. */
export function intOption(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${flag} must be an integer, got '${v}'`);
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
