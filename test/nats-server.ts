/**
 * A NATS server with JetStream of a test's own: `nats-server -js -sd <tmp> -a 127.0.0.1 -p <free port>`,
 * stopped with `stop()`, restarted on the same port and store directory with `restart()`. Without the server binary it throws, saying how to install it: a test that needs
 * NATS fails rather than passing silently.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before } from 'node:test';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../storage/nats-connection.ts';
import { openBroker, type RolloutBroker } from '../storage/rollout-broker.ts';

export interface TestNatsServer {
  url: string;
  port: number;
  /** the server process */
  pid?: number;
  stop(): Promise<void>;
  /** stops the server (SIGTERM) and starts it again on the same port and store directory (JetStream state kept) */
  restart(): Promise<void>;
}

function serverBinary(): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    const p = path.join(dir, 'nats-server');
    if (dir && fs.existsSync(p)) return p;
  }
  throw new Error(
    'this test needs the NATS server binary nats-server, which is not installed: apt install nats-server (Debian, Ubuntu), or see https://docs.nats.io/running-a-nats-service/introduction/installation',
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function accepting(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server did not accept connections on port ${port} within 5 s: ${log()}`);
}

export interface TestNatsServerOptions {
  /** the text of a server config file (authorization, tls, ...), given with `-c`; address, port and store stay the test's */
  config?: string;
}

export async function startNatsServer(opts: TestNatsServerOptions = {}): Promise<TestNatsServer> {
  const bin = serverBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-nats-'));
  const port = await freePort();
  const args = ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)];
  if (opts.config !== undefined) {
    fs.writeFileSync(path.join(dir, 'server.conf'), opts.config);
    args.push('-c', path.join(dir, 'server.conf'));
  }
  let stderr = '';
  const launch = () => {
    const c = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    c.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    return c;
  };
  let child = launch();
  // a test process that dies leaves no server behind
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  await accepting(port, child, () => stderr);
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid;
    },
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      child = launch();
      await accepting(port, child, () => stderr);
    },
  };
}

/**
 * For a test file: its own server, a connection and a broker (storage/rollout-broker.ts), made before its
 * tests and stopped after them; read the fields inside the tests.
 */
export function brokerForFile(): { nats: TestNatsServer; nc: NatsConnection; broker: RolloutBroker } {
  const f = {} as { nats: TestNatsServer; nc: NatsConnection; broker: RolloutBroker };
  before(async () => {
    f.nats = await startNatsServer();
    f.nc = await connectNats({ url: f.nats.url, env: {} });
    f.broker = await openBroker(f.nc);
  });
  after(async () => {
    await f.nc?.close();
    await f.nats?.stop();
  });
  return f;
}

/**
 * Deletes a consumer as an operator would, until it is gone. nats-server 2.9 may answer a delete with
 * "unlinkat ...: directory not empty" (10051) when the consumer writes its state while its directory is
 * removed; the consumer is then already out of the stream (the next try answers 10014, not found), or is
 * deleted by the next try.
 */
export async function deleteConsumer(jsm: JetStreamManager, stream: string, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await jsm.consumers.delete(stream, name);
      return;
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (attempt > 1 && code === 10014) return; // consumer not found: the earlier try removed it
      if (code !== 10051 || attempt >= 20) throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
