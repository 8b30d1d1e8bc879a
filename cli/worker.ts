/**
 * `papo worker`: a rollout worker of `papo train worker.rollout.backend=nats` (pipelines/rollout-worker.ts).
 * Credentials come from the environment (PAPO_NATS_TOKEN, PAPO_NATS_USER / PAPO_NATS_PASSWORD), a `--creds`
 * file or an `--nkey` seed file, never from the command line; `--tls-ca`, `--tls-cert` and `--tls-key` turn TLS on.
 */
import type { Command } from 'commander';
import { intAtLeastOption } from './config-file.ts';

interface WorkerFlags {
  nats: string;
  creds?: string;
  nkey?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  threads?: number;
  name?: string;
  progress: number;
  retryTimeout: number;
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'a rollout worker for papo train worker.rollout.backend=nats: runs shard jobs (sampling, reward, masked-view and reference log-probs) until stopped; rewards of your own need the module that registers them (papo --import ext.ts worker ...)',
    )
    .option(
      '--nats <url>',
      'NATS server(s), comma-separated (credentials: PAPO_NATS_TOKEN or PAPO_NATS_USER / PAPO_NATS_PASSWORD, or --creds)',
      'nats://127.0.0.1:4222',
    )
    .option('--creds <file>', 'a NATS credentials file (.creds)')
    .option('--nkey <file>', 'a file holding the NATS nkey seed (SU...) to connect with')
    .option('--tls-ca <file>', 'TLS: the CA certificate the server is checked against')
    .option('--tls-cert <file>', "TLS: this worker's client certificate (with --tls-key)")
    .option('--tls-key <file>', "TLS: the client certificate's key")
    .option(
      '--threads <n>',
      "onnxruntime intra-op threads of the engine (default: the trainer's worker.rollout.threads, which keeps the run bit for bit)",
      intAtLeastOption('--threads', 1),
    )
    .option('--name <name>', "this worker's name in results and errors (default <host>-<pid>)")
    .option(
      '--retry-timeout <seconds>',
      'seconds a NATS call keeps retrying a server that does not answer before the worker stops (0: no bound)',
      intAtLeastOption('--retry-timeout', 0),
      600,
    )
    .option('--progress <seconds>', 'seconds between progress lines while jobs come in (0: none)', intAtLeastOption('--progress', 0), 30)
    .action(async (f: WorkerFlags) => {
      const { runRolloutWorker } = await import('../pipelines/rollout-worker.ts');
      const stop = new AbortController();
      let signals = 0;
      const onSignal = () => {
        signals++;
        if (signals > 1) process.exit(130);
        process.stderr.write('papo worker: stopping after the job in hand (again to stop now)\n');
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const { jobs } = await runRolloutWorker({
        url: f.nats,
        credsFile: f.creds,
        nkeyFile: f.nkey,
        tlsCaFile: f.tlsCa,
        tlsCertFile: f.tlsCert,
        tlsKeyFile: f.tlsKey,
        threads: f.threads,
        workerName: f.name,
        progressEveryS: f.progress,
        retryTimeoutS: f.retryTimeout,
        signal: stop.signal,
        say: (line) => process.stderr.write(`${line}\n`),
      });
      process.stderr.write(`papo worker: stopped after ${jobs} job(s)\n`);
      if (signals) process.exitCode = 130;
    });
}
