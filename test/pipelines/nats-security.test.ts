/**
 * The scale-out over a NATS server that asks for TLS with client certificates and for credentials (an nkey
 * user and a user / password): a worker (nkey seed file) and a trainer (user / password from the environment)
 * connect and run; wrong or missing credentials and certificates are clear errors. A worker whose reward of
 * the job's name has other code (another module content hash) refuses the job, and the run stops saying so.
 * The CA and the server and client certificates are made here with openssl. The run's step carries the
 * `dist/` figures of its shards, and its progress line the worker count.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nkeys } from '@nats-io/transport-node';
import { initTf } from '../../util/tf-backend.ts';
import { importExtension } from '../../util/user-module.ts';
import { runTrain } from '../../pipelines/train.ts';
import { runRolloutWorker } from '../../pipelines/rollout-worker.ts';
import { rewardIdentity } from '../../pipelines/reward-function.ts';
import { progressFields } from '../../pipelines/train-records.ts';
import { connectNats } from '../../storage/nats-connection.ts';
import { registerReward } from '../../tasks/rewards/registry.ts';
import { defineReward } from '../../tasks/rewards/types.ts';
import type { TrainConfigInput } from '../../pipelines/train-config.ts';
import { startNatsServer, type TestNatsServer } from '../nats-server.ts';
import { tinyPolicyInTmp } from './tiny-run.ts';

await initTf();

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let tmp: string;
let weights: string;
let nats: TestNatsServer;
const files: Record<string, string> = {};
const nkey = nkeys.createUser();

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate signed by the test CA; `ext` its extensions (subjectAltName). */
function signed(name: string, ext: string): void {
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  fs.writeFileSync(path.join(tmp, `${name}.ext`), `${ext}\n`);
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
  ]);
  files[`${name}Cert`] = path.join(tmp, `${name}.pem`);
  files[`${name}Key`] = path.join(tmp, `${name}.key`);
}

