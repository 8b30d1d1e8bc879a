/** Validating configs with zod: one error message format for every schema, naming each bad key. */
import { z } from 'zod';

/**
 * `key.path: message` for each issue (under `prefix`), an unknown key named by its own path
 * (`trainer.max_stepz: unknown key`), so that every wrong key of a document can be listed in one error.
 */
export function issueLines(error: z.ZodError, prefix: readonly PropertyKey[] = []): string[] {
  return error.issues.flatMap((i) => {
    const at = [...prefix, ...i.path];
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${[...at, k].join('.')}: unknown key`);
    return [`${at.length ? at.join('.') : '(root)'}: ${i.message}`];
  });
}

/** `key.path: message` for each issue, joined with '; '. */
export function formatIssues(error: z.ZodError): string {
  return issueLines(error).join('; ');
}

/** Parses `input` or throws `invalid <what>: <key>: <message>; ...`. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new Error(`invalid ${what}: ${formatIssues(r.error)}`);
  return r.data;
}

/** One key of a config schema: its dotted path, its default (`undefined`: none) and its help text. */
export interface ConfigKey {
  key: string;
  default: unknown;
  /** how the default is shown when its value is not what a reader should see (an absolute path of this machine) */
  defaultText?: string;
  help: string;
}

/**
 * Every leaf key of an object schema, in declaration order, with its default and its `.describe()` text
 * (`.meta({ defaultText })` shows a default in words). Objects are walked, except those named in `opaque`,
 * which are one key (a mapping the schema leaves open).
 */
export function describeSchema(schema: z.ZodType, opaque: readonly string[] = []): ConfigKey[] {
  const rows: ConfigKey[] = [];
  const metaOf = (s: z.ZodType) => z.globalRegistry.get(s) as { description?: string; defaultText?: string } | undefined;
  const walk = (outer: z.ZodType, prefix: string): void => {
    let s: z.ZodType = outer;
    let dflt: unknown;
    let meta = metaOf(s) ?? {};
    for (;;) {
      if (s instanceof z.ZodDefault) {
        dflt = (s.def as { defaultValue: unknown }).defaultValue;
        s = s.def.innerType as z.ZodType;
      } else if (s instanceof z.ZodOptional) s = s.def.innerType as z.ZodType;
      else break;
      meta = { ...metaOf(s), ...meta };
    }
    if (s instanceof z.ZodObject && !opaque.includes(prefix)) {
      for (const [k, v] of Object.entries(s.shape)) walk(v as z.ZodType, prefix ? `${prefix}.${k}` : k);
      return;
    }
    rows.push({ key: prefix, default: dflt, ...(meta.defaultText === undefined ? {} : { defaultText: meta.defaultText }), help: meta.description ?? '' });
  };
  walk(schema, '');
  return rows;
}

/** A default as the config reference shows it: its words, YAML-like for values, '-' for none. */
export function formatDefault(k: ConfigKey): string {
  if (k.defaultText !== undefined) return k.defaultText;
  if (k.default === undefined) return '-';
  if (Array.isArray(k.default)) return `[${k.default.map((v) => String(v)).join(', ')}]`;
  return typeof k.default === 'object' && k.default !== null ? JSON.stringify(k.default) : String(k.default);
}

/** The keys as plain text for `--help`: one line per key, its default, its help. */
export function formatConfigHelp(keys: readonly ConfigKey[]): string {
  const width = Math.max(...keys.map((k) => k.key.length + formatDefault(k).length + 3));
  return keys.map((k) => `  ${`${k.key} (${formatDefault(k)})`.padEnd(width)}  ${k.help}`).join('\n');
}

/** The keys as a Markdown table: key, default, meaning. */
export function formatConfigTable(keys: readonly ConfigKey[]): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  return [
    '| key | default | meaning |',
    '|---|---|---|',
    ...keys.map((k) => {
      const shown = k.defaultText ?? (k.default === undefined ? '-' : `\`${cell(formatDefault(k))}\``);
      return `| \`${k.key}\` | ${shown} | ${cell(k.help)} |`;
    }),
  ].join('\n');
}
