/**
 * Starts a worker module given by the URL of its TypeScript source (`new URL('./worker.ts', import.meta.url)`).
 *
 * From the sources (a checkout, under tsx): `execArgv: ['--import', 'tsx']` does not register tsx's loader
 * before a worker's entry module on Node 20, so a tiny JavaScript bootstrap registers it and then imports the
 * entry; this works under `node --import tsx` and `node --test` alike. Built (the installed package, `dist/`):
 * the `.js` file compiled from that source is started directly, with plain node; tsx is not needed.
 *
 * A worker that imports a user's `.ts` file (a reward file next to a run config, outside any ES-module
 * package) needs tsx's CommonJS hook as well, as `bin/papo.js` registers both: `userTypeScript: true`.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { RUNS_BUILT } from './package-files.ts';

export interface TsWorkerOptions {
  /** Caps of the worker's V8 heap (`maxOldGenerationSizeMb`, ...): past them the worker alone is stopped. */
  resourceLimits?: ResourceLimits;
  /** Register tsx's CommonJS hook too (from the sources), for user `.ts` files outside an ES-module package. */
  userTypeScript?: boolean;
}

export function startTsWorker(entry: URL, workerData: unknown, options: TsWorkerOptions = {}): Worker {
  const { resourceLimits } = options;
  if (RUNS_BUILT) return new Worker(new URL(entry.href.replace(/\.([cm]?)ts$/, '.$1js')), { workerData, resourceLimits });
  const api = import.meta.resolve('tsx/esm/api');
  const cjs = options.userTypeScript ? `import(${JSON.stringify(import.meta.resolve('tsx/cjs/api'))}).then((c) => c.register())` : 'undefined';
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return ${cjs}; }).then(() => import(${JSON.stringify(entry.href)}));`;
  return new Worker(code, { eval: true, workerData, resourceLimits });
}
