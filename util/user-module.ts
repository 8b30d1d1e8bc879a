/**
 * Importing a module of the user's by its path (a reward file, a module that registers estimators), with
 * errors that name the setting it came from and say what to do.
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
