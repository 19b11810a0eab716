import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { LayoutStore, LockLostError, LockTimeoutError } from '../../src/layout/index.ts';
import { withFileLock } from '../../src/layout/lock.ts';
import { killHard, spawnSupport, succeeded } from './support/child.ts';
import { writeImage } from './support/image.ts';
import { tempDir } from './support/tmp.ts';

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await once(child, 'exit');
  return child.pid ?? 0;
}

async function lockFile(dir: string, holder: { pid: number; hostname: string }): Promise<string> {
  const path = join(dir, 'index.json.lock');
  await writeFile(path, JSON.stringify({ ...holder, nonce: 'someone-else' }));
  return path;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function rootEntries(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

test('a lock left by a dead process on this host is broken at once', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir, { lockTimeoutMs: 20_000, staleLockMs: 600_000 });
  const image = await writeImage(store);
  await lockFile(dir, { pid: await deadPid(), hostname: hostname() });
  // Only the dead pid can make this lock stale: it is far younger than staleLockMs.
  await store.putTag('v1', image.manifest);
  t.deepEqual(await store.tags(), ['v1']);
  t.deepEqual(await rootEntries(dir), ['blobs', 'index.json', 'oci-layout']);
});

test('a lock not refreshed for longer than staleLockMs is broken', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir, { lockTimeoutMs: 5000, staleLockMs: 60_000 });
  const image = await writeImage(store);
  const path = await lockFile(dir, { pid: 1, hostname: 'another-host.invalid' });
  const hourAgo = new Date(Date.now() - 3600_000);
  await utimes(path, hourAgo, hourAgo);
  await store.putTag('v1', image.manifest);
  t.deepEqual(await store.tags(), ['v1']);
  t.deepEqual(await rootEntries(dir), ['blobs', 'index.json', 'oci-layout']);
});

test('a fresh lock of a live holder times out with LOCK_TIMEOUT and is left alone', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir, { lockTimeoutMs: 300 });
  const image = await writeImage(store);
  for (const holder of [
    { pid: process.pid, hostname: hostname() },
    { pid: await deadPid(), hostname: 'another-host.invalid' },
  ]) {
    const path = await lockFile(dir, holder);
    const content = await readFile(path, 'utf8');
    const started = Date.now();
    const error = await t.throwsAsync(store.putTag('v1', image.manifest), {
      instanceOf: LockTimeoutError,
      code: 'LOCK_TIMEOUT',
    });
    t.true(Date.now() - started >= 300);
    t.is(error?.holder, `pid ${holder.pid}@${holder.hostname}`);
    t.is(await readFile(path, 'utf8'), content);
    await rm(path);
  }
  t.deepEqual(await store.tags(), []);
});

test('a writer waits for the lock and proceeds once it is released', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir, { lockTimeoutMs: 5000 });
  const image = await writeImage(store);
  const path = await lockFile(dir, { pid: process.pid, hostname: hostname() });
  const put = store.putTag('v1', image.manifest);
  await sleep(300);
  t.deepEqual(await store.tags(), []);
  await rm(path);
  await put;
  t.deepEqual(await store.tags(), ['v1']);
  t.false(await exists(path));
});

test('an abort signal stops waiting for the lock', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir, { lockTimeoutMs: 60_000 });
  const image = await writeImage(store);
  await lockFile(dir, { pid: process.pid, hostname: hostname() });
  const error = await t.throwsAsync(
    store.putTag('v1', image.manifest, { signal: AbortSignal.timeout(200) }),
    { any: true },
  );
  // Waiting out the lock timeout instead would end in LockTimeoutError.
  t.regex((error as Error | undefined)?.name ?? '', /^(AbortError|TimeoutError)$/);
  t.deepEqual(await store.tags(), []);
});

test('a live holder on this host keeps its lock however long it is busy, past staleMs', async (t) => {
  const lockPath = join(await tempDir(t), 'x.lock');
  const options = { timeoutMs: 20_000, staleMs: 1500 };
  const events: string[] = [];
  const first = withFileLock(lockPath, options, async () => {
    events.push('first in');
    await sleep(4000);
    events.push('first out');
  });
  await sleep(50);
  const second = withFileLock(lockPath, options, async () => {
    events.push('second in');
  });
  await Promise.all([first, second]);
  t.deepEqual(events, ['first in', 'first out', 'second in']);
  t.false(await exists(lockPath));
});

