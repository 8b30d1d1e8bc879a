/**
 * Starts a worker module given by the URL of its TypeScript source (`new URL('./worker.ts', import.meta.url)`).
 *
 * From the sources (a checkout, under tsx): `execArgv: ['--import', 'tsx']` does not register tsx's loader
 * before a worker's entry module on Node 20, so a tiny JavaScript bootstrap registers it and then imports the
 * entry; this works under `node --import tsx` and `node --test` alike. Built (the installed package, `dist/`):
 * the `.js` file compiled from that source is started directly, with plain node; tsx is not needed.
 */
import { Worker } from 'node:worker_threads';
import { RUNS_BUILT } from './package-files.ts';

export function startTsWorker(entry: URL, workerData: unknown): Worker {
  if (RUNS_BUILT) return new Worker(new URL(entry.href.replace(/\.([cm]?)ts$/, '.$1js')), { workerData });
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { eval: true, workerData });
}
