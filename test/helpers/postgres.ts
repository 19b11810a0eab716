import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';
import { oncePerRun } from './run-dir.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

/** A PostgreSQL 15 server on loopback, run as the `postgres` user on a temporary data directory. */
export interface TestPostgres {
  /** `postgres://ociferry@127.0.0.1:PORT/postgres` */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Why no PostgreSQL can be started here (undefined when one can): its binaries or the `postgres`
 * user are missing, or we cannot switch to that user.
 */
export async function postgresUnavailable(): Promise<string | undefined> {
  if (!existsSync(join(BIN, 'pg_ctl'))) {
    return `PostgreSQL 15 is not installed (${BIN}); run 'apt-get install -y postgresql'`;
  }
  try {
    await run('id', ['-u', 'postgres']);
  } catch {
    return 'there is no postgres user to run PostgreSQL as';
  }
  if (process.getuid?.() !== 0) return 'starting PostgreSQL as the postgres user needs root';
  return undefined;
}

/** Run a PostgreSQL program as the `postgres` user. */
function as(command: string, args: string[]) {
  return run('runuser', ['-u', 'postgres', '--', join(BIN, command), ...args]);
}

/** A temporary directory the `postgres` user owns. */
async function postgresDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-pg-'));
  await chmod(dir, 0o755);
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  return dir;
}

/**
 * A data directory as initdb makes it (trust auth for user `ociferry`), made once per test run:
 * initdb costs 0.6 s of CPU, a copy of its output very little.
 */
function initializedData(): Promise<string> {
  return oncePerRun('postgres-data', async (dir) => {
    // Made where the postgres user may write, then copied (ownership kept) to where it is kept.
    const work = await postgresDir();
    try {
      await as('initdb', ['-D', join(work, 'data'), '-A', 'trust', '-U', 'ociferry', '--no-sync']);
      await mkdir(dir);
      await run('cp', ['-a', join(work, 'data'), join(dir, 'data')]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }).then((dir) => join(dir, 'data'));
}

/**
 * Start a server (a copy of the run's initdb output, pg_ctl start), trust auth for user
 * `ociferry` on 127.0.0.1 only.
 */
export async function startPostgres(): Promise<TestPostgres> {
  const dir = await postgresDir();
  const data = join(dir, 'data');
  await run('cp', ['-a', await initializedData(), data]);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      await as('pg_ctl', [
        '-D',
        data,
        '-w',
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
        '-l',
        join(dir, 'log'),
        'start',
      ]);
      return {
        url: `postgres://ociferry@127.0.0.1:${port}/postgres`,
        async stop() {
          await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => {});
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
}
