/**
 * Performance as the work grows, side by side in one run: onnxruntime against PyTorch on the same function
 * and shapes, one axis at a time from the default shape (d 128, 4 heads, 2 decoder layers, 48 response
 * tokens, 16 rows): widths 128 / 256 / 512 (heads d / 32), decoder layers 2 / 4 / 8, response lengths
 * 48 / 128 / 256, rows 16 / 64, and the largest combined shape (d 512, 8 layers, 256 tokens, 64 rows).
 * Every row has a 32-patch image and a 37-token prompt. Per shape, three calls:
 * - update: one optimizer step (forward, token-mean NLL, backward, clipping, AdamW): the onnxruntime
 *   trainer as `papo train` runs it (2 replicas x 1 thread) and on 1 thread (1 replica) vs bench/torch-policy.py;
 * - logprobs: teacher-forced log-probs of the rows (the engine's `logprobs` graph, 2 intra-op threads, and 1)
 *   vs torch-policy.py --mode logprobs (inference mode);
 * - sample: rows / 8 prompts x 8 responses with the key/value cache (the engine's prefill and step graphs,
 *   2 threads, and 1) vs bench/torch-sample.py (PyTorch's own key/value-cache loop), which stops each row at the
 *   length the engine sampled (random init: rows end at EOS), so both do the same work.
 * PyTorch runs on 1 and 2 threads (`--torch-threads`); it is optional (Debian's python3-torch with
 * libopenblas0-pthread), as in bench/update-step.ts. Each engine runs in a process of its own per shape and
 * call, so the peak RSS printed is that call's; rounds alternate between the engines (the machine is
 * shared). Printed per shape and call: wall and process CPU ms per call (the best of `--steps` calls, median
 * over rounds), tokens/s (response tokens: rows x response length; sampled tokens for sampling),
 * GFLOP/s (the model's nominal FLOPs per wall second) and the share of the measured matmul peak that one CPU
 * second reaches (FLOPs / CPU s / onnxruntime's 1024^3 matmul on 1 thread), peak RSS, and the
 * onnxruntime / PyTorch wall ratio (< 1: onnxruntime ahead). The load average is printed before and after.
 * `--profile DIR` runs onnxruntime's profiler (1 thread) on the selected shapes and prints the time per op type.
 *
 *   node --import tsx bench/scaling.ts [--quick] [--rounds 3] [--steps 2] [--shapes d128,L8,...]
 *     [--calls update,logprobs,sample] [--torch-threads 1,2] [--no-torch] [--profile DIR]
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { type PolicyConfig, policyConfig, policyDims } from '../models/config.ts';
import { initParams } from '../models/params.ts';
import { GraphBuilder } from '../models/onnx/builder.ts';
import { OrtTrainer } from '../models/trainer/ort-trainer.ts';
import type { LossFn } from '../models/trainer/types.ts';
import { tokenMeanNll } from '../models/trainer/losses.ts';
import { OrtPolicyRunner } from '../models/engine/runner.ts';
import { packWeights } from '../models/engine/weights.ts';
import { benchRows, PROMPT_TOKENS } from './bench-rows.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const GROUP = 8;
const CALLS = ['update', 'logprobs', 'sample'] as const;
type Call = (typeof CALLS)[number];

interface Shape {
  name: string;
  d: number;
  layers: number;
  response: number;
  rows: number;
}
const heads = (s: Shape) => s.d / 32;
const shape = (d: number, layers: number, response: number, rows: number): Shape => ({
  name: `d${d}-L${layers}-T${response}-R${rows}`,
  d,
  layers,
  response,
  rows,
});
const DEFAULT = shape(128, 2, 48, 16);
const SHAPES: Shape[] = [
  DEFAULT,
  shape(256, 2, 48, 16),
  shape(512, 2, 48, 16),
  shape(128, 4, 48, 16),
  shape(128, 8, 48, 16),
  shape(128, 2, 128, 16),
  shape(128, 2, 256, 16),
  shape(128, 2, 48, 64),
  shape(512, 8, 256, 64),
];
const QUICK = ['d128-L2-T48-R16', 'd512-L2-T48-R16', 'd128-L8-T48-R16', 'd128-L2-T256-R16', 'd128-L2-T48-R64'];

const configOf = (s: Shape): PolicyConfig =>
  policyConfig({ dModel: s.d, nHeads: heads(s), nLayers: s.layers, maxResponseLen: Math.max(48, s.response), seed: 1 });

/** The model's nominal forward FLOPs over `rows` full sequences (all S x S attention scores, the head on response positions). */
function forwardFlops(cfg: PolicyConfig, rows: number, response: number): number {
  const { nPatch, patchDim } = policyDims(cfg);
  const d = cfg.dModel;
  const S = nPatch + PROMPT_TOKENS + response;
  return rows * (cfg.nLayers * (24 * d * d * S + 4 * S * S * d) + 2 * patchDim * d * nPatch + 2 * d * cfg.vocabSize * response);
}

