/**
 * A connection to NATS for the scale-out (trainer and rollout workers), with credentials taken from the
 * environment or a file, never from a URL or the command line: `PAPO_NATS_TOKEN`, or `PAPO_NATS_USER` and
 * `PAPO_NATS_PASSWORD`, or a `.creds` file (JWT and nkey seed), or an nkey seed file. A URL with a user or
 * password in it is refused. TLS: a CA file to trust the server by, and a client certificate and key when the
 * server asks for one (any of them turns TLS on). The client reconnects by itself, without limit (a restarted
 * server is waited for). A refused connection is an error that says which credentials were tried.
 */
import * as fs from 'node:fs';
import { connect, credsAuthenticator, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';

export interface NatsOptions {
  /** server URL(s), comma-separated (`nats://host:4222`) */
  url: string;
  /** a `.creds` file */
  credsFile?: string;
  /** a file holding an nkey seed (`SU...`) */
  nkeyFile?: string;
  /** TLS: the CA certificate(s) the server's certificate is checked against */
  tlsCaFile?: string;
  /** TLS: this client's certificate and its key (servers with `verify: true`) */
  tlsCertFile?: string;
  tlsKeyFile?: string;
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
  const readable = (file: string, what: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`NATS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const auth: Record<string, unknown> = {};
  let using = 'no credentials';
  if (opts.credsFile && opts.nkeyFile) throw new Error('NATS: give a creds file or an nkey seed file, not both');
  if (opts.credsFile) {
    auth.authenticator = credsAuthenticator(new Uint8Array(readable(opts.credsFile, 'creds file')));
    using = `creds file ${opts.credsFile}`;
  } else if (opts.nkeyFile) {
    const seed = readable(opts.nkeyFile, 'nkey seed file').toString('utf8').trim();
    if (!/^SU[A-Z2-7]{56}$/.test(seed)) throw new Error(`NATS nkey seed file ${opts.nkeyFile}: holds no user nkey seed (one line SU...)`);
    auth.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
    using = `nkey seed file ${opts.nkeyFile}`;
  } else if (env.PAPO_NATS_TOKEN) {
    auth.token = env.PAPO_NATS_TOKEN;
    using = 'the token of PAPO_NATS_TOKEN';
  } else if (env.PAPO_NATS_USER) {
    auth.user = env.PAPO_NATS_USER;
    auth.pass = env.PAPO_NATS_PASSWORD ?? '';
    using = `user ${env.PAPO_NATS_USER} (PAPO_NATS_USER / PAPO_NATS_PASSWORD)`;
  }
  if ((opts.tlsCertFile === undefined) !== (opts.tlsKeyFile === undefined)) throw new Error('NATS TLS: a client certificate and its key come together');
  const tlsFiles = { caFile: opts.tlsCaFile, certFile: opts.tlsCertFile, keyFile: opts.tlsKeyFile };
  for (const [k, f] of Object.entries(tlsFiles)) if (f !== undefined) readable(f, `TLS ${k.replace('File', '')} file`);
  const tls = Object.values(tlsFiles).some((f) => f !== undefined)
    ? Object.fromEntries(Object.entries(tlsFiles).filter(([, f]) => f !== undefined))
    : undefined;
  try {
    return await connect({ servers, name: opts.name, maxReconnectAttempts: -1, reconnectTimeWait: 500, ...(tls ? { tls } : {}), ...auth });
  } catch (err) {
    const why = (err as Error).message;
    const hint = /authoriz|authenticat/i.test(why) ? ` (connected with ${using}; the server refused them)` : tls ? '' : ' (without TLS)';
    throw new Error(`cannot connect to NATS at ${servers.join(', ')}: ${why}${hint}`);
  }
}
