import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { copy } from '../../src/copy/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';

/** The registry of every test here: each reads the same image through a fault proxy of its own; the one copy into the registry writes a repository of its own. */
const shared = sharedRegistry(test);

/*
 * A caller that aborts with its own reason (`controller.abort(new Error('user abort'))`) gets that
 * reason back: as the rejection itself, or as the `cause` of the AbortError a stream stage threw.
 */

function client(t: ExecutionContext): RegistryClient {
  const c = new RegistryClient();
  t.teardown(() => c.close());
  return c;
}

/** Resolves once `check` holds, polling. */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await sleep(10);
}

/** Assert that `promise` rejects with `reason` itself or with an error caused by it. */
async function rejectsWithReason(
  t: ExecutionContext,
  promise: Promise<unknown>,
  reason: Error,
): Promise<void> {
  const error = await t.throwsAsync(promise);
  t.true(error === reason || error?.cause === reason, `got ${String(error)}`);
}

test('an abort reason given to resolve is what it rejects with', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'app/single');
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 60_000 } },
  ]);
  const controller = new AbortController();
  const resolving = resolve(`${proxy.host}/app/single:v1`, {
    client: client(t),
    signal: controller.signal,
  });
  await until(() => proxy.forwarded.some((r) => r.path.includes('/manifests/')));
  const reason = new Error('user abort');
  controller.abort(reason);
  await rejectsWithReason(t, resolving, reason);
});

for (const destination of ['layout', 'registry'] as const) {
  test(`an abort reason given to a copy into a ${destination} mid-blob is kept`, async (t) => {
    const registry = await shared();
    const pushed = await pushFixture(registry, 'oci-image', 'app/single');
    const layer = pushed.blobs[1] ?? '';
    const proxy = await startFaultProxy(t, registry.url, [
      { method: 'GET', path: new RegExp(`/blobs/${layer}`), action: { stallAfterBytes: 100 } },
    ]);
    const c = client(t);
    const source = await resolve(`${proxy.host}/app/single:v1`, { client: c });
    const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-abort-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const target = destination === 'layout' ? `oci:${dir}:v1` : `${registry.host}/app/copy:v1`;
    const controller = new AbortController();
    const copying = copy(source, target, { client: c, signal: controller.signal });
    await until(async () =>
      destination === 'layout'
        ? (await readdir(dir, { recursive: true })).some((f) =>
            path.basename(f).startsWith('.tmp-'),
          )
        : proxy.forwarded.some((r) => r.path.includes(layer)),
    );
    const reason = new Error('user abort');
    controller.abort(reason);
    await rejectsWithReason(t, copying, reason);
  });
}
