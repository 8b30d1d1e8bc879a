/**
 * `papo data ...`: look at and check the data before training.
 *
 *   papo data preview --task digits --family sum --split train --n 16 --seed 0 --out sum.png
 *   papo data sheets --out-dir sheets/          (one sheet per family of digits and scenes)
 *   papo data stats --task scenes --split test
 *   papo data check-manifest data/train.jsonl --height 28 --width 56
 *   papo data export --format parquet --out data/digits --task digits --split train test
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { createTask, taskFactories, type TaskConfig } from '../tasks/registry.ts';
import { selectFamilies } from '../tasks/config-checks.ts';
import { sampleRecords, splitStats, type SplitStats } from '../tasks/inspect.ts';
import { checkSplit, type Split, type Task } from '../tasks/types.ts';
import { exportDataset, type ExportFormat } from '../tasks/loader/dataset-export.ts';
import { writeContactSheet } from '../tasks/preview/contact-sheet.ts';
import { loadManifest } from '../tasks/loader/manifest.ts';
import { intOption } from './config-file.ts';
import { addManifestFileFlags, manifestFileOptions, type ManifestFileFlags } from './manifest-flags.ts';
import { addDatasetFlags, datasetOptions, type DatasetFlags } from './dataset-flags.ts';
import { loadDataset } from '../tasks/loader/dataset.ts';

interface TaskFlags extends ManifestFileFlags, DatasetFlags {
  task?: string;
  family?: string[];
  seed: number;
  digits?: number;
  height?: number;
  width?: number;
  manifest?: string;
  split: string;
}

function taskOptions(cmd: Command, oneSplit = true): Command {
  if (oneSplit) cmd.option('--split <split>', 'train, validation or test', 'train');
  return addDatasetFlags(addManifestFileFlags(cmd))
    .option(
      '--task <name>',
      `task: ${taskFactories.names().join(', ')}, or one registered by an --import module (default digits; manifest when --manifest is given)`,
    )
    .option('--family <name...>', 'only these families (default all)')
    .option('--seed <n>', 'task and order seed', intOption('--seed'), 0)
    .option('--digits <n>', 'digits task: digits per canvas (2-4)', intOption('--digits'))
    .option('--height <px>', 'scenes/manifest image height', intOption('--height'))
    .option('--width <px>', 'scenes/manifest image width', intOption('--width'))
    .option('--manifest <file>', 'manifest task: the JSONL manifest');
}

function buildTask(f: TaskFlags): Task {
  const name = f.task ?? (f.manifest !== undefined ? 'manifest' : f.trainFiles !== undefined ? 'dataset' : 'digits');
  const c: TaskConfig = {
    task: name,
    seed: f.seed,
    digits: f.digits,
    height: f.height,
    width: f.width,
    manifest: f.manifest,
    ...datasetOptions(f),
    ...manifestFileOptions(f),
  };
  // Family filtering happens when sampling, so family names are validated against the whole task.
  const task = createTask(c);
  selectFamilies(task.name, task.families, f.family);
  return task;
}

export function registerDataCommands(program: Command): Command {
  const data = program.command('data').description('inspect tasks and datasets: contact sheets, statistics, manifest checks');

  taskOptions(data.command('preview').description('write a PNG contact sheet of N records with their questions and answers'))
    .option('--n <n>', 'records', intOption('--n'), 16)
    .option('--scale <k>', 'image upscale factor', intOption('--scale'), 4)
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
    .option('--n <n>', 'records per sheet', intOption('--n'), 12)
    .option('--seed <n>', 'seed', intOption('--seed'), 0)
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
    .option('--n <n>', 'records to scan (default: the whole split, at most 5000)', intOption('--n'))
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
    .option('--height <px>', 'image height', intOption('--height'), 28)
    .option('--width <px>', 'image width', intOption('--width'), 56)
    .option('--require-demonstrations', 'also exit 1 when a record has no demonstration (papo sft needs one per record)', false)
    .action((file: string, f: ManifestFileFlags & { height: number; width: number; requireDemonstrations: boolean }) => {
      const m = loadManifest(file, { height: f.height, width: f.width, onError: 'skip', ...manifestFileOptions(f) });
      for (const i of m.issues) console.log(`${i.file}:${i.line}: ${i.reason}`);
      console.log(`${m.lines} lines, ${m.records.length} records loaded, ${m.skipped} skipped`);
      const noDemo = m.records.filter((r) => r.demonstration === undefined);
      if (noDemo.length) {
        const at =
          noDemo
            .slice(0, 5)
            .map((r) => r.line)
            .join(', ') + (noDemo.length > 5 ? ', ...' : '');
        console.log(
          `${noDemo.length} of ${m.records.length} records have no demonstration (lines ${at}): papo sft needs one per record; papo train and eval do not`,
        );
      }
      if (m.records.length === 0) console.log(m.lines === 0 ? `no records: ${m.path} is empty` : `no records: every line of ${m.path} has a problem`);
      if (m.issues.length || m.records.length === 0 || (f.requireDemonstrations && noDemo.length)) process.exitCode = 1;
    });
  addDatasetFlags(addManifestFileFlags(data.command('check-dataset')))
    .description('load dataset files (--train-files, --val-files), report every problem with its file and row; exit 1 if any, or if there are no records')
    .option('--height <px>', 'image height', intOption('--height'), 28)
    .option('--width <px>', 'image width', intOption('--width'), 56)
    .action((f: DatasetFlags & ManifestFileFlags & { height: number; width: number }) => {
      if (!f.trainFiles) throw new Error('check-dataset needs --train-files');
      const d = loadDataset({ height: f.height, width: f.width, onError: 'skip', trainFiles: f.trainFiles, ...datasetOptions(f), ...manifestFileOptions(f) });
      for (const i of d.issues) console.log(`${i.file}: row ${i.row}: ${i.reason}`);
      const noDemo = d.records.filter((r) => r.demonstration === undefined).length;
      console.log(
        `${d.rows} rows, ${d.records.length} records loaded, ${d.skipped} skipped, ${d.filtered} filtered as longer than max_prompt_length` +
          (noDemo ? `; ${noDemo} records have no demonstration (papo sft needs one per record)` : ''),
      );
      if (d.issues.length || d.records.length === 0) process.exitCode = 1;
    });

  taskOptions(
    data.command('export').description('write a task as a dataset EasyR1 reads: <out>/<split>.parquet (PNG bytes embedded) or .jsonl (+ PNG files)'),
    false,
  )
    .requiredOption('--out <dir>', 'folder to write')
    .option('--format <format>', 'parquet or jsonl', 'parquet')
    .option('--split <split...>', 'splits to write', ['train', 'validation', 'test'])
    .option('--limit <n>', 'at most n records per split (default: the whole split)', intOption('--limit'))
    .action((f: Omit<TaskFlags, 'split'> & { out: string; format: string; split: string[]; limit?: number }) => {
      if (f.format !== 'parquet' && f.format !== 'jsonl') throw new Error(`--format must be parquet or jsonl, got ${JSON.stringify(f.format)}`);
      const splits: Split[] = f.split.map(checkSplit);
      const task = buildTask({ ...f, split: 'train' });
      for (const w of exportDataset(task, { format: f.format as ExportFormat, out: f.out, splits, limit: f.limit })) {
        console.log(`wrote ${w.file}: ${w.records} ${task.name} records (${w.split})`);
      }
    });
  return data;
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
