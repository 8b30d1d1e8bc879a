/**
 * The progress display on a terminal: a footer of a few lines kept at the bottom of the output, redrawn in
 * place. The first line is the bar with the step, elapsed time and ETA; below it, a table of the last steps'
 * figures (the fields of each update) under a header. Every line is cut to the terminal's width (whole
 * columns of the table are dropped first), so nothing wraps and the redraw never loses its place; the
 * width is read again on every draw, and a resize redraws. What else is written to the stream while the
 * footer is up (warnings, the loss-hacking watch) is printed above it, the footer redrawn below. The
 * elapsed time ticks every second between steps. The ETA is computed by the caller (util/progress.ts).
 *
 * @example
 * const d = createTtyDisplay({ label: 'train', total: 80, stream: process.stderr });
 * d.update(1, { reward: '0.41', acc: '0.38' }, 95); // eta 95 s
 * d.stop();
 */
import { formatDuration } from './duration.ts';

/** What the display needs of a terminal stream (process.stderr, or a fake one in tests). */
export interface DisplayStream {
  columns?: number;
  write(chunk: string | Uint8Array, ...rest: never[]): boolean;
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

export interface TtyDisplayOptions {
  label: string;
  total: number;
  /** steps done before this run (a resumed run): the bar starts there */
  startAt?: number;
  stream: DisplayStream;
  /** steps kept in the table (default 5) */
  rows?: number;
  /** redraw interval for the elapsed time in ms (default 1000; 0: on updates only) */
  tickMs?: number;
  /** the clock in ms (default performance.now) */
  now?: () => number;
}

export interface TtyDisplay {
  /** step `step` is done; `fields` are its figures (a table column each); `etaSeconds` the time left */
  update(step: number, fields: Record<string, string> | undefined, etaSeconds: number): void;
  /** the last state stays on screen; the stream is given back */
  stop(): void;
}

/** Width used when the stream does not say. */
export const DEFAULT_COLUMNS = 80;
const ESC = '\x1b[';

interface Row {
  step: number;
  fields: Record<string, string>;
}

/** Lines of the footer, none longer than `width`. */
export function footerLines(
  s: { label: string; total: number; step: number; elapsedSeconds: number; etaSeconds: number | undefined; rows: readonly Row[] },
  width: number,
): string[] {
  const pct = s.total > 0 ? Math.floor((100 * s.step) / s.total) : 0;
  const right = ` ${s.step}/${s.total} ${pct}%  elapsed ${formatDuration(s.elapsedSeconds)}  eta ${s.etaSeconds === undefined ? '?' : formatDuration(s.etaSeconds)}`;
  const room = width - s.label.length - 3 - right.length;
  let first = s.label + right;
  if (room >= 10) {
    const size = Math.min(40, room);
    const done = s.total > 0 ? Math.min(size, Math.round((size * s.step) / s.total)) : 0;
    first = `${s.label} [${'\u2588'.repeat(done)}${'\u2591'.repeat(size - done)}]${right}`;
  }
  const lines = [first];
  if (s.rows.length) lines.push(...table(s.rows, width));
  return lines.map((l) => (l.length > width ? l.slice(0, width) : l));
}

/** The last steps as a right-aligned table: step, then the fields in first-seen order. */
function table(rows: readonly Row[], width: number): string[] {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.fields)))];
  const columns = [{ head: 'step', cells: rows.map((r) => String(r.step)) }, ...keys.map((k) => ({ head: k, cells: rows.map((r) => r.fields[k] ?? '-') }))];
  // Whole columns, from the left, while they fit.
  const shown: { head: string; cells: string[]; w: number }[] = [];
  let used = 0;
  for (const c of columns) {
    const w = Math.max(c.head.length, ...c.cells.map((x) => x.length));
    if (used + 2 + w > width && shown.length > 0) break;
    shown.push({ ...c, w });
    used += 2 + w;
  }
  const line = (cell: (c: (typeof shown)[number]) => string) => shown.map((c) => cell(c).padStart(c.w + 2)).join('');
  return [line((c) => c.head), ...rows.map((_, i) => line((c) => c.cells[i]))];
}

/** The display each stream shows: a new one stops the one before (left running by work that failed). */
const active = new WeakMap<DisplayStream, TtyDisplay>();

export function createTtyDisplay(opts: TtyDisplayOptions): TtyDisplay {
  const { stream, label, total } = opts;
  active.get(stream)?.stop();
  const now = opts.now ?? (() => performance.now());
  const keep = opts.rows ?? 5;
  const start = now();
  const rows: Row[] = [];
  let step = opts.startAt ?? 0;
  let eta: number | undefined;
  let drawn = 0;
  let pendingNewline = false;
  let stopped = false;

  const write = stream.write;
  const ownWrite = Object.hasOwn(stream, 'write');
  const put = (text: string) => write.call(stream, text as never);
  const erase = () => (drawn === 0 ? '' : `\r${drawn > 1 ? `${ESC}${drawn - 1}A` : ''}${ESC}J`);
  const draw = () => {
    const width = Math.max(1, (stream.columns ?? DEFAULT_COLUMNS) - 1);
    const lines = footerLines({ label, total, step, elapsedSeconds: (now() - start) / 1000, etaSeconds: eta, rows }, width);
    const text = `${erase()}${pendingNewline ? '\n' : ''}${lines.join('\n')}`;
    pendingNewline = false;
    drawn = lines.length;
    put(text);
  };

  // Writes by anyone else go above the footer.
  stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const clear = erase();
    drawn = 0;
    if (clear) put(clear);
    const ok = write.call(stream, chunk as never, ...rest);
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    if (text.length) pendingNewline = !text.endsWith('\n');
    draw();
    return ok;
  }) as DisplayStream['write'];
  const onResize = () => draw();
  stream.on?.('resize', onResize);
  const tickMs = opts.tickMs ?? 1000;
  const timer = tickMs > 0 ? setInterval(draw, tickMs) : undefined;
  timer?.unref();
  draw();

  const display: TtyDisplay = {
    update(s, fields, etaSeconds) {
      if (stopped) return;
      if (fields && Object.keys(fields).length) {
        rows.push({ step: s, fields });
        if (rows.length > keep) rows.shift();
      }
      step = s;
      eta = etaSeconds;
      draw();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      stream.off?.('resize', onResize);
      draw();
      if (ownWrite) stream.write = write;
      else delete (stream as Partial<DisplayStream>).write;
      put('\n');
      if (active.get(stream) === display) active.delete(stream);
    },
  };
  active.set(stream, display);
  return display;
}
