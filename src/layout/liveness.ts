import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { errorCode } from './errno.ts';

/** True when process `pid` runs on this host (EPERM: it runs, as another user). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === 'EPERM';
  }
}

let thisHost: string | undefined;

/**
 * This host as 8 hex digits (a hash of its name): file names carry it so that a process id is
 * only ever judged on the host where it means something (a layout may sit on a shared disk).
 */
export function hostTag(): string {
  thisHost ??= createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
  return thisHost;
}

/** True when `host` (a {@link hostTag}) is this host and process `pid` is gone. */
export function isDeadHere(host: string, pid: number): boolean {
  return host === hostTag() && pid !== process.pid && !processExists(pid);
}
