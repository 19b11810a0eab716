import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hostTag, isDeadHere } from './liveness.ts';

/** Prefix of the store's temp files: readers never open such names, GC sweeps old ones. */
export const TEMP_PREFIX = '.tmp-';

/** `.tmp-<host>-<pid>-<random>`: who wrote a temp file, so that a dead writer's can be told. */
const OWNED_TEMP = /^\.tmp-([0-9a-f]{8})-([1-9]\d{0,9})-[0-9a-f]+$/;

/**
 * A fresh temp path in `dir`: same directory, hence same filesystem, as the final name. The name
 * carries this host and process, see {@link isOrphanTemp}.
 */
export function tempPath(dir: string): string {
  const owner = `${hostTag()}-${process.pid}`;
  return join(dir, `${TEMP_PREFIX}${owner}-${randomBytes(8).toString('hex')}`);
}

/**
 * True when the temp file `name` was written by a process of this host that is gone (killed
 * mid-write): nobody will ever finish or remove it. Unknown owners (older names, other hosts)
 * are false: only their age can tell, see `LayoutStore.gc`.
 */
export function isOrphanTemp(name: string): boolean {
  const match = OWNED_TEMP.exec(name);
  return match !== null && isDeadHere(match[1] as string, Number(match[2]));
}

/**
 * Replace `path` with `data` so that readers see either the old or the new content, never a mix:
 * write a temp file, fsync it, rename it over `path`, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPath(dirname(path));
  try {
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDir(dirname(path));
}

/**
 * Make a rename in `dir` durable. Best effort: some platforms and filesystems cannot open or
 * fsync a directory, and the rename itself has already happened.
 */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Durability of the directory entry is a bonus, not a requirement.
  }
}
