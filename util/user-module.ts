/**
 * Importing a module of the user's by its path (a reward file, a module that registers estimators), with
 * errors that name the setting it came from and say what to do.
 *
 * Modules that extend papo by name (`papo --import`) are imported with `importExtension`, which also
 * remembers them: a worker that runs user code (the reward pool, tasks/rewards/pool.ts) imports them too, so
 * the names they register exist in it as well.
 *
 * @example
 * const { exports } = await importUserModule('./my_reward.ts', process.cwd(), 'worker.reward.score_function');
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface UserModule {
  /** the absolute path imported */
  where: string;
  exports: Record<string, unknown>;
}

/** Imports `file` (relative paths against `baseDir`); `what` names the setting in errors. */
export async function importUserModule(file: string, baseDir: string, what: string): Promise<UserModule> {
  const where = path.resolve(baseDir, file);
  if (!fs.existsSync(where)) {
    const rel = path.isAbsolute(file) ? '' : ` (relative paths resolve against ${baseDir})`;
    throw new Error(`${what}: file ${where} does not exist${rel}`);
  }
  try {
    return { where, exports: (await import(pathToFileURL(where).href)) as Record<string, unknown> };
  } catch (err) {
    const code = (err as { code?: string }).code;
    // Node 20 + tsx: a .ts/.js file with `export` outside any "type": "module" package fails with this cryptic code
    const hint =
      code === 'ERR_REQUIRE_CYCLE_MODULE'
        ? `it is an ES module in a CommonJS scope; rename it to .mts (or .mjs), or put a package.json with {"type": "module"} in its directory`
        : code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(where)
          ? `Node ${process.version} does not load TypeScript by itself: install tsx (npm install --save-dev tsx) and run papo through it, ` +
            '`node --import tsx node_modules/.bin/papo ...` (or write the module in JavaScript)'
          : (err as Error).message;
    throw new Error(`${what}: cannot load ${where}: ${hint}`);
  }
}

const extensions: string[] = [];
let importing: string | undefined;

/** Imports an extension module (`--import`; `what` names where it was given) and remembers its path. */
export async function importExtension(file: string, baseDir: string, what = '--import'): Promise<UserModule> {
  importing = path.resolve(baseDir, file);
  try {
    const m = await importUserModule(file, baseDir, what);
    if (!extensions.includes(m.where)) extensions.push(m.where);
    return m;
  } finally {
    importing = undefined;
  }
}

/** The extension module being imported right now, if any (what registries record as the origin of a name). */
export function extensionBeingImported(): string | undefined {
  return importing;
}

/** The absolute paths of the extension modules imported so far, in order. */
export function extensionModules(): string[] {
  return [...extensions];
}
