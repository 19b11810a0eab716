import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import test, { type ExecutionContext } from 'ava';
import { copy } from '../../src/copy/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import {
  mounterOf,
  openStore,
  RegistryStore,
  resolve,
  resolveDescriptor,
  type Store,
} from '../../src/remote/index.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-stores-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function client(t: ExecutionContext): RegistryClient {
  const c = new RegistryClient({ retry: { baseDelayMs: 10 } });
  t.teardown(() => c.close());
  return c;
}

/**
 * What every store does, through its verbs alone: a blob pushed is there and reads back
 * verified, a manifest pushed by digest and by tag resolves, and the tag is listed.
 */
async function conformance(t: ExecutionContext, store: Store): Promise<void> {
  const blob = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}');
  const config = { mediaType: OCI_CONFIG, digest: digestBytes(blob), size: blob.length };
  t.false(await store.exists(config));
  await store.push(config, () => Readable.from([blob]));
  t.true(await store.exists(config));
  t.deepEqual(await store.info(config.digest), { digest: config.digest, size: config.size });
  t.deepEqual(await buffer(await store.fetch(config)), blob);

  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [] }),
  );
  const manifest = {
    mediaType: OCI_MANIFEST,
    digest: digestBytes(manifestBytes),
    size: manifestBytes.length,
  };
  t.false(await store.exists(manifest));
  await store.pushManifest(manifest, manifestBytes);
  t.true(await store.exists(manifest));
  t.deepEqual(await store.fetchManifest(manifest), manifestBytes);
  await store.tag(manifest, manifestBytes, 'v1');
  t.deepEqual(await store.tags(), ['v1']);
  t.is((await store.resolve('v1')).digest, manifest.digest);
  const fetched = await store.fetchReference('v1');
  t.is(fetched.descriptor.digest, manifest.digest);
  t.deepEqual(fetched.bytes, manifestBytes);
  t.deepEqual(await store.referrers(manifest.digest), []);
}

test('a registry store and a layout store do the same through the same verbs', async (t) => {
  const registry = await shared();
  const c = client(t);
  const fromRegistry = await openStore(`${registry.host}/registry-store-layout/team-app`, {
    client: c,
  });
  t.true(fromRegistry instanceof RegistryStore);
  await conformance(t, fromRegistry);
  const dir = await tempDir(t);
  const fromLayout = await openStore(`oci:${dir}`, { create: true });
  t.true(fromLayout instanceof LayoutStore);
  await conformance(t, fromLayout);
});

test('mounting is a capability found at run time: registries have it, layouts do not', async (t) => {
  const registry = await shared();
  const c = client(t);
  t.truthy(
    mounterOf(
      await openStore(`${registry.host}/mounting-capability-found/team-app`, { client: c }),
    ),
  );
  t.is(mounterOf(await openStore(`oci:${await tempDir(t)}`, { create: true })), undefined);
});

test('openStore opens a layout that exists, and creates one only when asked', async (t) => {
  const dir = path.join(await tempDir(t), 'new');
  await t.throwsAsync(openStore(`oci:${dir}`), { code: 'LAYOUT_INVALID' });
  const store = await openStore(`oci:${dir}`, { create: true });
  t.deepEqual(await store.tags(), []);
  await t.throwsAsync(store.resolve('nope'), { code: 'MANIFEST_UNKNOWN' });
});

test('a copy writes to a store given as the destination, tags from the options', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'oci-image', 'copy-writes-store/single');
  const c = client(t);
  const image = await resolve(`${registry.host}/copy-writes-store/single:v1`, { client: c });
  const store = await LayoutStore.open(await tempDir(t));
  const result = await copy(image, store, { client: c, tags: ['v1'] });
  t.is(result.digest, pushed.digest);
  t.deepEqual(result.tags, ['v1']);
  t.is((await store.resolveTag('v1'))?.digest, pushed.digest);
  // A second copy finds everything there.
  const again = await copy(image, store, { client: c });
  t.is(again.blobs.uploaded, 0);
});

test('a layout resolves a manifest by digest that its index.json does not list', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'layout-resolves-manifest/single');
  const c = client(t);
  const image = await resolve(`${registry.host}/layout-resolves-manifest/single:v1`, { client: c });
  // The manifest blob alone, listed nowhere (as a BuildKit local cache may hold one).
  const bare = await LayoutStore.open(await tempDir(t));
  await bare.writeBytes(image.descriptor, image.bytes);
  t.deepEqual((await bare.index()).manifests, []);
  const descriptor = await resolveDescriptor(`oci:${bare.dir}@${image.digest}`);
  t.deepEqual(descriptor, {
    mediaType: image.mediaType,
    digest: image.digest,
    size: image.descriptor.size,
  });
});
