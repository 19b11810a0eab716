import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import test, { type ExecutionContext } from 'ava';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { BlobLocations, LazyBlob, type Provider } from '../../src/remote/index.ts';
import type { RemoteImage } from '../../src/remote/remote-image.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { Hold, startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { everyCallerAborts, oneCallerAborts } from '../helpers/shared-work.ts';

/** The registry of every test here: each reads the same image through a fault proxy of its own. */
const shared = sharedRegistry(test);

/** An image resolved through a proxy that holds the download of its first layer. */
async function heldLayer(t: ExecutionContext) {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'app/single');
  const hold = new Hold();
  const proxy = await startFaultProxy(t, registry.url);
  const client = new RegistryClient({ retry: { baseDelayMs: 10 } });
  t.teardown(() => client.close());
  const image = (await resolve(`${proxy.host}/app/single:v1`, { client })) as RemoteImage;
  const layer = image.layers[0]!;
  proxy.rules.push({
    method: 'GET',
    path: new RegExp(`/blobs/${layer.digest}$`),
    action: { hold },
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-lazy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await LayoutStore.open(dir);
  return { hold, layer, store, dir };
}

test('a caller that aborts its unlazy leaves the shared download to the others', async (t) => {
  const { hold, layer, store } = await heldLayer(t);
  const wrote = await oneCallerAborts(t, hold, (signal) => layer.unlazy(store, { signal }));
  t.true(wrote);
  t.true(await store.has(layer.digest));
});

test('when every caller of a download aborts, it stops and its connection closes', async (t) => {
  const { hold, layer, store, dir } = await heldLayer(t);
  await everyCallerAborts(t, hold, (signal) => layer.unlazy(store, { signal }));
  t.false(await store.has(layer.digest));
  const files = await readdir(dir, { recursive: true });
  t.deepEqual(
    files.filter((f) => f.startsWith(path.join('blobs', 'sha256', ''))),
    [],
    'no temp file left',
  );
});

test('unlazy from a provider that does not verify its reads never commits wrong bytes', async (t) => {
  const bytes = Buffer.from('the right bytes');
  const descriptor = {
    mediaType: 'application/octet-stream',
    digest: digestBytes(bytes),
    size: 15,
  };
  const provider: Provider = {
    description: 'a provider serving the wrong bytes',
    info: async () => ({ digest: descriptor.digest, size: descriptor.size }),
    fetch: async () => Readable.from([Buffer.from('THE RIGHT BYTES')]),
  };
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-lazy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await LayoutStore.open(dir);
  const blob = new LazyBlob(descriptor, provider, 'test', new BlobLocations());
  await t.throwsAsync(blob.unlazy(store), { code: 'DIGEST_MISMATCH' });
  t.false(await store.has(descriptor.digest));
  await t.throwsAsync(async () => text(await blob.fetch()), { code: 'DIGEST_MISMATCH' });
});
