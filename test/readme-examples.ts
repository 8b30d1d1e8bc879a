/**
 * The README's runnable examples, read as they are printed (`<!-- example: NAME -->` before the block):
 * `compose` (a TypeScript program), `extend` (a TypeScript module and the bash command that loads it) and
 * `install` (the bash command that installs the package). test/readme-example.test.ts runs them against
 * the sources of this checkout, test/package/packed-install.test.ts against the packed, installed package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');

const readme = () => fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The code blocks right after `<!-- example: name -->` (separated by nothing but blank lines), in order. */
export function readmeBlocks(name: string): string[] {
  const text = readme();
  const at = text.indexOf(`<!-- example: ${name} -->`);
  if (at < 0) throw new Error(`README has no example '${name}'`);
  const blocks: string[] = [];
  const re = /\s*```[a-z]*\n([\s\S]*?)```/y;
  re.lastIndex = at + `<!-- example: ${name} -->`.length;
  for (let m = re.exec(text); m; m = re.exec(text)) blocks.push(m[1]);
  if (blocks.length === 0) throw new Error(`README example '${name}' has no code block`);
  return blocks;
}

/** The command of a bash block: its one line that is not a comment, split at spaces, trailing comment dropped. */
export function commandOf(block: string): string[] {
  const lines = block
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines.length !== 1) throw new Error(`expected one command, got ${lines.length}: ${lines.join(' | ')}`);
  return lines[0].split(/\s+/);
}

/** The package's `exports` map: subpath ('.', './operators', ...) -> the built module ('./dist/operators/index.js'). */
export function packageExports(): Map<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | { default: string }> };
  return new Map(Object.entries(pkg.exports).map(([k, v]) => [k, typeof v === 'string' ? v : v.default]));
}

/**
 * `code` with each `'papo-stream'` / `'papo-stream/<layer>'` import replaced by the path, relative to `fromDir`,
 * of the TypeScript source its entry in the `exports` map is built from (`./dist/operators/index.js` <-
 * `operators/index.ts`): the example runs against this checkout's sources as it would against the package.
 * A specifier the map does not export is an error, as it would be for a user.
 */
export function withSourceImports(code: string, fromDir: string): string {
  const exportsMap = packageExports();
  return code.replace(/(['"])papo-stream(\/[^'"]*)?\1/g, (_all, quote: string, sub: string | undefined) => {
    const key = `.${sub ?? ''}`;
    const built = exportsMap.get(key);
    if (!built) throw new Error(`'papo-stream${sub ?? ''}' is not in package.json's exports (${[...exportsMap.keys()].join(', ')})`);
    const source = path.join(ROOT, built.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'));
    if (!fs.existsSync(source)) throw new Error(`exports['${key}'] = ${built}, but its source ${source} does not exist`);
    const rel = path.relative(fromDir, source).split(path.sep).join('/');
    return `${quote}${rel.startsWith('.') ? rel : `./${rel}`}${quote}`;
  });
}