test('a holder on this host that is alive but stopped keeps its lock past staleMs', async (t) => {
  const lockPath = join(await tempDir(t), 'x.lock');
  const holder = await spawnSupport('lock-holder.ts', [lockPath]);
  t.teardown(() => killHard(holder));
  const [line] = (await once(holder.stdout ?? holder, 'data')) as [Buffer];
  t.is(line.toString(), 'held\n');
  // A stopped process refreshes nothing, as one starved of CPU on a busy machine.
  holder.kill('SIGSTOP');
  t.teardown(() => {
    holder.kill('SIGCONT');
  });
  const error = await t.throwsAsync(
    withFileLock(lockPath, { timeoutMs: 1500, staleMs: 100 }, async () => 'got in'),
    { code: 'LOCK_TIMEOUT' },
  );
  t.is(error?.message.includes(`pid ${holder.pid}@`), true);
});

test('concurrent tag updates from one store all land', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const other = await LayoutStore.open(dir);
  const images = await Promise.all(
    Array.from({ length: 20 }, (_, i) => writeImage(store, [Buffer.from(`layer-${i}`)])),
  );
  await Promise.all(
    images.map((image, i) => (i % 2 ? store : other).putTag(`t${i}`, image.manifest)),
  );
  t.is((await store.tags()).length, 20);
});

test('six processes putting ten tags each lose no entry', async (t) => {
  const dir = await tempDir(t);
  await LayoutStore.open(dir);
  const writers = Array.from({ length: 6 }, (_, i) =>
    succeeded(spawnSupport('tag-writer.ts', [dir, `p${i}`, '10'])),
  );
  await Promise.all(writers);
  const store = await LayoutStore.open(dir, { create: false });
  const tags = await store.tags();
  t.is(tags.length, 60);
  for (let p = 0; p < 6; p++) {
    for (let i = 0; i < 10; i++) t.true(tags.includes(`p${p}-${i}`), `p${p}-${i}`);
  }
  for (const tag of tags) {
    const desc = await store.resolveTag(tag);
    t.truthy(desc && (await store.readBytes(desc.digest)));
  }
  t.deepEqual(await rootEntries(dir), ['blobs', 'index.json', 'oci-layout']);
});

/**
 * Keep the test process alive for the rest of the test: the lock's refresh timer does not (a held
 * lock must not keep a program running), and a test waiting on it alone would end as stalled.
 */
function keepAlive(t: ExecutionContext): void {
  const timer = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(timer));
}

test('a lock broken while held aborts the task before it commits, with LOCK_LOST', async (t) => {
  keepAlive(t);
  const dir = await tempDir(t);
  const lockPath = join(dir, 'index.json.lock');
  let committed = false;
  // The first refresh comes a second after the task starts, after the other writer took the lock:
  // a refresh between the removal and the new lock would only see the file gone.
  const run = withFileLock(lockPath, { timeoutMs: 1000, staleMs: 3000 }, async (held) => {
    // Another host's writer judged this lock stale and took it.
    await rm(lockPath);
    await lockFile(dir, { pid: 1, hostname: 'another-host.invalid' });
    if (!held.aborted) await once(held, 'abort');
    held.throwIfAborted();
    committed = true;
  });
  const error = await t.throwsAsync(run, { instanceOf: LockLostError });
  t.is(error?.code, 'LOCK_LOST');
  t.regex(error?.message ?? '', /now belongs to pid 1@another-host\.invalid/);
  t.false(committed);
  // The other writer's lock is left alone.
  t.like(JSON.parse(await readFile(lockPath, 'utf8')), { hostname: 'another-host.invalid' });
});

test('a lock whose file vanished while held is reported with the refresh failure as cause', async (t) => {
  keepAlive(t);
  const dir = await tempDir(t);
  const lockPath = join(dir, 'index.json.lock');
  // The first refresh comes a second after the task starts, well after the removal: a refresh
  // that ran between them would see the file gone without failing itself.
  const run = withFileLock(lockPath, { timeoutMs: 1000, staleMs: 3000 }, async (held) => {
    await rm(lockPath);
    if (!held.aborted) await once(held, 'abort');
    held.throwIfAborted();
  });
  const error = await t.throwsAsync(run, { instanceOf: LockLostError });
  t.regex(error?.message ?? '', /its file was removed/);
  t.is((error?.cause as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
});

test('a task that finished on a lock it no longer held fails with LOCK_LOST instead of returning', async (t) => {
  const dir = await tempDir(t);
  const lockPath = join(dir, 'index.json.lock');
  // A stale time no refresh comes near: only the check at release can see the loss.
  const run = withFileLock(lockPath, { timeoutMs: 1000, staleMs: 3_600_000 }, async () => {
    await rm(lockPath);
    await lockFile(dir, { pid: 1, hostname: 'another-host.invalid' });
    return 'done';
  });
  await t.throwsAsync(run, { instanceOf: LockLostError, code: 'LOCK_LOST' });
  t.true(await exists(lockPath), "the other writer's lock is not deleted");
});
