/**
 * Progress of long work on the terminal: a cli-progress bar when stderr is a TTY, otherwise (CI, logs
 * piped to a file) one plain line every `every` steps, so long runs always show step, rate and ETA.
 */
import { SingleBar, Presets } from 'cli-progress';
import { SteadyEta } from './eta.ts';

export interface Progress {
  /** `fields` are shown after the bar, e.g. { loss: '0.812', 'tok/s': '5400' }. */
  update(step: number, fields?: Record<string, string>): void;
  stop(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** `startAt`: steps already done (a resumed run), so rate and ETA count only this run's steps. */
export function createProgress(label: string, total: number, opts: { every?: number; quiet?: boolean; startAt?: number } = {}): Progress {
  const done0 = opts.startAt ?? 0;
  if (opts.quiet) return { update() {}, stop() {} };
  const start = performance.now();
  // the time left from the steps after the first (util/eta.ts), not cli-progress's own, which counts start-up
  const steady = new SteadyEta(total);
  const etaAt = (step: number) => {
    const now = performance.now();
    steady.update(step, now);
    return steady.seconds(step, now);
  };
  const fmt = (f: Record<string, string> = {}) =>
    Object.entries(f)
      .map(([k, v]) => `${k} ${v}`)
      .join('  ');
  if (process.stderr.isTTY) {
    const bar = new SingleBar({ format: `${label} [{bar}] {value}/{total}  {fields}  eta {eta_steady}`, stream: process.stderr }, Presets.shades_classic);
    bar.start(total, done0, { fields: '', eta_steady: '?' });
    return {
      update: (step, fields) => bar.update(step, { fields: fmt(fields), eta_steady: formatDuration(etaAt(step)) }),
      stop: () => bar.stop(),
    };
  }
  const every = opts.every ?? Math.max(1, Math.round(total / 20));
  return {
    update(step, fields) {
      const eta = etaAt(step);
      if (step % every !== 0 && step !== total) return;
      const elapsed = (performance.now() - start) / 1000;
      process.stderr.write(`${label} ${step}/${total}  ${fmt(fields)}  elapsed ${formatDuration(elapsed)}  eta ${formatDuration(eta)}\n`);
    },
    stop() {},
  };
}
