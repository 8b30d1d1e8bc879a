/**
 * Progress of long work on the terminal: a footer of a few lines when stderr is a TTY (the bar, elapsed
 * time, ETA and the last steps' figures; util/progress-display.ts), otherwise (CI, logs piped to a file)
 * one plain line every `every` steps, so long runs always show step, rate and ETA.
 */
import { formatDuration } from './duration.ts';
import { SteadyEta } from './eta.ts';
import { createTtyDisplay } from './progress-display.ts';

export { formatDuration };

export interface Progress {
  /** `fields` are the step's figures, e.g. { loss: '0.812', 'tok/s': '5400' }. */
  update(step: number, fields?: Record<string, string>): void;
  stop(): void;
}

/** `startAt`: steps already done (a resumed run), so rate and ETA count only this run's steps. */
export function createProgress(label: string, total: number, opts: { every?: number; quiet?: boolean; startAt?: number } = {}): Progress {
  const done0 = opts.startAt ?? 0;
  if (opts.quiet) return { update() {}, stop() {} };
  const start = performance.now();
  // the time left from the steps after the first (util/eta.ts): the first carries the start-up
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
    const display = createTtyDisplay({ label, total, startAt: done0, stream: process.stderr });
    return {
      update: (step, fields) => display.update(step, fields, etaAt(step)),
      stop: () => display.stop(),
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
