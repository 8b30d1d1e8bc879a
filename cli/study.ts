/** `papo study STUDY.yaml`: arms x seeds of papo train runs, evaluated alike and compared (pipelines/study*.ts). */
import * as path from 'node:path';
import type { Command } from 'commander';
import { intAtLeastOption, readConfigFile } from './config-file.ts';

interface StudyFlags {
  out?: string;
  jobs: number;
  analyze?: boolean;
  dryRun?: boolean;
  png: boolean;
  publish?: string;
}

export function registerStudyCommand(program: Command): void {
  program
    .command('study')
    .description(
      'train every arm x seed of a study file from the same weights (each a normal run directory), evaluate each the same way (greedy, avg@k, error classes) and compare the arms: paired differences, bootstrap intervals, IQM, probability of improvement, Holm correction; writes study.json and a report',
    )
    .argument('<study_file>', 'YAML/JSON study: arms (preset + overrides), seeds, compare, eval, stats (see the README, "Studies")')
    .option('--out <dir>', 'the study directory (default runs/study-<study file name>)')
    .option('--jobs <n>', 'runs at once, each a papo train process (results do not depend on it)', intAtLeastOption('--jobs', 1), 1)
    .option('--analyze', 'train nothing: analyse the results already in the study directory')
    .option('--dry-run', 'print the runs and their commands, train nothing')
    .option('--no-png', 'write the report page only')
    .option(
      '--publish <dir>',
      "also copy what the figures are made from (study file, study.json, report, results, runs' config.json and metrics.jsonl; no checkpoints) to dir",
    )
    .action(async (file: string, flags: StudyFlags, cmd: Command) => {
      const [{ parseStudy, studyImports }, study, { importUserModule }] = await Promise.all([
        import('../pipelines/study-config.ts'),
        import('../pipelines/study.ts'),
        import('../util/user-module.ts'),
      ]);
      const doc = readConfigFile(file);
      // the study's modules register names its arms use: load them here too, before the arms are checked
      const own = Array.isArray(doc.import) && doc.import.every((m) => typeof m === 'string') ? studyImports(doc.import as string[], file) : [];
      for (const m of own) await importUserModule(m, process.cwd(), `${file}: import`);
      const s = parseStudy(doc, file);
      // modules given to papo itself (papo --import x study ...) go to every run as well
      const given = (cmd.parent?.opts<{ import?: string[] }>().import ?? []).map((m) => path.resolve(m));
      s.config.import = [...given.filter((m) => !s.config.import.includes(m)), ...s.config.import];
      const out = flags.out ?? path.join('runs', `study-${path.basename(file).replace(/\.(ya?ml|json)$/i, '')}`);
      if (flags.dryRun) {
        for (const r of study.studyRuns(s, out)) process.stdout.write(`${r.arm.name} seed ${r.seed}: papo ${study.trainArgs(r).join(' ')}\n`);
        return;
      }
      let interrupted = false;
      let fingerprint: string | undefined;
      if (!flags.analyze) {
        const ac = new AbortController();
        let signals = 0;
        const onSignal = (sig: NodeJS.Signals) => {
          signals++;
          if (signals === 1) process.stdout.write(`study: ${sig}: stopping the runs in flight (each writes a checkpoint); papo study ${file} continues them\n`);
          ac.abort();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          const r = await study.runStudy(s, out, { jobs: flags.jobs, signal: ac.signal });
          interrupted = r.interrupted;
          fingerprint = r.startFingerprint;
          const failed = r.failed.length ? `, ${r.failed.length} failed (${r.failed.map((f) => `${f.arm} seed ${f.seed}`).join(', ')})` : '';
          process.stdout.write(`study: ${r.done} runs done, ${r.skipped} were done already${failed}${interrupted ? ', interrupted' : ''}\n`);
          if (r.failed.length) process.exitCode = 3;
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }
      const { analyzeStudy, formatStudy } = await import('../pipelines/study-analysis.ts');
      const { writeStudyReport } = await import('../pipelines/study-report.ts');
      // runs made where the starting weights lay elsewhere (a moved package) count when their weights are the same
      const analysis = analyzeStudy(s, out, { startFingerprint: fingerprint ?? (await study.startFingerprint(s).catch(() => undefined)) });
      process.stdout.write(`${formatStudy(analysis)}\n`);
      const rep = await writeStudyReport(s, out, analysis, { png: flags.png });
      process.stdout.write(`study: ${rep.json}, ${rep.html}${rep.pngs.length ? ` and ${rep.pngs.length} PNG charts` : ''}\n`);
      if (flags.publish) {
        const copied = study.publishStudy(s, out, file, flags.publish);
        process.stdout.write(
          `study: published ${copied.length} files to ${flags.publish} (papo study ${path.join(flags.publish, 'study.yaml')} --out ${flags.publish} --analyze remakes the figures)\n`,
        );
      }
      if (interrupted) {
        process.stdout.write(`study: interrupted; continue with: papo study ${file}${flags.out ? ` --out ${flags.out}` : ''}\n`);
        process.exitCode = 130;
      }
    });
}
