/**
 * The run directory of `papo train` / `papo sft`: what a new run may write into, what `--force` moves
 * aside, and how a resumed run rewinds the files written after its checkpoint. Nothing here deletes a
 * file it did not write: a user's own files are never touched, and `--force` moves an earlier run's
 * files into `previous-<time>/` rather than deleting them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../storage/atomic.ts';

/** The files and directories a run writes. */
export const RUN_FILES = ['checkpoints', 'rollouts', 'metrics.jsonl', 'log.jsonl', 'config.json', 'weights', 'tensorboard', 'val_generations.jsonl'];
/** Those that hold results: a directory with any of them holds a run (config.json and log.jsonl alone are a start that failed). */
const RUN_RESULTS = ['checkpoints', 'rollouts', 'metrics.jsonl', 'weights', 'tensorboard', 'val_generations.jsonl'];

/**
 * Refuses a run directory whose own files or directories are symbolic links: a run writes only files it
 * creates, never through a link that could lead anywhere (`--force` refuses them too: nothing is followed).
 */
export function refuseLinkedRunFiles(dir: string): void {
  for (const f of RUN_FILES) {
    const p = path.join(dir, f);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (st.isSymbolicLink())
      throw new Error(`${p} is a symbolic link: a run writes only files of its own in its directory, never through a link; remove it (nothing was changed)`);
  }
}

/** The run files present in `dir`. */
export function runFilesIn(dir: string, which = RUN_FILES): string[] {
  return which.filter((f) => fs.existsSync(path.join(dir, f)));
}

/**
 * Makes `dir` ready for a new run. A directory holding another run's files is refused, or with `force`
 * those files are moved into `dir/previous-<time>/` (returned). Other files in `dir` are left alone.
 */
export function prepareFreshRunDir(dir: string, force: boolean): string | undefined {
  fs.mkdirSync(dir, { recursive: true });
  const found = runFilesIn(dir);
  if (runFilesIn(dir, RUN_RESULTS).length === 0) return undefined;
  if (!force) {
    throw new Error(
      `${dir} already holds a run (${found.join(', ')}): continue it with --resume (trainer.resume_mode=auto), ` +
        'start over with --force (its files are moved to previous-<time>/, nothing is deleted), or choose another trainer.save_checkpoint_path',
    );
  }
  const aside = path.join(dir, `previous-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  fs.mkdirSync(aside);
  for (const f of found) fs.renameSync(path.join(dir, f), path.join(aside, f));
  return aside;
}

export interface MetricsLine {
  step: number;
  version: number;
  [k: string]: number;
}

/** The records of `<run>/metrics.jsonl` (a torn last line, from a kill mid-write, is skipped). */
export function readMetrics(file: string): MetricsLine[] {
  if (!fs.existsSync(file)) return [];
  const out: MetricsLine[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as MetricsLine;
      if (typeof r.step === 'number') out.push(r);
    } catch {
      // a line cut by a kill
    }
  }
  return out;
}

/** Rewinds `<run>/metrics.jsonl` to the steps up to `step` (a resumed run writes the later ones again). */
export async function truncateMetrics(file: string, step: number): Promise<MetricsLine[]> {
  const kept = readMetrics(file).filter((r) => r.step <= step);
  if (fs.existsSync(file)) await writeFileAtomic(file, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
  return kept;
}
