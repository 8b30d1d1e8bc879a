/**
 * One writer per run directory: `papo train` and `papo sft` hold `<run>/.lock` from before their first
 * write (or sweep) until they end. Node has no portable OS-level exclusive lock without native code, so the
 * lock is a file created exclusively (`link()` of a complete temporary, which fails when the name exists;
 * `wx` where the file system has no hard links), holding JSON:
 *
 *   { "pid": 1234, "host": "gpu-3", "started": "2025-03-01T07:12:03.000Z", "command": "papo train",
 *     "args": ["train", "--resume", "runs/train"], "token": "<random>", "proc_start": "<ticks>" }
 *
 * Rules:
 *   - a second writer is refused at once, naming the holder (`runs/train is in use by papo train (pid 1234
 *     on host gpu-3, since 07:12:03); wait for it or stop it`);
 *   - a lock is stale only when it was taken on this host and its process is gone: `kill(pid, 0)` fails with
 *     ESRCH, or (Linux) the process now holding that pid started at another time than the holder did (a
 *     reused pid), or it is this process's pid but not one of the locks this process holds (a previous
 *     incarnation, as in a restarted container). A live holder's lock is never taken;
 *   - a stale lock is taken over by exactly one taker: it first creates `.lock.takeover-<token of the
 *     stale lock>` exclusively, checks the lock still holds that token, removes it and creates its own
 *     (exclusively again, so a start that found no lock at all cannot win too);
 *   - another host's lock, an unreadable one or one that is not a regular file is never taken: the error
 *     says which file to remove once no papo command uses the directory;
 *   - released (removed if it is still this holder's) by `release()`, and on every way out of the process
 *     that runs JavaScript: normal exit, uncaught error (`exit` event), and SIGINT / SIGTERM / SIGHUP while
 *     no other handler is installed (the lock is removed, then the signal is raised again with its default
 *     action). A SIGKILLed holder leaves a stale lock that the next start takes over.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';

export const LOCK_FILE = '.lock';

export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken */
  started: string;
  /** what holds it: `papo train`, `papo sft` */
  command: string;
  /** the command line's arguments */
  args: string[];
  /** identifies this lock among all others */
  token: string;
  /** the start time of the holder's process (field 22 of /proc/<pid>/stat), when known */
  proc_start?: string;
}

export interface RunLock {
  readonly dir: string;
  readonly file: string;
  readonly info: LockInfo;
  /** Removes the lock if it is still this one; idempotent. */
  release(): void;
}

/** The tokens of the locks this process holds, with their files. */
const held = new Map<string, string>();
const EXIT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function releaseFile(file: string, token: string): void {
  held.delete(token);
  try {
    const now = readLock(file);
    if (now.kind === 'lock' && now.info.token === token) fs.unlinkSync(file);
  } catch {
    // already gone, or the directory went away: nothing to release
  }
  if (held.size === 0) uninstallHooks();
}

function releaseAll(): void {
  for (const [token, file] of [...held]) releaseFile(file, token);
}

/** Only when no other handler is installed does a signal end the process: then release and die by it. */
const onSignal = (sig: NodeJS.Signals) => {
  if (process.listenerCount(sig) > 1) return; // the command handles it (e.g. papo train's clean stop)
  releaseAll();
  uninstallHooks();
  process.kill(process.pid, sig);
};
const signalHandlers = new Map<NodeJS.Signals, () => void>(EXIT_SIGNALS.map((s) => [s, () => onSignal(s)]));
let hooked = false;

function installHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', releaseAll);
  for (const [sig, h] of signalHandlers) process.on(sig, h);
}

function uninstallHooks(): void {
  if (!hooked) return;
  hooked = false;
  process.off('exit', releaseAll);
  for (const [sig, h] of signalHandlers) process.off(sig, h);
}

/** This process's start time in clock ticks since boot (Linux), to tell a live holder from a reused pid. */
function procStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

type ReadResult = { kind: 'lock'; info: LockInfo } | { kind: 'absent' } | { kind: 'foreign'; why: string };

function readLock(file: string): ReadResult {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw err;
  }
  if (st.isSymbolicLink()) return { kind: 'foreign', why: 'is a symbolic link, not a lock papo wrote' };
  if (!st.isFile()) return { kind: 'foreign', why: 'is not a regular file, not a lock papo wrote' };
  if (st.size > 64 * 1024) return { kind: 'foreign', why: 'is too large to be a lock papo wrote' };
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw err;
  }
  try {
    const o = JSON.parse(text) as Partial<LockInfo>;
    if (typeof o.pid === 'number' && Number.isInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' && typeof o.token === 'string') {
      return {
        kind: 'lock',
        info: {
          pid: o.pid,
          host: o.host,
          token: o.token,
          started: typeof o.started === 'string' ? o.started : '?',
          command: typeof o.command === 'string' ? o.command : 'papo',
          args: Array.isArray(o.args) ? o.args.map(String) : [],
          proc_start: typeof o.proc_start === 'string' ? o.proc_start : undefined,
        },
      };
    }
  } catch {
    // below
  }
  return { kind: 'foreign', why: 'is not a lock papo wrote (unreadable contents)' };
}

