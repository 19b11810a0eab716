/** Shared set-up of the cache tests: clients, temp dirs, fixture keys, custom caches in a registry. */

import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { cacheManifest } from '../../src/cache/export.ts';
import { CACHE_CONFIG_MEDIA_TYPE } from '../../src/cache/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { type Descriptor, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/index.ts';
import { CredentialStore, RegistryClient } from '../../src/registry/index.ts';
import { fixturePath, readFixtureBlob } from '../helpers/fixtures.ts';
import type { AccessLogEntry, SharedRegistry, WatchedRegistry } from '../helpers/registry.ts';

/** What fixtures/data/cache-keys.json says about the fixture cache. */
export interface CacheKeys {
  hits: string[];
  misses: string[];
  withoutResult: string[];
  chains: Record<string, string[]>;
}

export const BLOB_PATH = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;
export const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;

/** An anonymous client with fast retries, closed after the test. */
export function client(t: ExecutionContext): RegistryClient {
  const c = new RegistryClient({
    credentials: new CredentialStore({ explicit: {}, env: {} }),
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
  });
  t.teardown(() => c.close());
  return c;
}

/** A temporary directory removed after the test. */
export async function tempDir(t: ExecutionContext, prefix = 'ociferry-cache-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A writable copy of fixture layout `name`. */
export async function fixtureCopy(t: ExecutionContext, name: string): Promise<string> {
  const dir = path.join(await tempDir(t), name);
  await cp(fixturePath(name), dir, { recursive: true });
  return dir;
}

export async function cacheKeys(): Promise<CacheKeys> {
  return JSON.parse(await readFile(fixturePath('cache-keys.json'), 'utf8')) as CacheKeys;
}

/** The layer descriptors of the fixture cache manifest, in manifest order. */
export async function fixtureLayers(): Promise<Descriptor[]> {
  const root = JSON.parse(
    await readFile(path.join(fixturePath('cache-manifest'), 'index.json'), 'utf8'),
  ) as { manifests: Descriptor[] };
  const digest = (root.manifests[0] as Descriptor).digest;
  const manifest = JSON.parse((await readFixtureBlob('cache-manifest', digest)).toString()) as {
    layers: Descriptor[];
  };
  return manifest.layers;
}

/** Blob GETs (not HEADs) in the access log since `since`. */
export async function blobGets(
  registry: WatchedRegistry,
  since: number,
): Promise<AccessLogEntry[]> {
  return registry.requests({ method: 'GET', path: BLOB_PATH, since });
}

/** Upload `bytes` as a blob of `repo` unless it is there. */
export async function uploadBytes(
  c: RegistryClient,
  registry: SharedRegistry,
  repo: string,
  bytes: Buffer,
): Promise<Descriptor> {
  const descriptor = {
    mediaType: 'application/octet-stream',
    digest: digestBytes(bytes),
    size: bytes.length,
  };
  await c.repository(registry.host, repo).uploadBlob(descriptor, () => Readable.from([bytes]));
  return descriptor;
}

/**
 * Push a cache of `config` bytes over `layers` (already in `repo`) as `repo:tag`, wrapped as an
 * image manifest. Returns the manifest digest.
 */
export async function pushCustomCache(
  c: RegistryClient,
  registry: SharedRegistry,
  repo: string,
  tag: string,
  config: Buffer,
  layers: readonly Descriptor[],
): Promise<string> {
  const uploaded = await uploadBytes(c, registry, repo, config);
  const manifest = cacheManifest(
    'image-manifest',
    { ...uploaded, mediaType: CACHE_CONFIG_MEDIA_TYPE },
    layers,
  );
  await c
    .repository(registry.host, repo)
    .putManifest(tag, manifest.bytes, manifest.descriptor.mediaType);
  return manifest.descriptor.digest;
}

/**
 * A layout holding the fixture build as an image with inline cache (`app`), and an index of that
 * image (`index`): layers L0..L3 of the fixture cache, config `cacheconfig/inline-config.json`.
 */
export async function inlineImage(t: ExecutionContext): Promise<string> {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const order = [
    'sha256:5a425d55d3c0858be69c6ad1ccfb5e6cdf4659e7ddb1d94d05917be826d59770',
    'sha256:43594c95d1aa8083fb1630866d4e13225a63ea1ac1910343c683d184cb6c4de7',
    'sha256:8de97dd1112a332e82ae41648dc271d0c83d35be68560d35fe9ee023d0374ddd',
    'sha256:dfbd38e87d67de2535f57039444014bb0beea1e1484836e4ae11d70385d2f955',
  ];
  const fixture = new Map((await fixtureLayers()).map((l) => [l.digest, l]));
  const layers = order.map((digest) => {
    const { mediaType, size } = fixture.get(digest) as { mediaType: string; size: number };
    return { mediaType, digest, size };
  });
  for (const layer of layers) {
    await store.writeBytes(layer, await readFixtureBlob('cache-manifest', layer.digest));
  }
  const config = await readFile(fixturePath('cacheconfig/inline-config.json'));
  const manifestDesc = await writeImage(store, config, layers);
  await store.putTag('app', manifestDesc);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ ...manifestDesc, platform: { architecture: 'amd64', os: 'linux' } }],
    }),
  );
  const indexDesc = { mediaType: OCI_INDEX, digest: digestBytes(index), size: index.length };
  await store.writeBytes(indexDesc, index);
  await store.putTag('index', indexDesc);
  return dir;
}

/** Write an OCI image (config bytes, layers already stored) into `store`; returns its manifest. */
export async function writeImage(
  store: LayoutStore,
  config: Buffer,
  layers: readonly Descriptor[],
): Promise<Descriptor> {
  const configDesc = {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: digestBytes(config),
    size: config.length,
  };
  await store.writeBytes(configDesc, config);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers }),
  );
  const manifestDesc = {
    mediaType: OCI_MANIFEST,
    digest: digestBytes(manifest),
    size: manifest.length,
  };
  await store.writeBytes(manifestDesc, manifest);
  return manifestDesc;
}
