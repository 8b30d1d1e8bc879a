/**
 * `papo data ...`: look at and check the data before training.
 *
 *   papo data preview --task digits --family sum --split train --n 16 --seed 0 --out sum.png
 *   papo data sheets --out-dir sheets/          (one sheet per family of digits and scenes)
 *   papo data stats --task scenes --split test
 *   papo data check-manifest data/train.jsonl --height 28 --width 56
 */
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createTask, TASK_NAMES, type TaskConfig, type TaskName } from './registry.ts';
import { RecordStream } from './stream.ts';
import { checkSplit, type Split, type Task, type TaskRecord } from './types.ts';
import { writeContactSheet } from './preview/contact-sheet.ts';
import { loadManifest } from './loader/manifest.ts';
import { responseTokenCount } from './text.ts';
import { addManifestFileFlags, manifestFileOptions, type ManifestFileFlags } from './manifest-flags.ts';

const int = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be an integer`);
  return n;
};

interface TaskFlags extends ManifestFileFlags {
  task?: TaskName;
  family?: string[];
  seed: number;
  digits?: number;
  height?: number;
  width?: number;
  manifest?: string;
  split: string;
}

function taskOptions(cmd: Command): Command {
  return addManifestFileFlags(cmd)
    .addOption(new Option('--task <name>', 'task (default digits; manifest when --manifest is given)').choices([...TASK_NAMES]))
    .option('--family <name...>', 'only these families (default all)')
    .option('--split <split>', 'train, validation or test', 'train')
    .option('--seed <n>', 'task and order seed', int('seed'), 0)
    .option('--digits <n>', 'digits task: digits per canvas (2-4)', int('digits'))
    .option('--height <px>', 'scenes/manifest image height', int('height'))
    .option('--width <px>', 'scenes/manifest image width', int('width'))
    .option('--manifest <file>', 'manifest task: the JSONL manifest');
}

function buildTask(f: TaskFlags): Task {
  const name = f.task ?? (f.manifest !== undefined ? 'manifest' : 'digits');
  const c: TaskConfig = { task: name, seed: f.seed, digits: f.digits, height: f.height, width: f.width, manifest: f.manifest, ...manifestFileOptions(f) };
  // Family filtering happens when sampling, so family names are validated against the whole task.
  const task = createTask(c);
  for (const name of f.family ?? []) {
    if (!task.families.some((x) => x.name === name)) {
      throw new Error(`${task.name}: unknown family ${JSON.stringify(name)}; known: ${task.families.map((x) => x.name).join(', ')}`);
    }
  }
  return task;
}

/** Up to n records of the chosen families, in the split's seeded epoch order. */
export function sampleRecords(task: Task, split: Split, n: number, seed: number, families?: readonly string[]): TaskRecord[] {
  const stream = RecordStream.open(task, { split, seed, shuffle: true, epochs: 1 });
  const out: TaskRecord[] = [];
  for (const r of stream) {
    if (!families?.length || families.includes(r.family)) out.push(r);
    if (out.length >= n) break;
  }
  return out;
}

export function registerDataCommands(program: Command): Command {
  const data = program.command('data').description('inspect tasks and datasets: contact sheets, statistics, manifest checks');

  taskOptions(data.command('preview').description('write a PNG contact sheet of N records with their questions and answers'))
    .option('--n <n>', 'records', int('n'), 16)
    .option('--scale <k>', 'image upscale factor', int('scale'), 4)
    .option('--reasoning', 'also print the demonstration reasoning', false)
    .requiredOption('--out <file>', 'PNG file to write')
    .action((f: TaskFlags & { n: number; scale: number; reasoning: boolean; out: string }) => {
      const task = buildTask(f);
      const records = sampleRecords(task, checkSplit(f.split), f.n, f.seed, f.family);
      if (!records.length) throw new Error(`no records of ${f.family?.join(', ') ?? 'any family'} in split ${f.split}`);
      writeContactSheet(f.out, records, { scale: f.scale, showReasoning: f.reasoning });
      console.log(`wrote ${f.out}: ${records.length} ${task.name} records (${f.split}), ${task.imageHeight}x${task.imageWidth} images`);
    });

  data
    .command('sheets')
    .description('write one contact sheet per family of the digits and scenes tasks')
    .requiredOption('--out-dir <dir>', 'folder for the PNG files')
    .option('--split <split>', 'train, validation or test', 'train')
    .option('--n <n>', 'records per sheet', int('n'), 12)
    .option('--seed <n>', 'seed', int('seed'), 0)
    .action((f: { outDir: string; split: string; n: number; seed: number }) => {
      for (const name of ['digits', 'scenes'] as const) {
        const task = createTask({ task: name, seed: f.seed });
        for (const fam of task.families) {
          const out = join(f.outDir, `${name}-${fam.name}.png`);
          writeContactSheet(out, sampleRecords(task, checkSplit(f.split), f.n, f.seed, [fam.name]), { showReasoning: true });
          console.log(`wrote ${out}`);
        }
      }
    });

  taskOptions(data.command('stats').description('family mix, answer distribution, text lengths and generation speed of a split'))
    .option('--n <n>', 'records to scan (default: the whole split, at most 5000)', int('n'))
    .option('--json', 'print JSON', false)
    .action((f: TaskFlags & { n?: number; json: boolean }) => {
      const task = buildTask(f);
      const split = checkSplit(f.split);
      const n = Math.min(f.n ?? 5000, task.size(split));
      const stats = splitStats(task, split, n, f.family);
      if (f.json) console.log(JSON.stringify(stats, null, 2));
      else printStats(stats);
    });

  addManifestFileFlags(data.command('check-manifest <file>'))
    .description('load a JSONL manifest, report every problem with its line number; exit 1 if any, or if it has no records')
    .option('--height <px>', 'image height', int('height'), 28)
    .option('--width <px>', 'image width', int('width'), 56)
    .option('--require-demonstrations', 'also exit 1 when a record has no demonstration (papo sft needs one per record)', false)
    .action((file: string, f: ManifestFileFlags & { height: number; width: number; requireDemonstrations: boolean }) => {
      const m = loadManifest(file, { height: f.height, width: f.width, onError: 'skip', ...manifestFileOptions(f) });
      for (const i of m.issues) console.log(`${i.file}:${i.line}: ${i.reason}`);
      console.log(`${m.lines} lines, ${m.records.length} records loaded, ${m.skipped} skipped`);
      const noDemo = m.records.filter((r) => r.demonstration === undefined);
      if (noDemo.length) {
        const at = noDemo.slice(0, 5).map((r) => r.line).join(', ') + (noDemo.length > 5 ? ', ...' : '');
        console.log(`${noDemo.length} of ${m.records.length} records have no demonstration (lines ${at}): papo sft needs one per record; papo train and eval do not`);
      }
      if (m.records.length === 0) console.log(m.lines === 0 ? `no records: ${m.path} is empty` : `no records: every line of ${m.path} has a problem`);
      if (m.issues.length || m.records.length === 0 || (f.requireDemonstrations && noDemo.length)) process.exitCode = 1;
    });
  return data;
}

export interface SplitStats {
  task: string;
  split: Split;
  size: number;
  scanned: number;
  image: string;
  msPerRecord: number;
  families: Record<string, { count: number; visionDependency: string; answers: Record<string, number>; maxQuestion: number; maxResponseTokens: number }>;
}

export function splitStats(task: Task, split: Split, n: number, families?: readonly string[]): SplitStats {
  const t0 = performance.now();
  const fams: SplitStats['families'] = {};
  let scanned = 0;
  for (let i = 0; i < n; i++) {
    const r = task.recordAt(split, i);
    scanned++;
    if (families?.length && !families.includes(r.family)) continue;
    const s = (fams[r.family] ??= { count: 0, visionDependency: r.visionDependency, answers: {}, maxQuestion: 0, maxResponseTokens: 0 });
    s.count++;
    s.answers[r.answer] = (s.answers[r.answer] ?? 0) + 1;
    s.maxQuestion = Math.max(s.maxQuestion, r.question.length);
    if (r.demonstration) s.maxResponseTokens = Math.max(s.maxResponseTokens, responseTokenCount(r.demonstration) + 1);
  }
  return {
    task: task.name,
    split,
    size: task.size(split),
    scanned,
    image: `${task.imageHeight}x${task.imageWidth}`,
    msPerRecord: (performance.now() - t0) / Math.max(1, scanned),
    families: fams,
  };
}

function printStats(s: SplitStats): void {
  console.log(`${s.task} ${s.split}: ${s.size} records per epoch, ${s.image} images, scanned ${s.scanned} (${s.msPerRecord.toFixed(3)} ms/record)`);
  for (const [name, f] of Object.entries(s.families)) {
    const top = Object.entries(f.answers)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([a, c]) => `${a}:${((100 * c) / f.count).toFixed(0)}%`)
      .join(' ');
    console.log(
      `  ${name.padEnd(13)} ${f.visionDependency.padEnd(4)} n=${String(f.count).padEnd(5)} ` +
        `max question ${f.maxQuestion} chars, max response ${f.maxResponseTokens} tokens; answers ${top}`,
    );
  }
}