/** Sampling FLOPs: the prefill of the distinct prompts, then per generated token (after the first) one step over its cache. */
function sampleFlops(cfg: PolicyConfig, prompts: number, lengths: number[]): number {
  const { nPatch, patchDim } = policyDims(cfg);
  const d = cfg.dModel;
  const S0 = nPatch + PROMPT_TOKENS;
  let f = prompts * (cfg.nLayers * (24 * d * d * S0 + 4 * S0 * S0 * d) + 2 * patchDim * d * nPatch + 2 * d * cfg.vocabSize);
  for (const len of lengths) for (let t = 1; t < len; t++) f += cfg.nLayers * (24 * d * d + 4 * (S0 + t) * d) + 2 * d * cfg.vocabSize;
  return f;
}

/** One measurement: the best of `steps` calls (wall), the CPU time of that call, and the process's peak RSS. */
interface Measured {
  ms: number;
  cpuMs: number;
  rssMb: number;
  tokens: number;
  lengths?: number[];
}

async function timed(steps: number, fn: () => Promise<number>): Promise<Omit<Measured, 'rssMb'>> {
  let best = { ms: Infinity, cpuMs: 0, tokens: 0 };
  await fn(); // warm-up
  for (let s = 0; s < steps; s++) {
    const c = process.cpuUsage();
    const t = performance.now();
    const tokens = await fn();
    const ms = performance.now() - t;
    const cpu = process.cpuUsage(c);
    if (ms < best.ms) best = { ms, cpuMs: (cpu.user + cpu.system) / 1000, tokens };
  }
  return best;
}

/** The child process: one call on one shape with onnxruntime, printed as one JSON line. */
async function child(s: Shape, call: Call, steps: number, profile: string | undefined, oneThread: boolean): Promise<void> {
  const cfg = configOf(s);
  const params = initParams(cfg);
  const rows = benchRows(cfg, 0, s.rows, s.response);
  let m: Omit<Measured, 'rssMb'>;
  let lengths: number[] | undefined;
  if (call === 'update') {
    const trainer = await OrtTrainer.create(cfg, params, { lr: 1e-4 }, profile || oneThread ? { replicas: 1, threads: 1, profile } : {});
    m = await timed(steps, async () => {
      await trainer.minimize(rows, tokenMeanNll as LossFn<unknown>);
      return s.rows * s.response;
    });
    await trainer.close();
  } else {
    const runner = await OrtPolicyRunner.create(cfg, { intraOpThreads: profile || oneThread ? 1 : 2, profile });
    runner.setWeights(packWeights(cfg, params, 0));
    if (call === 'logprobs') {
      m = await timed(steps, async () => {
        await runner.logProbs({ images: rows.images, prompts: rows.prompts, responses: rows.responses });
        return s.rows * s.response;
      });
    } else {
      const prompts = s.rows / GROUP;
      const req = { images: rows.images.slice(0, prompts), prompts: rows.prompts.slice(0, prompts), n: GROUP, maxNewTokens: s.response, seed: 7 };
      m = await timed(steps, async () => {
        const r = await runner.sample(req);
        lengths = r.responses.map((x) => x.length);
        return r.tokens;
      });
    }
    await runner.release();
  }
  const out: Measured = { ...m, rssMb: process.resourceUsage().maxRSS / 1024, lengths };
  console.log(JSON.stringify(out));
}

