/**
 * The soak: one `papo train` of a tiny policy for 10,000 steps (checkpoints every 5 steps, retention 3, the
 * rollout log on, a validation every 500 steps), watched from outside. Every `--every` steps it prints the
 * process's RSS, JS heap (used), external memory, open file descriptors, the mean step time of the last
 * interval, and the number of checkpoint and rollout-log directories; at the end, each figure's first and
 * last values and its least-squares slope per 1,000 steps (flat: memory and descriptors do not grow, the
 * checkpoint count stays at the retention).
 *
 *   node --import tsx bench/soak.ts [--steps 10000] [--every 500] [--dir /tmp/papo-soak] [--staleness 0] [--gc]
 *
 * `--gc` runs a full garbage collection before each sample (node --expose-gc): what stays is reachable memory.
 *
 * Memory and descriptors are sampled inside the run by bench/soak-probe.mjs (preloaded with --import), so the
 * run is the real CLI, unchanged.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { saveTinyPolicy, tinyRunOverrides } from '../test/pipelines/tiny-run.ts';

const { values: opt } = parseArgs({
  options: {
    steps: { type: 'string', default: '10000' },
    every: { type: 'string', default: '500' },
    dir: { type: 'string' },
    staleness: { type: 'string', default: '0' },
    gc: { type: 'boolean', default: false },
  },
});
const steps = Number(opt.steps);
const every = Number(opt.every);
const dir = opt.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'papo-soak-'));
const run = path.join(dir, 'run');
const probe = path.join(dir, 'probe.jsonl');
const weights = path.join(dir, 'init');
const resume = fs.existsSync(path.join(run, 'config.json'));

if (!fs.existsSync(weights)) await saveTinyPolicy(weights);
const overrides = [
  ...tinyRunOverrides(weights, run, steps),
  `trainer.max_staleness=${Number(opt.staleness)}`,
  'trainer.val_freq=500',
  'trainer.val_limit=16',
  'trainer.save_freq=5',
  'trainer.save_limit=3',
];
const args = [
  ...(opt.gc ? ['--expose-gc'] : []),
  '--import',
  path.resolve('bench/soak-probe.mjs'),
  'bin/papo.js',
  'train',
  ...(resume ? ['--resume', run, `trainer.max_steps=${steps}`] : overrides),
];
console.log(
  `soak: ${steps} steps of a tiny papo train in ${run}${resume ? ' (resumed)' : ''}; load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
const logFile = path.join(dir, 'train.log');
const logFd = fs.openSync(logFile, 'a');
const child = spawn(process.execPath, args, {
  stdio: ['ignore', logFd, logFd],
  env: { ...process.env, PAPO_SOAK_PROBE: probe, PAPO_SOAK_GC: opt.gc ? '1' : '' },
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));

interface Row {
  step: number;
  rss: number;
  heap: number;
  external: number;
  fds: number;
  stepS: number;
  checkpoints: number;
  rollouts: number;
}
const rows: Row[] = [];
const MB = 2 ** 20;
const dirCount = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d).filter((n) => /^step_\d+/.test(n)).length : 0);
const lastLine = (file: string): Record<string, number> | undefined => {
  if (!fs.existsSync(file)) return undefined;
  const text = fs.readFileSync(file, 'utf8').trimEnd();
  return text ? JSON.parse(text.slice(text.lastIndexOf('\n') + 1)) : undefined;
};
let metricsOffset = 0;
let stepTimes: number[] = [];
let nextAt = every;
console.log('  step   RSS MB  heap MB  ext MB  fds  step s  ckpt dirs  rollout dirs');

function poll(): void {
  const file = path.join(run, 'metrics.jsonl');
  if (!fs.existsSync(file)) return;
  const text = fs.readFileSync(file, 'utf8');
  const fresh = text.slice(metricsOffset);
  const end = fresh.lastIndexOf('\n');
  if (end < 0) return;
  metricsOffset += end + 1;
  for (const line of fresh.slice(0, end).split('\n')) {
    const m = JSON.parse(line) as Record<string, number>;
    if (typeof m['timing_s/step'] === 'number') stepTimes.push(m['timing_s/step']);
    if (m.step >= nextAt) {
      nextAt += every;
      const p = lastLine(probe);
      if (!p) continue;
      const row: Row = {
        step: m.step,
        rss: p.rss / MB,
        heap: p.heap_used / MB,
        external: p.external / MB,
        fds: p.fds,
        stepS: stepTimes.reduce((a, b) => a + b, 0) / Math.max(1, stepTimes.length),
        checkpoints: dirCount(path.join(run, 'checkpoints')),
        rollouts: dirCount(path.join(run, 'rollouts')),
      };
      stepTimes = [];
      rows.push(row);
      console.log(
        `${String(row.step).padStart(6)} ${row.rss.toFixed(0).padStart(8)} ${row.heap.toFixed(1).padStart(8)} ${row.external.toFixed(1).padStart(7)} ${String(row.fds).padStart(4)} ${row.stepS.toFixed(3).padStart(7)} ${String(row.checkpoints).padStart(10)} ${String(row.rollouts).padStart(13)}`,
      );
    }
  }
}
const timer = setInterval(poll, 1000);
const code: number = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1))));
clearInterval(timer);
poll();

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}
if (rows.length >= 2) {
  // the first interval holds start-up (tensor backends, first allocations): flatness is judged after it
  const steady = rows.slice(1);
  const xs = steady.map((r) => r.step / 1000);
  console.log(`\nfrom step ${steady[0].step} to ${steady.at(-1)!.step} (first interval left out: start-up):`);
  for (const [name, key, unit] of [
    ['RSS', 'rss', 'MB'],
    ['JS heap used', 'heap', 'MB'],
    ['external', 'external', 'MB'],
    ['open fds', 'fds', ''],
    ['step time', 'stepS', 's'],
    ['checkpoint dirs', 'checkpoints', ''],
  ] as const) {
    const ys = steady.map((r) => r[key]);
    console.log(
      `  ${name.padEnd(16)} first ${ys[0].toFixed(2)}${unit} last ${ys.at(-1)!.toFixed(2)}${unit} min ${Math.min(...ys).toFixed(2)} max ${Math.max(...ys).toFixed(2)} slope ${slope(xs, ys).toFixed(3)}${unit}/1000 steps`,
    );
  }
}
if (code !== 0) console.log(fs.readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n'));
console.log(
  `papo train exited with ${code} (its output in ${logFile}); run directory ${run} (rollout log ${(dirSize(path.join(run, 'rollouts')) / MB).toFixed(1)} MB)`,
);
process.exitCode = code;

function dirSize(d: string): number {
  if (!fs.existsSync(d)) return 0;
  let total = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true, recursive: true })) if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size;
  return total;
}
