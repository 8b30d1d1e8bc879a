/**
 * Files the package ships beside its code (the warm-start weights, the `papo` launcher), found from this
 * module alike when it runs as a TypeScript source (`util/package-files.ts`, in a checkout under tsx) and
 * when it runs built (`dist/util/package-files.js`, in an installed package).
 *
 * @example
 * const weights = packageFile('assets/warm-start'); // absolute path, whatever the working directory
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Whether this code runs built (JavaScript in `dist/`) rather than from its TypeScript sources. */
export const RUNS_BUILT = import.meta.url.endsWith('.js');

/** The package's root directory (where package.json is). */
const PACKAGE_ROOT = fileURLToPath(new URL(RUNS_BUILT ? '../../' : '../', import.meta.url));

/** The absolute path of `rel`, a path relative to the package's root. */
export function packageFile(rel: string): string {
  return path.join(PACKAGE_ROOT, rel);
}

/** The package's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version;
}
