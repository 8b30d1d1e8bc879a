/**
 * A connection to NATS for the scale-out (trainer and rollout workers), with credentials taken from the
 * environment or a file, never from a URL or the command line: `PAPO_NATS_TOKEN`, or `PAPO_NATS_USER` and
 * `PAPO_NATS_PASSWORD`, or a `.creds` file (JWT and nkey seed). A URL with a user or password in it is refused.
 * The client reconnects by itself, without limit (a restarted server is waited for).
 */
import * as fs from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';

export interface NatsOptions {
  /** server URL(s), comma-separated (`nats://host:4222`) */
  url: string;
  /** a `.creds` file */
  credsFile?: string;
  /** the connection's name in the server's monitoring */
  name?: string;
  /** the environment to read credentials from (default process.env) */
  env?: NodeJS.ProcessEnv;
}

export async function connectNats(opts: NatsOptions): Promise<NatsConnection> {
  const servers = opts.url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (servers.length === 0) throw new Error('NATS url is empty');
  for (const s of servers) {
    let u: URL | undefined;
    try {
      u = new URL(s.includes('://') ? s : `nats://${s}`);
    } catch {
      throw new Error(`NATS url ${JSON.stringify(s)} is not a URL (nats://host:4222)`);
    }
    if (u.username || u.password)
      throw new Error('NATS url: credentials do not go in the URL; set PAPO_NATS_TOKEN, PAPO_NATS_USER / PAPO_NATS_PASSWORD or a creds file');
  }
  const env = opts.env ?? process.env;
  const auth: Record<string, unknown> = {};
  if (opts.credsFile) {
    let creds: Buffer;
    try {
      creds = fs.readFileSync(opts.credsFile);
    } catch (err) {
      throw new Error(`NATS creds file ${opts.credsFile}: ${(err as Error).message}`);
    }
    auth.authenticator = credsAuthenticator(new Uint8Array(creds));
  } else if (env.PAPO_NATS_TOKEN) auth.token = env.PAPO_NATS_TOKEN;
  else if (env.PAPO_NATS_USER) {
    auth.user = env.PAPO_NATS_USER;
    auth.pass = env.PAPO_NATS_PASSWORD ?? '';
  }
  try {
    return await connect({ servers, name: opts.name, maxReconnectAttempts: -1, reconnectTimeWait: 500, ...auth });
  } catch (err) {
    throw new Error(`cannot connect to NATS at ${servers.join(', ')}: ${(err as Error).message}`);
  }
}
