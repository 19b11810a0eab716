import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { DigestMismatchError } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

const run = promisify(execFile);
const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-remote-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function client(t: ExecutionContext): RegistryClient {
  const c = new RegistryClient({ retry: { baseDelayMs: 10 } });
  t.teardown(() => c.close());
  return c;
}

test('resolving an index and an image fetches manifests only: zero blob GETs', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'multi-platform', 'resolving-index-image/multi');
  await pushFixture(registry, 'oci-image', 'resolving-index-image/single');
  const mark = await registry.mark();
  const c = client(t);

  const index = await resolve(`${registry.host}/resolving-index-image/multi:v1`, { client: c });
  t.is(index.kind, 'index');
  const image = await resolve(`${registry.host}/resolving-index-image/single:v1`, { client: c });
  t.is(image.kind, 'image');
  const arm = await resolve(`${registry.host}/resolving-index-image/multi:v1`, {
    client: c,
    platform: 'linux/arm64',
  });
  t.is(arm.kind, 'image');
  if (arm.kind === 'image') t.is(arm.descriptor.platform?.architecture, 'arm64');

  t.deepEqual(await registry.requests({ method: 'GET', path: BLOB_GET, since: mark }), []);
  t.is((await registry.requests({ method: 'GET', path: /\/manifests\//, since: mark })).length, 4);
});

test('the config is fetched only when asked, once', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'oci-image', 'config-fetched-only/single');
  const image = await resolve(`${registry.host}/config-fetched-only/single:v1`, {
    client: client(t),
  });
  if (image.kind !== 'image') return t.fail('expected an image');
  const mark = await registry.mark();
  const platform = await image.platform();
  t.is(platform.architecture, 'amd64');
  await image.config();
  t.is((await registry.requests({ method: 'GET', path: BLOB_GET, since: mark })).length, 1);
});

test('unlazy writes a layout that skopeo reads, and a second unlazy makes no request', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'oci-image', 'unlazy-writes-layout/single');
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const image = await resolve(`${registry.host}/unlazy-writes-layout/single:v1`, {
    client: client(t),
  });
  const mark = await registry.mark();
  await image.unlazy(store, { tag: 'v1' });
  t.is((await registry.requests({ method: 'GET', path: BLOB_GET, since: mark })).length, 4);

  const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${dir}:v1`]);
  t.is(JSON.parse(stdout).layers.length, 3);
  const second = await registry.mark();
  await image.unlazy(store, { tag: 'v1' });
  t.deepEqual(await registry.requests({ since: second }), []);
  t.is((await store.resolveTag('v1'))?.digest, pushed.digest);
});

test('ten concurrent unlazy calls download each blob once', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'layers-40', 'ten-concurrent-unlazy/forty');
  const store = await LayoutStore.open(await tempDir(t));
  const image = await resolve(`${registry.host}/ten-concurrent-unlazy/forty:v1`, {
    client: client(t),
  });
  if (image.kind !== 'image') return t.fail('expected an image');
  const mark = await registry.mark();
  await Promise.all(Array.from({ length: 10 }, () => image.unlazy(store, { tag: 'v1' })));
  const gets = await registry.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.is(gets.length, 41);
  t.is(new Set(gets.map((g) => g.path)).size, 41);
});

test('an interrupted layer download resumes and the result is verified', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'layers-40', 'interrupted-layer-download/forty');
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: BLOB_GET, times: 3, action: { resetAfterBytes: 200 } },
  ]);
  const store = await LayoutStore.open(await tempDir(t));
  const image = await resolve(`${proxy.host}/interrupted-layer-download/forty:v1`, {
    client: client(t),
  });
  await image.unlazy(store, { tag: 'v1' });
  t.is(proxy.hits(proxy.rules[0]!), 3);
  const ranged = proxy.forwarded.filter((r) => r.headers.range !== undefined);
  t.true(ranged.length >= 1, 'at least one download resumed with Range');
  if (image.kind === 'image') {
    for (const blob of image.blobs()) t.true(await store.has(blob.digest));
  }
});

test('a corrupted layer is never committed to the layout', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'corrupted-layer-never/single');
  const image = await resolve(`${registry.host}/corrupted-layer-never/single:v1`, {
    client: client(t),
  });
  if (image.kind !== 'image') return t.fail('expected an image');
  const layer = image.layers[1]!;
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`), action: { flipByteAt: 10 } },
  ]);
  const viaProxy = await resolve(`${proxy.host}/corrupted-layer-never/single:v1`, {
    client: client(t),
  });
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  await t.throwsAsync(viaProxy.unlazy(store, { tag: 'v1' }), { instanceOf: DigestMismatchError });
  t.false(await store.has(layer.digest));
  t.deepEqual(await store.tags(), []);
  const leftovers = (await readdir(path.join(dir, 'blobs', 'sha256'))).filter((f) =>
    f.startsWith('.'),
  );
  t.deepEqual(leftovers, []);
});

test('resolving records where blobs live, for later mounts', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'resolving-records-where/team-app');
  const blobLocations = new BlobLocations();
  const image = await resolve(`${registry.host}/resolving-records-where/team-app:v1`, {
    client: client(t),
    blobLocations,
  });
  if (image.kind !== 'image') return t.fail('expected an image');
  for (const blob of image.blobs()) {
    t.deepEqual(blob.locations(), new Map([[registry.host, ['resolving-records-where/team-app']]]));
  }
  t.is(
    blobLocations.mountFrom(
      image.layers[0]!.digest,
      registry.host,
      'resolving-records-where/team-other',
    ),
    'resolving-records-where/team-app',
  );
  t.is(
    blobLocations.mountFrom(
      image.layers[0]!.digest,
      registry.host,
      'resolving-records-where/team-app',
    ),
    undefined,
  );
});

test('a layout reference resolves without any registry', async (t) => {
  const image = await resolve('oci:fixtures/data/multi-platform:v1', { platform: 'linux/amd64' });
  t.is(image.kind, 'image');
  if (image.kind === 'image') t.is((await image.platform()).architecture, 'amd64');
});

test('unlazy of an index is a copy: every entry that is a blob comes along, counted as a copy counts', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-index', 'unlazy-index-copy/cache');
  const remote = await resolve(`${registry.host}/unlazy-index-copy/cache:latest`, {
    client: client(t),
  });
  if (remote.kind !== 'index') return t.fail('expected an index');
  const store = await LayoutStore.open(await tempDir(t));
  const progress: string[] = [];
  await remote.unlazy(store, { tag: 'cache', onProgress: (e) => progress.push(e.digest) });
  // A BuildKit cache index lists its config and layers as blobs, not as child manifests.
  for (const entry of remote.manifests) t.true(await store.has(entry.digest), entry.mediaType);
  t.is((await store.resolveTag('cache'))?.digest, remote.digest);
  const digests = remote.manifests.map((entry) => entry.digest);
  t.deepEqual([...new Set(progress)].sort(), digests.sort());
});
