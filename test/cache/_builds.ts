/**
 * Two builds of one Dockerfile as BuildKit caches over real blobs, for the merge and prune tests
 * against the registry and local stores: base (key 1, blob L0) -> RUN -> COPY. Build A (minutes
 * 10-12) runs RUN key 2 (L1) and COPY key 3 (L2); build B (minutes 20-22) a changed RUN, key 12
 * (L3), and COPY key 13 (L4). Each build's cache holds its own three records.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { serializeCacheConfig, sortCacheConfig } from '../../src/cache/config-write.ts';
import { cacheManifest } from '../../src/cache/export.ts';
import type { CacheConfig } from '../../src/cache/index.ts';
import { CACHE_CONFIG_MEDIA_TYPE } from '../../src/cache/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import type { Descriptor } from '../../src/oci/index.ts';
import type { RegistryClient } from '../../src/registry/index.ts';
import type { SharedRegistry } from '../helpers/registry.ts';
import { config } from './_configs.ts';
import { pushCustomCache } from './_support.ts';

export const LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** Five layer blobs, L0..L4, of 1000 + 100 * i random bytes. */
export function layerBlobs(): { descriptor: Descriptor; bytes: Buffer }[] {
  return Array.from({ length: 5 }, (_, i) => {
    const bytes = randomBytes(1000 + 100 * i);
    return {
      descriptor: { mediaType: LAYER_TYPE, digest: digestBytes(bytes), size: bytes.length },
      bytes,
    };
  });
}

/** The caches of build A and build B over `blobs` (see the file comment), sorted. */
export function buildCaches(blobs: readonly { descriptor: Descriptor }[]): {
  a: CacheConfig;
  b: CacheConfig;
} {
  const digest = (i: number) => (blobs[i] as { descriptor: Descriptor }).descriptor.digest;
  const real = (shape: CacheConfig, order: readonly number[]): CacheConfig =>
    sortCacheConfig({
      ...shape,
      layers: shape.layers.map((layer, i) => ({ ...layer, blob: digest(order[i] as number) })),
    });
  const build = (run: number, copy: number, minute: number) =>
    config(
      [
        [0, -1],
        [1, 0],
        [2, 1],
      ],
      [
        { key: 1, results: [[0, minute]] },
        { key: run, results: [[1, minute + 1]], inputs: [[0]] },
        { key: copy, results: [[2, minute + 2]], inputs: [[1]] },
      ],
    );
  return { a: real(build(2, 3, 10), [0, 1, 2]), b: real(build(12, 13, 20), [0, 3, 4]) };
}

/** Upload the blobs `cache` names to `repo` and push the cache there as `repo:tag`. */
export async function pushCache(
  c: RegistryClient,
  registry: SharedRegistry,
  repo: string,
  tag: string,
  cache: CacheConfig,
  blobs: readonly { descriptor: Descriptor; bytes: Buffer }[],
): Promise<string> {
  const byDigest = new Map(blobs.map((blob) => [blob.descriptor.digest, blob]));
  const repository = c.repository(registry.host, repo);
  const layers: Descriptor[] = [];
  for (const layer of cache.layers) {
    const blob = byDigest.get(layer.blob) as { descriptor: Descriptor; bytes: Buffer };
    await repository.uploadBlob(blob.descriptor, () => Readable.from([blob.bytes]));
    layers.push(blob.descriptor);
  }
  return pushCustomCache(c, registry, repo, tag, serializeCacheConfig(cache), layers);
}

/** Write `cache` and its blobs into the local store `dir` under `tag`; the manifest descriptor. */
export async function writeLocalCache(
  dir: string,
  tag: string,
  cache: CacheConfig,
  blobs: readonly { descriptor: Descriptor; bytes: Buffer }[],
): Promise<Descriptor> {
  const store = await LayoutStore.open(dir);
  const byDigest = new Map(blobs.map((blob) => [blob.descriptor.digest, blob]));
  const layers: Descriptor[] = [];
  for (const layer of cache.layers) {
    const blob = byDigest.get(layer.blob) as { descriptor: Descriptor; bytes: Buffer };
    await store.writeBytes(blob.descriptor, blob.bytes);
    layers.push(blob.descriptor);
  }
  const bytes = serializeCacheConfig(cache);
  const configDescriptor = {
    mediaType: CACHE_CONFIG_MEDIA_TYPE,
    digest: digestBytes(bytes),
    size: bytes.length,
  };
  await store.writeBytes(configDescriptor, bytes);
  const manifest = cacheManifest('image-manifest', configDescriptor, layers);
  await store.writeBytes(manifest.descriptor, manifest.bytes);
  await store.putTag(tag, manifest.descriptor);
  return manifest.descriptor;
}
