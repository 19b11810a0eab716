import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorCode } from './errno.ts';
import { LockLostError, LockTimeoutError } from './errors.ts';
import { processExists } from './liveness.ts';
import { isObject } from './validate.ts';

/** Options of {@link withFileLock}. */
export interface FileLockOptions {
  /** How long to wait for a lock held by someone else before {@link LockTimeoutError}. */
  timeoutMs: number;
  /** A lock untouched for this long is stale; the holder refreshes it every third of it. */
  staleMs: number;
  signal?: AbortSignal | undefined;
}

/** What a holder writes into its lock file. */
interface LockOwner {
  readonly pid: number;
  readonly hostname: string;
  /** Random; tells this acquisition apart from any other, also by the same process. */
  readonly nonce: string;
}

/** A lock file as seen by a waiter. `owner` is undefined when the content is not readable. */
interface LockState {
  readonly owner: LockOwner | undefined;
  readonly mtimeMs: number;
}

const MIN_BACKOFF_MS = 4;
const MAX_BACKOFF_MS = 250;

/**
 * Run `task` holding the lock file `lockPath`: created exclusively (`wx`), refreshed while held,
 * deleted after. A waiter backs off exponentially with jitter up to `timeoutMs`, and breaks a lock
 * whose holder is a dead process on this host, or, held from another host, has not been refreshed
 * for `staleMs`.
 *
 * Each refresh also checks that the lock is still ours. `task` gets a signal aborted with
 * {@link LockLostError} once it is not (another writer broke it), or once it could not be refreshed
 * for `staleMs` (another host may break it): it checks that signal before it commits anything.
 * @throws LockLostError (`LOCK_LOST`) when the lock was lost while `task` ran, even if `task`
 * finished: what it wrote may have raced another writer
 */
export async function withFileLock<T>(
  lockPath: string,
  options: FileLockOptions,
  task: (held: AbortSignal) => Promise<T>,
): Promise<T> {
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    nonce: randomBytes(8).toString('hex'),
  };
  await acquire(lockPath, owner, options);
  const held = new AbortController();
  const lose = (why: string, cause?: unknown) => {
    if (!held.signal.aborted) held.abort(new LockLostError({ lockPath, why, cause }));
  };
  let refreshed = Date.now();
  let beating = false;
  const beat = async () => {
    let failure: unknown;
    try {
      const now = new Date();
      await utimes(lockPath, now, now);
      refreshed = Date.now();
    } catch (error) {
      failure = error;
    }
    const state = await readLock(lockPath).catch(() => undefined);
    if (state?.owner?.nonce !== owner.nonce) {
      lose(state ? `it now belongs to ${describe(state)}` : 'its file was removed', failure);
    } else if (failure !== undefined && Date.now() - refreshed >= options.staleMs) {
      lose(`it could not be refreshed for ${options.staleMs} ms`, failure);
    }
  };
  const heartbeat = setInterval(() => {
    if (beating || held.signal.aborted) return;
    beating = true;
    void beat().finally(() => {
      beating = false;
    });
  }, options.staleMs / 3);
  heartbeat.unref();
  let result: T;
  try {
    result = await task(held.signal);
  } catch (error) {
    clearInterval(heartbeat);
    await release(lockPath, owner);
    throw held.signal.aborted ? held.signal.reason : error;
  }
  clearInterval(heartbeat);
  const state = await readLock(lockPath);
  if (state?.owner?.nonce !== owner.nonce) {
    lose(state ? `it now belongs to ${describe(state)}` : 'its file was removed');
  }
  if (held.signal.aborted) throw held.signal.reason;
  await release(lockPath, owner);
  return result;
}

function describe(state: LockState): string {
  return state.owner ? `pid ${state.owner.pid}@${state.owner.hostname}` : 'another writer';
}

async function acquire(
  lockPath: string,
  owner: LockOwner,
  options: FileLockOptions,
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let backoff = MIN_BACKOFF_MS;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    if (attempt > 0 && Date.now() >= deadline) {
      const state = await readLock(lockPath);
      throw new LockTimeoutError({
        lockPath,
        timeoutMs: options.timeoutMs,
        holder: state?.owner && `pid ${state.owner.pid}@${state.owner.hostname}`,
      });
    }
    if (await tryCreate(lockPath, owner)) return;
    const state = await readLock(lockPath);
    if (state === undefined) continue; // released between our attempt and our look: retry now
    if (isStale(state, options.staleMs)) {
      await breakLock(lockPath, state);
      continue;
    }
    const wait = Math.min(backoff * (0.5 + Math.random()), Math.max(0, deadline - Date.now()));
    await sleep(wait, undefined, { signal: options.signal });
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

async function tryCreate(lockPath: string, owner: LockOwner): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lockPath, 'wx', 0o644);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(JSON.stringify(owner));
  } finally {
    await handle.close();
  }
  return true;
}

/** The lock's owner and age; undefined when there is no lock file. */
async function readLock(path: string): Promise<LockState | undefined> {
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  let owner: LockOwner | undefined;
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (
      isObject(value) &&
      Number.isSafeInteger(value.pid) &&
      typeof value.hostname === 'string' &&
      typeof value.nonce === 'string'
    ) {
      owner = value as unknown as LockOwner;
    }
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    // Half-written or foreign content: the holder is unknown, only the age can make it stale.
  }
  return { owner, mtimeMs };
}

/**
 * A holder on this host is judged by its process alone: alive, it keeps the lock however long it
 * is busy or starved of CPU (a late refresh must not let a second writer in). Holders elsewhere,
 * or unknown, by the age of their last refresh.
 */
function isStale(state: LockState, staleMs: number): boolean {
  const { owner } = state;
  if (owner && owner.hostname === hostname()) return !processExists(owner.pid);
  return Date.now() - state.mtimeMs > staleMs;
}

/**
 * Remove a lock judged stale. It is first renamed aside, so we know exactly which file we took:
 * if it is not the one we judged (a new holder got in between), it is put back.
 */
async function breakLock(lockPath: string, judged: LockState): Promise<void> {
  const aside = `${lockPath}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    const taken = await readLock(aside);
    if (taken && !sameLock(taken, judged)) await link(aside, lockPath).catch(() => {});
  } finally {
    await rm(aside, { force: true });
  }
}

function sameLock(a: LockState, b: LockState): boolean {
  return a.owner && b.owner ? a.owner.nonce === b.owner.nonce : a.mtimeMs === b.mtimeMs;
}

/** Delete the lock file if it is still ours (a waiter may have broken it as stale). */
async function release(lockPath: string, owner: LockOwner): Promise<void> {
  const state = await readLock(lockPath);
  if (state?.owner?.nonce === owner.nonce) await rm(lockPath, { force: true });
}
