/**
 * What the test files of one `ava` run share: the run's directory (made by ava.config.mjs, removed
 * when ava exits) and things made in it once for the whole run, whichever test process asks first.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Set by ava.config.mjs for every test process of a run. */
export const RUN_DIR_ENV = 'OCIFERRY_TEST_RUN_DIR';

/** The directory of this test run; undefined when ava was started without the project's config. */
export function runDir(): string | undefined {
  return process.env[RUN_DIR_ENV] || undefined;
}

const made = new Map<string, Promise<string>>();

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The directory `name` of the run directory, made by `make(dir)` once for the whole run: the first
 * test process to ask takes a lock (a directory holding its PID, renamed into place) and makes it
 * aside, then renames it into place; the others wait for it, and take over if the maker died. Without a run
 * directory it is made once for this process, in a temporary directory removed at exit. `make`
 * must leave `dir` complete or throw.
 */
export function oncePerRun(name: string, make: (dir: string) => Promise<void>): Promise<string> {
  let promise = made.get(name);
  if (promise === undefined) {
    const root = runDir();
    promise = root === undefined ? oncePerProcess(name, make) : oncePerRunIn(root, name, make);
    made.set(name, promise);
  }
  return promise;
}

async function oncePerProcess(name: string, make: (dir: string) => Promise<void>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ociferry-once-'));
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, name);
  await make(dir);
  return dir;
}

async function oncePerRunIn(
  root: string,
  name: string,
  make: (dir: string) => Promise<void>,
): Promise<string> {
  const dir = join(root, name);
  const lock = join(root, `${name}.lock`);
  for (;;) {
    if (await exists(dir)) return dir;
    // The lock is a directory holding its taker's PID, renamed into place whole.
    const taking = await mkdtemp(join(root, `${name}.taking-`));
    await writeFile(join(taking, 'pid'), `${process.pid}\n`);
    try {
      await rename(taking, lock);
    } catch (error) {
      await rm(taking, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      const holder = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => '0'));
      // A lock whose maker is gone is taken over; a lock removed meanwhile is retried at once.
      if (holder > 0 && !isAlive(holder)) await rm(lock, { recursive: true, force: true });
      else if (holder > 0) await sleep(100);
      continue;
    }
    try {
      if (await exists(dir)) return dir;
      const aside = join(lock, name);
      await make(aside);
      await rename(aside, dir).catch(async (error: NodeJS.ErrnoException) => {
        // Made meanwhile by a process that took the lock over from this one: theirs serves.
        if (!(await exists(dir))) throw error;
      });
      return dir;
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}
