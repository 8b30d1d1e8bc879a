/**
 * The terminal display against a fake TTY and a small terminal model (text, CR, LF, cursor up, erase
 * below): what a person sees is the bar with elapsed time and ETA and the last steps, no line wider than
 * the terminal, and other output above the footer, once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTtyDisplay, footerLines } from '../../util/progress-display.ts';
import { createProgress } from '../../util/progress.ts';

/** A TTY stream of `columns` columns that records every write. */
class FakeTty {
  isTTY = true;
  chunks: string[] = [];
  listeners: (() => void)[] = [];
  constructor(public columns: number) {}
  write(chunk: string | Uint8Array): boolean {
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  }
  on(_e: 'resize', f: () => void) {
    this.listeners.push(f);
  }
  off(_e: 'resize', f: () => void) {
    this.listeners = this.listeners.filter((x) => x !== f);
  }
  get output() {
    return this.chunks.join('');
  }
}

/** A control sequence at the start of a string: ESC [ n letter. */
const CSI = new RegExp(`^${String.fromCharCode(27)}\\[(\\d*)([A-Za-z])`);

/** The screen after `output`: lines of text, with the cursor moves and erases the display uses applied. */
function screen(output: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  for (let i = 0; i < output.length; i++) {
    const ch = output[i];
    if (ch === '\x1b') {
      const m = CSI.exec(output.slice(i));
      assert.ok(m, `unknown escape at ${i}: ${JSON.stringify(output.slice(i, i + 8))}`);
      const n = m[1] === '' ? 1 : Number(m[1]);
      if (m[2] === 'A') row = Math.max(0, row - n);
      else if (m[2] === 'J') {
        lines[row] = lines[row].slice(0, col);
        lines.length = row + 1;
      } else assert.fail(`escape ${m[0]} not expected`);
      i += m[0].length - 1;
    } else if (ch === '\r') col = 0;
    else if (ch === '\n') {
      row++;
      col = 0;
      if (lines.length <= row) lines.push('');
    } else {
      const l = lines[row].padEnd(col);
      lines[row] = l.slice(0, col) + ch + l.slice(col + 1);
      col++;
    }
  }
  return lines;
}

const plain = (output: string) => output.replace(new RegExp(CSI.source.slice(1), 'g'), '').replace(/\r/g, '\n');
const figures = (i: number) => ({
  reward: (0.1 * i).toFixed(3),
  acc: '0.375',
  kl_prcp: '0.2310',
  entropy: '0.204',
  len: '5.6',
  'tok/s': '5400',
});

test('TTY display: the bar, elapsed, ETA and the last 5 steps, no line longer than 80 columns', () => {
  const tty = new FakeTty(80);
  let t = 0;
  const d = createTtyDisplay({ label: 'train', total: 80, stream: tty, tickMs: 0, now: () => t });
  for (let step = 1; step <= 12; step++) {
    t += 2000;
    d.update(step, figures(step), (80 - step) * 2);
  }
  const shown = screen(tty.output);
  assert.match(shown[0], /^train \[█+░+\] 12\/80 15% {2}elapsed 24s {2}eta 2m16s$/);
  assert.match(shown[1], /^ +step +reward +acc +kl_prcp +entropy +len +tok\/s$/);
  assert.deepEqual(
    shown.slice(2).map((l) => l.trim().split(/ +/)[0]),
    ['8', '9', '10', '11', '12'],
    'the last 5 steps',
  );
  assert.match(shown[6], /^ +12 +1\.200 +0\.375 +0\.2310 +0\.204 +5\.6 +5400$/);
  assert.equal(shown.length, 7, 'the footer is redrawn in place, not appended');
  for (const l of plain(tty.output).split('\n')) assert.ok(l.length <= 80, `${l.length} columns: ${l}`);
  d.stop();
});

test('TTY display: a narrow terminal drops whole columns; a resize redraws at the new width', () => {
  const tty = new FakeTty(40);
  let t = 0;
  const d = createTtyDisplay({ label: 'train', total: 80, stream: tty, tickMs: 0, now: () => t });
  t = 65_000;
  d.update(3, figures(3), 3600 + 120);
  let shown = screen(tty.output);
  for (const l of plain(tty.output).split('\n')) assert.ok(l.length <= 40, `${l.length} columns: ${l}`);
  assert.match(shown[0], /^train 3\/80 3% {2}elapsed 1m05s {2}eta 1h02m$/, 'no room for the bar');
  assert.match(shown[1], /^ +step +reward +acc +kl_prcp +entropy$/, 'the columns that fit');
  tty.columns = 120;
  for (const f of tty.listeners) f();
  shown = screen(tty.output);
  assert.match(shown[0], /^train \[█+░+\] 3\/80/);
  assert.match(shown[1], /len +tok\/s$/);
  d.stop();
});