before(async () => {
  ({ tmp, weights } = await tinyPolicyInTmp('papo-nats-security-'));
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=papo test CA']);
  files.ca = path.join(tmp, 'ca.pem');
  signed('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
  signed('client', 'extendedKeyUsage=clientAuth');
  files.seed = path.join(tmp, 'worker.nk');
  fs.writeFileSync(files.seed, `${new TextDecoder().decode(nkey.getSeed())}\n`, { mode: 0o600 });
  // the same reward name with two different module contents: the trainer's and a worker's
  const registry = path.join(ROOT, 'tasks/rewards/registry.ts');
  const types = path.join(ROOT, 'tasks/rewards/types.ts');
  for (const [file, score] of [
    ['reward-a.mts', 1],
    ['reward-b.mts', 0],
  ] as const)
    fs.writeFileSync(
      path.join(tmp, file),
      `import { registerReward } from ${JSON.stringify(registry)};\nimport { defineReward } from ${JSON.stringify(types)};\n` +
        `registerReward('same-name', defineReward('same-name', () => ({ overall: ${score}, accuracy: ${score}, format: 0 })));\n`,
    );
  nats = await startNatsServer({
    config: [
      'tls {',
      `  cert_file: ${JSON.stringify(files.serverCert)}`,
      `  key_file: ${JSON.stringify(files.serverKey)}`,
      `  ca_file: ${JSON.stringify(files.ca)}`,
      '  verify: true',
      '  timeout: 5',
      '}',
      'authorization {',
      '  users = [',
      `    { nkey: ${nkey.getPublicKey()} }`,
      '    { user: trainer, password: "s3cret-pw" }',
      '  ]',
      '}',
      '',
    ].join('\n'),
  });
});
after(async () => {
  await nats?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const tlsOf = () => ({ tlsCaFile: files.ca, tlsCertFile: files.clientCert, tlsKeyFile: files.clientKey });
const trainerEnv = { PAPO_NATS_USER: 'trainer', PAPO_NATS_PASSWORD: 's3cret-pw' };

function config(run: string, score = 'composite'): TrainConfigInput {
  return {
    data: { task: 'digits', families: ['max', 'count'], rollout_batch_size: 4, max_response_length: 6, seed: 5 },
    algorithm: { preset: 'papo_g' },
    worker: {
      actor: { model: { model_path: weights }, global_batch_size: 2, optim: { lr: 5e-3 } },
      rollout: {
        n: 4,
        threads: 1,
        shard_size: 2,
        backend: 'nats',
        nats: { url: nats.url, result_timeout_s: 60, tls_ca_file: files.ca, tls_cert_file: files.clientCert, tls_key_file: files.clientKey },
      },
      reward: { score_function: score },
    },
    trainer: { max_steps: 1, max_staleness: 0, save_freq: 0, save_limit: 0, test_before_and_after: false, save_checkpoint_path: run },
  };
}

/** Runs `fn` with the trainer's user / password in the environment (where papo train reads them). */
async function asTrainer<T>(fn: () => Promise<T>): Promise<T> {
  Object.assign(process.env, trainerEnv);
  try {
    return await fn();
  } finally {
    delete process.env.PAPO_NATS_USER;
    delete process.env.PAPO_NATS_PASSWORD;
  }
}

test('a worker with an nkey seed file and a trainer with a user / password connect over TLS with client certificates and run', async () => {
  const stop = new AbortController();
  const worker = runRolloutWorker({
    url: nats.url,
    nkeyFile: files.seed,
    ...tlsOf(),
    threads: 1,
    workerName: 'tls-worker',
    signal: stop.signal,
    env: {},
  }).catch((err: Error) => err);
  let r: Awaited<ReturnType<typeof runTrain>>;
  try {
    r = await asTrainer(() => runTrain(config(path.join(tmp, 'run-ok')), { quiet: true, noSave: true }));
  } finally {
    stop.abort();
  }
  const w = await worker;
  assert.ok(!(w instanceof Error), String(w));
  assert.equal((w as { jobs: number }).jobs, 2);
  assert.equal(r.steps.length, 1);
  // the step's dist/ figures: one worker ran both shards, fetching version 0 once
  const m = r.steps[0].metrics;
  assert.deepEqual([m['dist/workers'], m['dist/shards'], m['dist/shards_redelivered']], [1, 2, 0]);
  for (const k of [
    'dist/queue_wait_s',
    'dist/result_wait_s',
    'dist/worker_busy_s',
    'dist/weight_fetch_s',
    'dist/weight_fetch_mb_per_s',
    'dist/weight_put_s',
    'dist/weight_put_mb_per_s',
  ])
    assert.ok(Number.isFinite(m[k]) && m[k] >= 0, `${k} = ${m[k]}`);
  assert.ok(m['dist/weight_fetch_s'] > 0 && m['dist/worker_busy_s'] > m['dist/weight_fetch_s'], 'the weights were fetched within the first job');
  // the progress line shows the worker count, only for rollouts on workers
  assert.equal(progressFields(m).workers, '1');
  assert.equal(progressFields({ 'critic/score/mean': 0.5 }).workers, undefined);
});

test('wrong or missing credentials and certificates are errors that say what was tried', async () => {
  const tls = tlsOf();
  await assert.rejects(
    connectNats({ url: nats.url, ...tls, env: { PAPO_NATS_USER: 'trainer', PAPO_NATS_PASSWORD: 'wrong' } }),
    /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*(Authorization|authoriz).*\(connected with user trainer \(PAPO_NATS_USER \/ PAPO_NATS_PASSWORD\); the server refused them\)/i,
  );
  const stranger = path.join(tmp, 'stranger.nk');
  fs.writeFileSync(stranger, new TextDecoder().decode(nkeys.createUser().getSeed()));
  await assert.rejects(
    connectNats({ url: nats.url, ...tls, nkeyFile: stranger, env: {} }),
    new RegExp(`connected with nkey seed file ${stranger}; the server refused them`),
  );
  await assert.rejects(connectNats({ url: nats.url, ...tls, env: {} }), /cannot connect to NATS .*connected with no credentials/);
  await assert.rejects(connectNats({ url: nats.url, env: trainerEnv }), /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*\(without TLS\)/);
  await assert.rejects(connectNats({ url: nats.url, nkeyFile: files.ca, env: {} }), /nkey seed file .*ca\.pem: holds no user nkey seed/);
  await assert.rejects(connectNats({ url: nats.url, tlsCertFile: files.clientCert, env: {} }), /a client certificate and its key come together/);
  await assert.rejects(connectNats({ url: nats.url, tlsCaFile: path.join(tmp, 'nope.pem'), env: {} }), /NATS TLS ca file .*nope\.pem: ENOENT/);
  const conf = config(path.join(tmp, 'run-bad-pw'));
  await assert.rejects(
    runTrain(conf, { quiet: true, noSave: true }),
    /cannot connect to NATS .*connected with no credentials; the server refused them/,
    'papo train with no credentials in its environment',
  );
});

test("a worker whose reward of the job's name has another module hash refuses the job; the run stops naming both hashes, the worker and the job", async () => {
  await importExtension(path.join(tmp, 'reward-a.mts'), tmp);
  const want = rewardIdentity('same-name');
  const sha = (f: string) => execFileSync('sha256sum', [path.join(tmp, f)], { encoding: 'utf8' }).split(' ')[0];
  assert.equal(want, `sha256:${sha('reward-a.mts')}`);
  assert.equal(rewardIdentity('composite'), 'builtin:composite');
  registerReward(
    'registered-in-code',
    defineReward('registered-in-code', () => ({ overall: 0, accuracy: 0, format: 0 })),
  );
  assert.equal(rewardIdentity('registered-in-code'), 'code:registered-in-code');
  assert.equal(rewardIdentity(`${path.join(tmp, 'reward-b.mts')}:default`), `sha256:${sha('reward-b.mts')}`, 'a reward file is named by its hash');
  // a worker started as a user starts it: papo --import reward-b.mts worker --nkey ... --tls-ca ... --tls-cert ... --tls-key ...
  let stderr = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/papo.js'),
      '--import',
      path.join(tmp, 'reward-b.mts'),
      'worker',
      '--nats',
      nats.url,
      '--nkey',
      files.seed,
      '--tls-ca',
      files.ca,
      '--tls-cert',
      files.clientCert,
      '--tls-key',
      files.clientKey,
      '--threads',
      '1',
      '--name',
      'cli-worker',
    ],
    { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PAPO_NATS_USER: '', PAPO_NATS_TOKEN: '' } },
  );
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const got = `sha256:${sha('reward-b.mts')}`;
    await assert.rejects(
      asTrainer(() => runTrain(config(path.join(tmp, 'run-reward'), 'same-name'), { quiet: true, noSave: true })),
      (err: Error) => {
        assert.match(err.message, /the result of job r[0-9a-f]+\.1\.1\.\d \(launch [0-9a-f]+\) from worker cli-worker: the worker could not run it: /, stderr);
        assert.ok(
          err.message.includes(`reward 'same-name' of this worker (cli-worker) is ${got}, the job `) && err.message.includes(`asks for ${want}`),
          `${err.message}\n${stderr}`,
        );
        return true;
      },
    );
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  assert.match(stderr, /papo worker cli-worker: waiting for shard jobs/);
});
