/**
 * Starts a TypeScript worker module. `execArgv: ['--import', 'tsx']` does not register tsx's loader before
 * a worker's entry module on Node 20, so a tiny JavaScript bootstrap registers it and then imports the
 * entry; this works under `node --import tsx` and `node --test` alike.
 */
import { Worker } from 'node:worker_threads';

export function startTsWorker(entry: URL, workerData: unknown): Worker {
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { eval: true, workerData });
}
