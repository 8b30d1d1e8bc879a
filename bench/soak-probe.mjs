// Preloaded into a `papo train` by bench/soak.ts (node --import): every PAPO_SOAK_EVERY_MS (default 2000) it
// appends the process's memory and open file descriptors to the JSONL file PAPO_SOAK_PROBE names.
import { appendFileSync, readdirSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const file = process.env.PAPO_SOAK_PROBE;
if (isMainThread && file) {
  const every = Number(process.env.PAPO_SOAK_EVERY_MS ?? 2000);
  // PAPO_SOAK_GC=1 (with node --expose-gc): a full collection before each sample, so that growth seen is
  // memory still reachable, not garbage a lazy collector has not yet reclaimed
  const collect = process.env.PAPO_SOAK_GC === '1' && typeof globalThis.gc === 'function' ? globalThis.gc : () => {};
  const sample = () => {
    collect();
    const m = process.memoryUsage();
    let fds = -1;
    try {
      fds = readdirSync('/proc/self/fd').length;
    } catch {}
    const row = { t: Date.now(), rss: m.rss, heap_used: m.heapUsed, heap_total: m.heapTotal, external: m.external, array_buffers: m.arrayBuffers, fds };
    appendFileSync(file, `${JSON.stringify(row)}\n`);
  };
  sample();
  setInterval(sample, every).unref();
}
