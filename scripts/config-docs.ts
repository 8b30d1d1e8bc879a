/**
 * The config reference of the README, generated from the schemas: the tables of `papo train`'s run config
 * (pipelines/train-config.ts) and of `papo sft`'s config (pipelines/sft-config.ts), one row per key with its
 * default and its help (`.describe()`), written between marker comments:
 *
 *   <!-- config: train -->  ...table...  <!-- /config -->
 *
 * `npm run docs:config` rewrites them; `--check` exits 1 when README.md differs from what the schemas say
 * (test/config-docs.test.ts does the same).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeConfig } from '../pipelines/train-config.ts';
import { describeSftConfig } from '../pipelines/sft-config.ts';
import { formatConfigTable } from '../util/schema.ts';

export const README = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'README.md');

/** The generated tables, by marker name. */
export function configTables(): Record<string, string> {
  return { train: formatConfigTable(describeConfig()), sft: formatConfigTable(describeSftConfig()) };
}

/** `text` with every marked table replaced by the schemas' one; a marker without its end, or an unknown name, is an error. */
export function withConfigTables(text: string): string {
  const tables = configTables();
  const seen = new Set<string>();
  const out = text.replace(/<!-- config: ([a-z]+) -->\n[\s\S]*?<!-- \/config -->/g, (_, name: string) => {
    const table = tables[name];
    if (table === undefined) throw new Error(`README.md: no config table named '${name}' (known: ${Object.keys(tables).join(', ')})`);
    seen.add(name);
    return `<!-- config: ${name} -->\n${table}\n<!-- /config -->`;
  });
  const missing = Object.keys(tables).filter((n) => !seen.has(n));
  if (missing.length) throw new Error(`README.md has no <!-- config: NAME --> ... <!-- /config --> block for ${missing.join(', ')}`);
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = fs.readFileSync(README, 'utf8');
  const next = withConfigTables(text);
  if (process.argv.includes('--check')) {
    if (next !== text) {
      process.stderr.write('README.md: the config tables differ from the schemas; run npm run docs:config\n');
      process.exitCode = 1;
    }
  } else if (next !== text) {
    fs.writeFileSync(README, next);
    process.stdout.write('README.md: config tables rewritten\n');
  } else process.stdout.write('README.md: config tables up to date\n');
}
