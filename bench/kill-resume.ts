/**
 * The kill test at scale: a real `papo train` SIGKILLed at random instants (many mid-save) and resumed,
 * 100 times by default, for max_staleness 0 and 1; prints whether the end equals the uninterrupted run.
 *
 *   node --import tsx bench/kill-resume.ts [kills]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { killAndResume } from '../test/pipelines/kill-driver.ts';

const kills = Number(process.argv[2] ?? 100);
for (const staleness of [0, 1]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `papo-kill-bench-${staleness}-`));
  const t0 = performance.now();
  const r = await killAndResume({ root: process.cwd(), dir, staleness, kills, steps: 60, seed: 100 + staleness });
  const diff: string[] = [];
  for (const k of Object.keys(r.uninterrupted.policy.params)) {
    const a = new Uint32Array(r.uninterrupted.policy.params[k].buffer);
    const b = new Uint32Array(r.interrupted.policy.params[k].buffer);
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) diff.push(k);
  }
  console.log(
    `max_staleness ${staleness}: ${r.kills} kills (${r.killedMidSave} mid-save), ${r.launches} launches, ${((performance.now() - t0) / 1000).toFixed(0)} s; ` +
      `final step ${r.interrupted.step}; weights ${diff.length ? `DIFFER in ${diff.join(', ')}` : 'identical to the uninterrupted run, bit for bit'}`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
}