/** Is the lock's holder still running? Errs on the side of "yes": a live run's lock is never taken. */
function holderAlive(info: LockInfo): boolean {
  if (info.host !== os.hostname()) return true;
  if (info.pid === process.pid) return held.has(info.token);
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    return true; // EPERM: alive, another user's
  }
  // The pid is in use: by the holder, unless (Linux) that process started at another time (a reused pid).
  const now = procStart(info.pid);
  return !(info.proc_start !== undefined && now !== undefined && now !== info.proc_start);
}

function since(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  const time = `${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
  const today = new Date();
  return t.toDateString() === today.toDateString() ? time : `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${time}`;
}

/** `papo train (pid 1234 on host x, since 07:12:03)` */
export function describeHolder(info: LockInfo): string {
  return `${info.command} (pid ${info.pid} on host ${info.host}, since ${since(info.started)})`;
}

/** Creates `file` holding `data`, complete, only if nothing has that name; false when something has. */
function createExclusive(file: string, data: string): boolean {
  const tmp = `${file}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`;
  fs.writeFileSync(tmp, data, { flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  // no hard links on this file system: an exclusive create, then the contents
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

export interface LockOptions {
  /** what holds the lock, for the message a second writer gets (`papo train`) */
  command: string;
  /** the command line (default process.argv after the script) */
  args?: string[];
}

/**
 * Takes the run directory's lock (creating the directory), or throws naming the holder. See the module
 * comment for the rules.
 */
export function acquireRunLock(dir: string, opts: LockOptions): RunLock {
  // the first directory this call creates, if any: a command that ends having written nothing leaves none
  const created = fs.mkdirSync(dir, { recursive: true });
  const removeCreatedIfEmpty = () => {
    if (created === undefined) return;
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      try {
        fs.rmdirSync(d); // only ever removes an empty directory
      } catch {
        return;
      }
      if (d === path.resolve(created) || path.dirname(d) === d) return;
    }
  };
  const file = path.join(dir, LOCK_FILE);
  const info: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    started: new Date().toISOString(),
    command: opts.command,
    args: opts.args ?? process.argv.slice(2),
    token: randomUUID(),
    proc_start: procStart(process.pid),
  };
  const data = `${JSON.stringify(info)}\n`;
  const remove = `remove ${file} once no papo command uses ${dir}`;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (createExclusive(file, data)) {
      held.set(info.token, file);
      installHooks();
      let released = false;
      return {
        dir,
        file,
        info,
        release: () => {
          if (released) return;
          released = true;
          releaseFile(file, info.token);
          removeCreatedIfEmpty();
        },
      };
    }
    const found = readLock(file);
    if (found.kind === 'absent') continue; // released meanwhile: try again
    if (found.kind === 'foreign') throw new Error(`${dir} cannot be locked: ${file} ${found.why}; ${remove}`);
    const holder = found.info;
    if (holderAlive(holder)) {
      const foreignHost = holder.host !== os.hostname();
      throw new Error(
        `${dir} is in use by ${describeHolder(holder)}; wait for it or stop it` +
          (foreignHost ? ` (a lock taken on another host is never taken over: if that run is gone, ${remove})` : ''),
      );
    }
    // Stale: the holder died. One taker claims it, checks it is still the lock it read, and removes it.
    const claim = `${file}.takeover-${holder.token.replace(/[^A-Za-z0-9-]/g, '')}`;
    if (!createExclusive(claim, data)) {
      const claimant = readLock(claim);
      // the claim went away between the two looks: its taker finished (or gave up); look at the lock again
      if (claimant.kind === 'absent') continue;
      if (claimant.kind === 'lock' && holderAlive(claimant.info)) {
        throw new Error(`${dir} is being taken over by ${describeHolder(claimant.info)} (the previous holder, pid ${holder.pid}, is gone)`);
      }
      throw new Error(
        `${dir} cannot be locked: a start that was taking over the stale lock of pid ${holder.pid} stopped midway; remove ${file} and ${claim} once no papo command uses ${dir}`,
      );
    }
    try {
      const again = readLock(file);
      if (again.kind === 'lock' && again.info.token === holder.token) fs.unlinkSync(file);
    } finally {
      fs.rmSync(claim, { force: true });
    }
  }
  throw new Error(`${dir}: could not take ${file} (it keeps changing hands); try again`);
}

/** The lock of `dir` as a reader sees it (undefined when unlocked or not a papo lock). */
export function runLockHolder(dir: string): LockInfo | undefined {
  const r = readLock(path.join(dir, LOCK_FILE));
  return r.kind === 'lock' ? r.info : undefined;
}
