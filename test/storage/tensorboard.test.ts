/**
 * The TensorBoard event-file writer against an independent reader (test/storage/tfevents-reader.ts: its
 * own CRC32C, framing and protobuf decoder): values, steps, tags and checksums; every flipped byte is
 * detected; files are readable while the run writes; a resumed run's rewind leaves every step once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TensorBoardWriter, FILE_VERSION, eventFiles, maskedCrc32c, readEventFile, rewindEventFiles } from '../../storage/tensorboard.ts';
import { crc32c, masked, readEvents, records, scalarsByStep } from './tfevents-reader.ts';

let tmp: string;
before(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-tb-'))));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const metricsOf = (step: number) => ({
  'critic/score/mean': 0.1 * step,
  'actor/kl_prcp_loss': -0.01 * step,
  'timing_s/gen': 1 / 3,
  'response_length/max': 15 + step,
});

test('the independent CRC32C gives the RFC 3720 check values', () => {
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  const bytes = new TextEncoder().encode('papo-stream');
  assert.equal(maskedCrc32c(bytes), masked(crc32c(bytes)), 'the writer masks as the reader expects');
});

test('steps, tags and values read back by the independent reader; the file is readable while it is written', () => {
  const dir = path.join(tmp, 'values');
  const tb = TensorBoardWriter.open(dir);
  assert.deepEqual(eventFiles(dir), [], 'no file before the first step');
  tb.scalars(1, metricsOf(1), 1_700_000_000.25);
  assert.match(path.basename(tb.file!), /^events\.out\.tfevents\.1700000000\.[^/]+\.\d+$/);
  assert.equal(scalarsByStep(dir).size, 1, 'the first step is on disk before close');
  tb.scalars(2, { ...metricsOf(2), note: 'skipped' as unknown as number, nan: NaN }, 1_700_000_001.5);
  tb.close();

  const events = readEvents(tb.file!);
  assert.equal(events.length, 3);
  assert.equal(events[0].fileVersion, FILE_VERSION);
  assert.equal(events[0].wallTime, 1_700_000_000.25);
  assert.deepEqual(
    events.slice(1).map((e) => [e.step, e.wallTime]),
    [
      [1, 1_700_000_000.25],
      [2, 1_700_000_001.5],
    ],
  );
  const [s1, s2] = [events[1], events[2]];
  assert.deepEqual(
    s1.values.map((v) => v.tag),
    Object.keys(metricsOf(1)),
  );
  for (const v of s1.values) assert.equal(v.simpleValue, Math.fround(metricsOf(1)[v.tag as keyof ReturnType<typeof metricsOf>]), v.tag);
  assert.deepEqual(
    s2.values.map((v) => v.tag),
    [...Object.keys(metricsOf(2)), 'nan'],
    'non-numbers are skipped',
  );
  assert.ok(Number.isNaN(s2.values.at(-1)!.simpleValue));
  // The writer's own reader agrees.
  const own = readEventFile(tb.file!);
  assert.equal(own.tornTail, false);
  assert.deepEqual(own.events[1].scalars, Object.fromEntries(s1.values.map((v) => [v.tag, v.simpleValue])));
});

test('every flipped byte of an event file is detected, by the independent reader and by the writer on resume', () => {
  const dir = path.join(tmp, 'flip');
  const tb = TensorBoardWriter.open(dir);
  tb.scalars(1, { 'critic/score/mean': 0.5 }, 1_700_000_000);
  tb.scalars(2, { 'critic/score/mean': 0.75 }, 1_700_000_001);
  tb.close();
  const good = fs.readFileSync(tb.file!);
  assert.equal(records(good).length, 3);
  for (let i = 0; i < good.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const bad = Buffer.from(good);
      bad[i] ^= bit;
      assert.throws(() => records(bad), /mismatch|short|implausible/, `byte ${i} bit ${bit}`);
      fs.writeFileSync(tb.file!, bad);
      assert.throws(() => readEventFile(tb.file!), /record at byte \d+: .*(checksum|not a TensorBoard Event)/, `byte ${i} bit ${bit}: the writer's reader`);
    }
  }
  fs.writeFileSync(tb.file!, good);
  assert.throws(
    () => {
      const bad = Buffer.from(good);
      bad[20] ^= 1;
      fs.writeFileSync(tb.file!, bad);
      rewindEventFiles(dir, 1);
    },
    new RegExp(`${path.basename(tb.file!).replace(/\./g, '\\.')}: record at byte 0: the checksum of its \\d+ data bytes does not match`),
  );
});

test('a resumed run rewinds to its checkpoint (dropping a record cut by a kill) and appends: every step once, the latest values', () => {
  const dir = path.join(tmp, 'resume');
  // Launch 1 writes steps 1..5 and is killed in the middle of step 6's record.
  const first = TensorBoardWriter.open(dir);
  for (let s = 1; s <= 5; s++) first.scalars(s, metricsOf(s), 1_700_000_000 + s);
  first.close();
  const whole = fs.readFileSync(first.file!);
  const dir2 = path.join(tmp, 'resume-scratch');
  const sixth = TensorBoardWriter.open(dir2);
  sixth.scalars(6, metricsOf(6));
  sixth.close();
  const sixthRecord = fs.readFileSync(sixth.file!).subarray(records(fs.readFileSync(sixth.file!))[0].length + 16);
  fs.writeFileSync(first.file!, Buffer.concat([whole, sixthRecord.subarray(0, 20)]));
  assert.throws(() => records(fs.readFileSync(first.file!)), /short record/);
  assert.equal(readEventFile(first.file!).tornTail, true);
  // Leftover of a rewind killed mid-write: swept.
  fs.writeFileSync(path.join(dir, 'rewind.tmp-1-abcdef12'), 'partial');

  // Launch 2 resumes from the checkpoint of step 3 and writes 4..7 with other values.
  const notes: string[] = [];
  const second = TensorBoardWriter.open(dir, { rewindTo: 3, onNote: (n) => notes.push(n) });
  assert.equal(notes.length, 1);
  assert.match(notes[0], /rewound to step 3 \(2 step\(s\) after it dropped, and a record cut short\)/);
  assert.deepEqual(
    fs.readdirSync(dir).filter((n) => n.includes('.tmp-')),
    [],
  );
  for (let s = 4; s <= 7; s++) second.scalars(s, { ...metricsOf(s), 'critic/score/mean': 1 + s }, 1_700_000_100 + s);
  second.close();
  assert.equal(eventFiles(dir).length, 2);
  const all = scalarsByStep(dir);
  assert.deepEqual([...all.keys()], [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(all.get(2)!['critic/score/mean'], Math.fround(0.2));
  assert.equal(all.get(5)!['critic/score/mean'], 6, "the resumed launch's value");

  // A restart from step 0 (killed before the first checkpoint): files without a step left are removed.
  const notes0: string[] = [];
  rewindEventFiles(dir, 0).forEach((n) => notes0.push(n));
  assert.equal(notes0.length, 2);
  assert.deepEqual(eventFiles(dir), []);
});
