/**
 * Kills a real `papo train` child with SIGKILL at random instants, resumes it each time with `--resume`,
 * and compares where it ends with an uninterrupted run of the same config. Used by the kill test (CI) and
 * by bench/kill-resume.ts (many more kills).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointStore, type Checkpoint } from '../../storage/checkpoints.ts';
import { Rng } from '../../util/rng.ts';
import { saveTinyPolicy } from './tiny-run.ts';

export interface KillRunOptions {
  /** the repository (bin/papo.js) */
  root: string;
  /** a fresh working directory */
  dir: string;
  staleness: number;
  kills: number;
  steps: number;
  seed: number;
  log?: (line: string) => void;
}

export interface KillRunResult {
  kills: number;
  launches: number;
  /** kills that left an unfinished checkpoint write behind (swept by the next start) */
  killedMidSave: number;
  /** checkpoint steps seen after each kill */
  progress: number[];
  uninterrupted: Checkpoint;
  interrupted: Checkpoint;
  uninterruptedDir: string;
  interruptedDir: string;
}

function configYaml(weights: string, run: string, o: KillRunOptions): string {
  return [
    'data: { task: digits, families: [max, count], rollout_batch_size: 4, max_response_length: 6, seed: 5 }',
    'algorithm: { preset: papo_g }',
    'worker:',
    `  actor: { model: { model_path: ${JSON.stringify(weights)} }, global_batch_size: 2, optim: { lr: 0.005 } }`,
    '  rollout: { n: 4, threads: 1 }',
    `trainer: { max_steps: ${o.steps}, max_staleness: ${o.staleness}, save_freq: 1, save_limit: 2, test_before_and_after: false, save_checkpoint_path: ${JSON.stringify(run)} }`,
    '',
  ].join('\n');
}

async function latestCheckpoint(run: string): Promise<Checkpoint> {
  const store = new CheckpointStore(run);
  const name = await store.latest();
  if (!name) throw new Error(`no checkpoint in ${run}`);
  return store.load(name);
}

export async function killAndResume(o: KillRunOptions): Promise<KillRunResult> {
  const say = o.log ?? (() => undefined);
  const weights = path.join(o.dir, 'init');
  await saveTinyPolicy(weights);
  const env = { ...process.env, PAPO_DEBUG: '' };
  const papo = (args: string[]) =>
    spawn(process.execPath, [path.join(o.root, 'bin/papo.js'), ...args], { cwd: o.root, env, stdio: ['ignore', 'ignore', 'pipe'] });

  // The uninterrupted run, and how long it takes: kills are spread over that time.
  const uninterruptedDir = path.join(o.dir, 'uninterrupted');
  fs.writeFileSync(path.join(o.dir, 'uninterrupted.yaml'), configYaml(weights, uninterruptedDir, o));
  const t0 = performance.now();
  const ref = spawnSync(process.execPath, [path.join(o.root, 'bin/papo.js'), 'train', '--config', path.join(o.dir, 'uninterrupted.yaml')], {
    cwd: o.root,
    env,
    encoding: 'utf8',
  });
  if (ref.status !== 0) throw new Error(`uninterrupted run failed: ${ref.stderr}`);
  const duration = performance.now() - t0;
  // Start-up (loading, the engine's worker) and the time per step: kills are spread over what a launch has left to do.
  const stepSeconds = fs
    .readFileSync(path.join(uninterruptedDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .reduce((a, l) => a + (JSON.parse(l) as Record<string, number>)['timing_s/step'], 0);
  const perStep = (stepSeconds * 1000) / o.steps;
  say(`uninterrupted run: ${(duration / 1000).toFixed(1)} s (${(perStep / 1000).toFixed(2)} s per step)`);

  const interruptedDir = path.join(o.dir, 'interrupted');
  const cfgFile = path.join(o.dir, 'interrupted.yaml');
  fs.writeFileSync(cfgFile, configYaml(weights, interruptedDir, o));
  const rng = Rng.seeded(o.seed);
  const metricsFile = path.join(interruptedDir, 'metrics.jsonl');
  /** The last step this launch logged (lines older than the launch belong to the killed one; it rewinds them). */
  const loggedByThisLaunch = (since: number) => {
    if (!fs.existsSync(metricsFile) || fs.statSync(metricsFile).mtimeMs < since) return 0;
    const lines = fs
      .readFileSync(metricsFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    try {
      return lines.length ? (JSON.parse(lines[lines.length - 1]) as { step: number }).step : 0;
    } catch {
      return 0;
    }
  };
  // Start-up time of a launch until its first step, measured as launches go (kills during start-up use it).
  let startupMs = 2000;
  const store = new CheckpointStore(interruptedDir);
  let kills = 0;
  let launches = 0;
  let killedMidSave = 0;
  const progress: number[] = [];
  for (;;) {
    const spawnedAt = Date.now();
    const child = papo(['train', '--config', cfgFile, ...(launches > 0 ? ['--resume'] : [])]);
    launches++;
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    let finished = false;
    void exited.then(() => (finished = true));
    if (kills < o.kills) {
      // A kill instant: during start-up (one in four), or a random moment of a random later step, often
      // while that step's rollout log and checkpoint are being written. That step is at most the last but one:
      // the wait after it (up to a step's time) then always ends before the launch does, on a busy machine too,
      // and every kill the caller asks for happens.
      const done = progress.at(-1) ?? 0;
      if (rng.float() < 0.25 || done >= o.steps - 2) {
        // before the launch's first step is logged (start-up measured on an earlier launch may be longer)
        const until = Date.now() + rng.float() * startupMs;
        while (!finished && Date.now() < until && loggedByThisLaunch(spawnedAt) <= done) await new Promise((r) => setTimeout(r, 5));
      } else {
        const target = done + 1 + rng.int(o.steps - 2 - done);
        const extra = rng.float() * perStep;
        let first = 0;
        while (!finished && loggedByThisLaunch(spawnedAt) < target) {
          if (!first && loggedByThisLaunch(spawnedAt) > done) startupMs = 0.5 * startupMs + 0.5 * (Date.now() - spawnedAt);
          if (loggedByThisLaunch(spawnedAt) > done) first = 1;
          await new Promise((r) => setTimeout(r, 5));
        }
        await Promise.race([exited, new Promise((r) => setTimeout(r, extra))]);
      }
    }
    if (!finished && kills < o.kills) {
      child.kill('SIGKILL');
      await exited;
      kills++;
      const left = fs.existsSync(store.dir) ? fs.readdirSync(store.dir).filter((n) => n.includes('.tmp-')) : [];
      if (left.some((n) => n.startsWith('step_'))) killedMidSave++;
      // What a reader sees at any instant: latest, if present, names a complete checkpoint.
      const latest = await store.latest();
      if (latest) await store.load(latest);
      progress.push(latest ? Number(latest.slice(5, 11)) : 0);
      say(`kill ${kills}: checkpoint ${latest ?? 'none'}${left.length ? `, unfinished writes ${left.join(' ')}` : ''}`);
      continue;
    }
    const code = await exited;
    if (code !== 0) throw new Error(`launch ${launches} exited with ${code}: ${stderr}`);
    break;
  }
  return {
    kills,
    launches,
    killedMidSave,
    progress,
    uninterrupted: await latestCheckpoint(uninterruptedDir),
    interrupted: await latestCheckpoint(interruptedDir),
    uninterruptedDir,
    interruptedDir,
  };
}