test('TTY display: other output goes above the footer, once; stop leaves the last state and gives the stream back', () => {
  const tty = new FakeTty(80);
  const write = tty.write;
  let t = 0;
  const d = createTtyDisplay({ label: 'train', total: 10, stream: tty, tickMs: 0, now: () => t });
  t = 1000;
  d.update(1, figures(1), 9);
  tty.write('warning: possible loss hacking at step 1\n');
  tty.write('no newline at the end');
  t = 2000;
  d.update(2, figures(2), 8);
  d.stop();
  assert.equal(tty.write, write, 'write is the stream own again');
  tty.write('after\n');
  const shown = screen(tty.output);
  assert.deepEqual(shown.slice(0, 2), ['warning: possible loss hacking at step 1', 'no newline at the end']);
  assert.match(shown[2], /^train \[█+░+\] 2\/10 20%/);
  assert.deepEqual(
    shown.slice(4, 6).map((l) => l.trim().split(/ +/)[0]),
    ['1', '2'],
  );
  assert.deepEqual(shown.slice(6), ['after', '']);
  assert.equal(shown.filter((l) => l.startsWith('warning')).length, 1);
});

test('TTY display: the elapsed time ticks between steps; updates without figures show the bar alone', async () => {
  const tty = new FakeTty(80);
  let t = 0;
  const d = createTtyDisplay({ label: 'eval test', total: 100, stream: tty, tickMs: 5, now: () => t });
  d.update(10, undefined, 50);
  t = 7000;
  await new Promise((r) => setTimeout(r, 30));
  const shown = screen(tty.output);
  assert.deepEqual(shown.length, 1);
  assert.match(shown[0], /^eval test \[.+\] 10\/100 10% {2}elapsed 7s {2}eta 50s$/);
  d.stop();
  const n = tty.chunks.length;
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(tty.chunks.length, n, 'no redraw after stop');
});

test('TTY display: a new display on the same stream stops the one left running', () => {
  const tty = new FakeTty(80);
  const write = tty.write;
  const first = createTtyDisplay({ label: 'eval test', total: 10, stream: tty, tickMs: 0, now: () => 0 });
  first.update(3, undefined, 7);
  const second = createTtyDisplay({ label: 'train', total: 5, stream: tty, tickMs: 0, now: () => 0 });
  second.update(1, figures(1), 4);
  tty.write('note\n');
  second.stop();
  first.stop();
  assert.equal(tty.write, write);
  const shown = screen(tty.output);
  assert.match(shown[0], /^eval test \[.+\] 3\/10/, 'the first display is left as it was');
  assert.equal(shown[1], 'note');
  assert.match(shown[2], /^train \[.+\] 1\/5/);
  assert.equal(shown.filter((l) => l.startsWith('train')).length, 1, 'one footer');
});

test('footerLines: every line fits any width', () => {
  const rows = [1, 2, 3].map((step) => ({ step, fields: figures(step) }));
  for (let width = 1; width <= 130; width++) {
    const lines = footerLines({ label: 'train', total: 80, step: 3, elapsedSeconds: 5, etaSeconds: 100, rows }, width);
    for (const l of lines) assert.ok(l.length <= width, `width ${width}: ${l}`);
  }
});

test('not a TTY: plain lines with elapsed time and ETA', () => {
  const stderr = process.stderr;
  const lines: string[] = [];
  const fake = { isTTY: false, write: (s: string) => lines.push(s) > 0 };
  Object.defineProperty(process, 'stderr', { value: fake, configurable: true });
  try {
    const p = createProgress('train', 4, { every: 2 });
    for (let s = 1; s <= 4; s++) p.update(s, { reward: '0.500' });
    p.stop();
  } finally {
    Object.defineProperty(process, 'stderr', { value: stderr, configurable: true });
  }
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^train 2\/4 {2}reward 0\.500 {2}elapsed \d+s {2}eta \d+s\n$/);
  assert.ok(
    lines.every((l) => !l.includes('\x1b')),
    'no escape codes',
  );
});
