import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
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
