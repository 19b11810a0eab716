import { LayoutStore } from '../layout/index.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import { serializeCacheConfig } from './config-write.ts';
import {
  type CacheCopyResult,
  CacheExportEmptyError,
  type CacheTargetInput,
  type CopyCacheOptions,
  cacheTargetName,
  copyCache,
} from './copy.ts';
import {
  assertInlineKept,
  derivedCacheSource,
  exportTargets,
  withoutLayerAnnotations,
} from './derived-source.ts';
import { CacheOptionsError } from './errors.ts';
import { openCacheSource } from './import.ts';
import {
  type CacheExportTarget,
  type CacheImportSource,
  parseCacheImport,
  type ServiceCache,
} from './options.ts';
import { type CachePruneCounts, type PruneCacheOptions, pruneCacheConfig } from './prune.ts';
import { sameServiceNamespace, serviceCacheClient } from './service-cache.ts';
import { type CacheSourceInput, cacheSourceName, isCacheSource } from './source.ts';

/** Options of {@link pruneCache}: the limits, and those of `copyCache` (without keys). */
export interface PruneCachesOptions
  extends Omit<PruneCacheOptions, 'blobSize'>,
    Omit<CopyCacheOptions, 'keys'> {}

/** What the collection of a local store removed after a prune. */
export interface StoreCollection {
  /** The store, as a `--to` value. */
  readonly target: string;
  /** Digests of the blobs deleted. */
  readonly deleted: readonly string[];
  readonly bytesFreed: number;
}

/** What a cache service did when its namespace was pruned in place (`POST /v1/prune`). */
export interface ServicePrune {
  /** The namespace, as a `--to` value. */
  readonly target: string;
  /** Blob rows the namespace let go (named by nothing kept), and their bytes. */
  readonly blobsReleased: number;
  readonly bytesReleased: number;
  /** Blobs then deleted from the service's store, held by no namespace any more. */
  readonly blobsDeleted: number;
  readonly bytesFreed: number;
}

/** Result of {@link pruneCache}: the copy's, plus what was kept and dropped. */
export interface CachePruneResult extends CacheCopyResult {
  readonly kept: CachePruneCounts;
  readonly dropped: CachePruneCounts;
  /** Results dropped by `maxConfigSize` alone. */
  readonly droppedForConfigSize: number;
  /** With `keepLast`: builds found and builds kept. */
  readonly builds?: { readonly found: number; readonly kept: number };
  /** Bytes of the config written. */
  readonly configSize: number;
  /** Unreferenced blobs deleted from each local store written (registries collect their own). */
  readonly collected: readonly StoreCollection[];
  /** Service namespaces pruned in place, by the service. */
  readonly services: readonly ServicePrune[];
}

/**
 * Prune a BuildKit cache (see {@link pruneCacheConfig}) and write the result, to the same place
 * or elsewhere, as `copyCache` writes a cache: its manifest and config are read, never a layer;
 * blobs already at a destination are skipped (a prune in place uploads only the new config),
 * mounted on the same registry, streamed otherwise. The form stays the source's (an inline
 * source's becomes an image manifest) unless a target asks for another. Blob sizes come from
 * the source manifest. A local store written is then collected as BuildKit's `reset=true` does:
 * blobs no `index.json` entry reaches are deleted, under the store's lock. A registry keeps the
 * blobs no manifest references until its own garbage collection runs. Keeping nothing is
 * refused (CACHE_EMPTY) before anything is written. When nothing is dropped, the cache is
 * copied as it is.
 *
 * A cache service namespace written where it is read from (`--to` its own namespace) is pruned
 * by the service itself (`POST /v1/prune`, with the same limits and rules), moving no blob; the
 * blobs it no longer needs leave its store. Other targets then get the pruned namespace. A
 * namespace written elsewhere is pruned here, and exporting to a namespace adds to what it holds.
 */
