import { LayoutStore } from '../layout/index.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import { serializeCacheConfig } from './config-write.ts';
import {
  type CacheCopyResult,
  CacheExportEmptyError,
  type CacheTargetInput,
  type CopyCacheOptions,
  copyCache,
} from './copy.ts';
import {
  assertInlineKept,
  derivedCacheSource,
  exportTargets,
  withoutLayerAnnotations,
} from './derived-source.ts';
import { openCacheSource } from './import.ts';
import { type CachePruneCounts, type PruneCacheOptions, pruneCacheConfig } from './prune.ts';
import { type CacheSourceInput, isCacheSource } from './source.ts';

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
 */
export async function pruneCache(
  from: CacheSourceInput,
  to: CacheTargetInput | readonly CacheTargetInput[],
  options: PruneCachesOptions = {},
): Promise<CachePruneResult> {
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const source = isCacheSource(from) ? from : await openCacheSource(from, { ...options, client });
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
  };
}