function runChild(s: Shape, call: Call, steps: number, profile?: string, oneThread = false): Measured {
  const argv = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify({ shape: s, call, steps, profile, oneThread })];
  const r = spawnSync(process.execPath, argv, {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`onnxruntime ${call} on ${s.name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Measured;
}

/** Debian's python3 (with python3-torch) if it imports torch, else the first python3 on PATH that does (as bench/update-step.ts). */
function torchPython(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return undefined;
}

function runTorch(py: string, s: Shape, call: Call, threads: number, steps: number, lengths: number[]): Measured {
  const cfg = configOf(s);
  const dims = ['--d', String(s.d), '--heads', String(heads(s)), '--layers', String(s.layers), '--max-text', String(policyDims(cfg).maxTextLen)];
  const common = ['--threads', String(threads), '--steps', String(steps), '--prompt', String(PROMPT_TOKENS), ...dims];
  const argv =
    call === 'sample'
      ? [path.join(HERE, 'torch-sample.py'), '--prompts', String(s.rows / GROUP), '--group', String(GROUP), '--lengths', lengths.join(','), ...common]
      : [path.join(HERE, 'torch-policy.py'), '--mode', call, '--skip-matmul', '--rows', String(s.rows), '--response', String(s.response), ...common];
  // Debian's torch calls OpenBLAS, whose own thread pool is sized by the environment, not by torch.set_num_threads.
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  const r = spawnSync(py, argv, { encoding: 'utf8', maxBuffer: 1 << 26, env });
  if (r.status !== 0) throw new Error(`PyTorch ${call} on ${s.name} failed: ${r.stderr}`);
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as { ms: number[]; cpu_ms: number[]; maxrss_mb: number; tokens?: number };
  const k = j.ms.indexOf(Math.min(...j.ms));
  return { ms: j.ms[k], cpuMs: j.cpu_ms[k], rssMb: j.maxrss_mb, tokens: call === 'sample' ? (j.tokens as number) : s.rows * s.response };
}

/**
 * Best-of-n GFLOP/s of a 1024^3 matmul in onnxruntime (MLAS) on `threads` threads: the machine's matmul peak,
 * per wall second (`cpu` false) or per CPU second of the process (`cpu` true: what a core does while it runs,
 * much less disturbed by other work on a shared machine).
 */
async function ortMatmulPeak(threads: number, cpu = false, n = 1024, reps = 6): Promise<number> {
  const g = new GraphBuilder('peak');
  g.output(g.op('MatMul', [g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])]), 'c', 'float32', [n, n]);
  const s = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: threads });
  const x = new ort.Tensor('float32', new Float32Array(n * n).fill(0.5), [n, n]);
  await s.run({ a: x, b: x });
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    await s.run({ a: x, b: x });
    const used = process.cpuUsage(c);
    best = Math.min(best, cpu ? (used.user + used.system) / 1000 : performance.now() - t);
  }
  await s.release();
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

/**
 * Time per op type in an onnxruntime profile (node events only), largest first. Each node counts its median
 * duration times its runs: on a shared machine one preempted run of a small node would otherwise dominate.
 */
export function summarizeProfile(file: string): { op: string; us: number; share: number }[] {
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as ProfileEvent[];
  const nodes = new Map<string, { op: string; durs: number[] }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.op_name) continue;
    const n = nodes.get(e.name) ?? { op: e.args.op_name, durs: [] };
    n.durs.push(e.dur ?? 0);
    nodes.set(e.name, n);
  }
  const per = new Map<string, number>();
  for (const { op, durs } of nodes.values()) per.set(op, (per.get(op) ?? 0) + median(durs) * durs.length);
  const total = [...per.values()].reduce((a, b) => a + b, 0);
  return [...per.entries()].map(([op, us]) => ({ op, us, share: us / total })).sort((a, b) => b.us - a.us);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      child: { type: 'string' },
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      steps: { type: 'string' },
      shapes: { type: 'string' },
      calls: { type: 'string', default: CALLS.join(',') },
      'torch-threads': { type: 'string', default: '1,2' },
      'no-torch': { type: 'boolean', default: false },
      profile: { type: 'string' },
    },
  });
  if (args.child) {
    const c = JSON.parse(args.child) as { shape: Shape; call: Call; steps: number; profile?: string; oneThread: boolean };
    await child(c.shape, c.call, c.steps, c.profile, c.oneThread);
    return;
  }
  const rounds = Number(args.rounds ?? (args.quick ? 1 : 3));
  const steps = Number(args.steps ?? (args.quick ? 1 : 2));
  const wanted = args.shapes?.split(',') ?? (args.quick ? QUICK : undefined);
  const shapes = wanted ? SHAPES.filter((s) => wanted.some((w) => s.name === w || s.name.split('-').includes(w))) : SHAPES;
  if (shapes.length === 0) throw new Error(`--shapes matched none of ${SHAPES.map((s) => s.name).join(', ')}`);
  const calls = args.calls.split(',') as Call[];
  for (const c of calls) if (!CALLS.includes(c)) throw new Error(`--calls: '${c}' is not one of ${CALLS.join(', ')}`);
  const torchThreads = args['torch-threads'].split(',').map(Number);

  if (args.profile) {
    const dir = path.resolve(args.profile);
    fs.mkdirSync(dir, { recursive: true });
    for (const s of shapes) {
      for (const call of calls) {
        const before = new Set(fs.readdirSync(dir));
        runChild(s, call, 1, path.join(dir, `${s.name}-${call}-`));
        for (const f of fs.readdirSync(dir).filter((x) => !before.has(x) && x.endsWith('.json'))) {
          const top = summarizeProfile(path.join(dir, f)).slice(0, 8);
          if (top.length === 0) continue; // a session this call did not run
          console.log(`${f}: ${top.map((t) => `${t.op} ${(100 * t.share).toFixed(0)}%`).join(', ')}`);
        }
      }
    }
    return;
  }

  const py = args['no-torch'] ? undefined : torchPython();
  const engines = ['onnxruntime', 'ort 1 thread', ...(py ? torchThreads.map((t) => `PyTorch ${t}t`) : [])];
  const peak1 = await ortMatmulPeak(1, true);
  const peak2 = await ortMatmulPeak(2);
  const results = new Map<string, Measured[]>();
  const lengthsOf = new Map<string, number[]>();
  const key = (s: Shape, call: Call, e: string) => `${s.name}|${call}|${e}`;
  const load0 = os.loadavg();
  for (let round = 0; round < rounds; round++) {
    for (const s of shapes) {
      for (const call of calls) {
        const m = runChild(s, call, steps);
        if (m.lengths) lengthsOf.set(s.name, m.lengths);
        const put = (e: string, x: Measured) => {
          const k = key(s, call, e);
          results.set(k, [...(results.get(k) ?? []), x]);
        };
        put('onnxruntime', m);
        put('ort 1 thread', runChild(s, call, steps, undefined, true));
        if (py) for (const t of torchThreads) put(`PyTorch ${t}t`, runTorch(py, s, call, t, steps, lengthsOf.get(s.name) ?? []));
      }
    }
  }
  const load1 = os.loadavg();

  console.log(`scaling: ${rounds} round(s), each the best of ${steps} call(s); rows of 32 image patches + ${PROMPT_TOKENS} prompt tokens + T response tokens`);
  console.log(
    `load average (1, 5, 15 min) ${load0.map((x) => x.toFixed(2)).join(', ')} before, ${load1.map((x) => x.toFixed(2)).join(', ')} after, on ${os.cpus().length} cores`,
  );
  console.log(
    `onnxruntime 1024^3 matmul: ${peak1.toFixed(1)} GFLOP per CPU second on 1 thread (the peak of "% peak": FLOPs per CPU second of the call / this), ${peak2.toFixed(1)} GFLOP/s on 2 threads (wall)`,
  );
  if (!py && !args['no-torch']) console.log('  (PyTorch not measured: no python3 that imports torch; apt-get install python3-torch libopenblas0-pthread)');
  const head = ['shape', 'call', 'engine', 'wall ms', 'CPU ms', 'tok/s', 'GFLOP/s', '% peak', 'RSS MB', 'ort/torch'];
  const widths = [18, 9, 12, 9, 9, 9, 8, 7, 7, 12];
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ');
  console.log(line(head));
  for (const s of shapes) {
    const cfg = configOf(s);
    for (const call of calls) {
      const lengths = lengthsOf.get(s.name) ?? [];
      const flops =
        call === 'update'
          ? 3 * forwardFlops(cfg, s.rows, s.response)
          : call === 'logprobs'
            ? forwardFlops(cfg, s.rows, s.response)
            : sampleFlops(cfg, s.rows / GROUP, lengths);
      const ortMs = median((results.get(key(s, call, 'onnxruntime')) ?? []).map((x) => x.ms));
      for (const e of engines) {
        const xs = results.get(key(s, call, e));
        if (!xs) continue;
        const ms = median(xs.map((x) => x.ms));
        const cpu = median(xs.map((x) => x.cpuMs));
        const tokens = xs[0].tokens;
        const ratio = e.startsWith('PyTorch') ? `${(ortMs / ms).toFixed(2)}x` : '';
        console.log(
          line([
            s.name,
            call,
            e,
            ms.toFixed(1),
            cpu.toFixed(1),
            (tokens / (ms / 1000)).toFixed(0),
            (flops / (ms / 1000) / 1e9).toFixed(1),
            ((100 * flops) / (cpu / 1000) / 1e9 / peak1).toFixed(0),
            Math.max(...xs.map((x) => x.rssMb)).toFixed(0),
            ratio,
          ]),
        );
      }
    }
  }
}

await main();