export async function pruneCache(
  from: CacheSourceInput,
  to: CacheTargetInput | readonly CacheTargetInput[],
  options: PruneCachesOptions = {},
): Promise<CachePruneResult> {
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const spec: CacheImportSource = isCacheSource(from)
    ? from.spec
    : typeof from === 'string'
      ? parseCacheImport(from)
      : from;
  if (spec.type === 'service') {
    const all = exportTargets(to);
    const inPlace: boolean[] = [];
    for (const target of all) {
      inPlace.push(
        target.type === 'service' &&
          (await sameServiceNamespace(spec, target, { signal: options.signal })),
      );
    }
    if (inPlace.includes(true)) {
      const result = await pruneServiceInPlace(spec, all, inPlace, { ...options, client });
      return { ...result, requests: client.requestCount - before };
    }
  }
  const source = isCacheSource(from) ? from : await openCacheSource(spec, { ...options, client });
  // Local stores are collected below, once, so that the report says what went (reset=true
  // would collect them in the copy first and leave nothing to report).
  const targets = exportTargets(to).map((target) =>
    target.type === 'local' ? { ...target, reset: false } : target,
  );
  const pruned = pruneCacheConfig(withoutLayerAnnotations(source.graph.config), {
    ...options,
    blobSize: (blob) => source.blobs.get(blob)?.size,
  });
  if (pruned.kept.results === 0) {
    throw new CacheExportEmptyError(`the limits keep no result of ${source.name}`);
  }
  const unchanged = pruned.config === source.config;
  if (!unchanged) assertInlineKept([source], targets);
  const written = unchanged
    ? source
    : derivedCacheSource({
        name: `${source.name} (pruned)`,
        config: pruned.config,
        format: source.format === 'inline' ? 'image-manifest' : source.format,
        sources: [source],
      });
  const result = await copyCache(written, targets, { ...options, client });
  const collected: StoreCollection[] = [];
  for (const [i, target] of targets.entries()) {
    const outcome = result.destinations[i];
    if (target.type !== 'local' || outcome?.status !== 'exported') continue;
    const store = await LayoutStore.open(target.dest, { create: false });
    const gc = await store.gc({ signal: options.signal });
    collected.push({ target: outcome.target, deleted: gc.deleted, bytesFreed: gc.bytesFreed });
  }
  return {
    ...result,
    requests: client.requestCount - before,
    kept: pruned.kept,
    dropped: pruned.dropped,
    droppedForConfigSize: pruned.droppedForConfigSize,
    ...(pruned.builds ? { builds: pruned.builds } : {}),
    configSize: written.configDescriptor?.size ?? serializeCacheConfig(pruned.config).length,
    collected,
    services: [],
  };
}

/**
 * Prune namespace `spec` on its service; then copy what it kept to the other targets (those
 * `inPlace` does not flag). `configSize` is the size of its ImportCache document after.
 */
async function pruneServiceInPlace(
  spec: ServiceCache,
  targets: readonly CacheExportTarget[],
  inPlace: readonly boolean[],
  options: PruneCachesOptions,
): Promise<Omit<CachePruneResult, 'requests'>> {
  const { signal } = options;
  const own = targets.filter((_, i) => inPlace[i]);
  if (own.some((target) => target.mode === 'min')) {
    throw new CacheOptionsError(
      'mode=min does not apply to a namespace pruned in place: the limits say what it keeps',
      { key: 'mode' },
    );
  }
  const service = serviceCacheClient(spec);
  const { keepLast, keepNewer, maxSize, maxConfigSize } = options;
  const answer = await service.prune({ keepLast, keepNewer, maxSize, maxConfigSize }, { signal });
  const others = targets.filter((_, i) => !inPlace[i]);
  const copied = others.length > 0 ? await copyCache(spec, others, options) : undefined;
  const configSize = (await service.importCacheBytes({ signal })).length;
  const noBlobs = { mounted: 0, skipped: 0, uploaded: 0, bytesUploaded: 0, bytesDownloaded: 0 };
  let next = 0;
  const destinations = targets.map((target, i) =>
    inPlace[i]
      ? {
          status: 'exported' as const,
          target: cacheTargetName(target),
          digest: '',
          mediaType: '',
          size: 0,
          tags: [],
          blobs: noBlobs,
          requests: 0,
          mode: 'max' as const,
          format: 'image-manifest' as const,
          rebuilt: false,
        }
      : (copied?.destinations[next++] as CacheCopyResult['destinations'][number]),
  );
  return {
    digest: copied?.digest ?? '',
    mediaType: copied?.mediaType ?? '',
    size: copied?.size ?? 0,
    tags: copied?.tags ?? [],
    converted: copied?.converted ?? new Map(),
    blobs: copied?.blobs ?? noBlobs,
    source: cacheSourceName(spec),
    sourceFormat: 'image-manifest',
    destinations,
    warnings: copied?.warnings ?? [],
    kept: answer.kept,
    dropped: answer.dropped,
    droppedForConfigSize: answer.droppedForConfigSize,
    ...(answer.builds ? { builds: answer.builds } : {}),
    configSize,
    collected: [],
    services: own.map((target) => ({
      target: cacheTargetName(target),
      blobsReleased: answer.blobs.released,
      bytesReleased: answer.blobs.releasedBytes,
      blobsDeleted: answer.blobs.deleted,
      bytesFreed: answer.blobs.bytesFreed,
    })),
  };
}
