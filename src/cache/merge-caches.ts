import type { Descriptor } from '../oci/index.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import type { CacheConfig } from './config.ts';
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
import { CacheOptionsError } from './errors.ts';
import { openCacheSource } from './import.ts';
import { type CacheMergeStats, mergeCacheConfigs } from './merge.ts';
import { type CachePruneCounts, pruneCacheConfig } from './prune.ts';
import { type CacheSource, type CacheSourceInput, isCacheSource } from './source.ts';

/** Options of {@link mergeCaches}: those of `copyCache` (without keys), and a config size cap. */
export interface MergeCachesOptions extends Omit<CopyCacheOptions, 'keys'> {
  /**
   * Bytes the merged config may take: beyond it, the oldest results are dropped until it fits
   * (BuildKit refuses configs over 1 MiB). Default: no cap.
   */
  maxConfigSize?: number;
}

/** Result of {@link mergeCaches}: the copy's, plus what the merge did. */
export interface CacheMergeResult extends CacheCopyResult {
  /** The sources as `--from` values, in the order merged. */
  readonly sources: readonly string[];
  readonly merged: CacheMergeStats;
  /** Bytes of the config written. */
  readonly configSize: number;
  /**
   * When the merged config was over `maxConfigSize`: what was dropped to fit (the oldest
   * results, and the records and layers only they needed).
   */
  readonly dropped?: CachePruneCounts;
}

/**
 * Merge BuildKit caches into one and write it (see {@link mergeCacheConfigs} for what is one
 * record). Each source's manifest and config are read, never a layer; the merged cache is then
 * written as `copyCache` writes a cache: blobs already at a destination skipped, blobs on the
 * destination's registry mounted (from whichever source repository has them), the others
 * streamed from their own source. Its form is the first source's (an inline source's: an image
 * manifest) unless a target asks for another; a target asking `mode=min` keeps what the newest
 * result reaches, as a copy does. With `maxConfigSize`, the oldest results are dropped until
 * the config fits (and records and layers no remaining result needs with them).
 */
export async function mergeCaches(
  from: readonly CacheSourceInput[],
  to: CacheTargetInput | readonly CacheTargetInput[],
  options: MergeCachesOptions = {},
): Promise<CacheMergeResult> {
  if (from.length === 0) throw new CacheOptionsError('a merge needs at least one source');
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const openOptions = { ...options, client };
  const sources = await Promise.all(
    from.map((input) => (isCacheSource(input) ? input : openCacheSource(input, openOptions))),
  );
  const targets = exportTargets(to);
  assertInlineKept(sources, targets);
  const merged = mergeCacheConfigs(
    sources.map((source) => withoutLayerAnnotations(source.graph.config)),
  );
  const first = sources[0] as CacheSource;
  const derive = (config: CacheConfig) =>
    derivedCacheSource({
      name: `merge of ${sources.map((source) => source.name).join(' + ')}`,
      config,
      format: first.format === 'inline' ? 'image-manifest' : first.format,
      sources,
    });
  let derived = derive(merged.config);
  let dropped: CachePruneCounts | undefined;
  const configSize = () => (derived.configDescriptor as Descriptor).size;
  if (options.maxConfigSize !== undefined && configSize() > options.maxConfigSize) {
    const pruned = pruneCacheConfig(derived.config, { maxConfigSize: options.maxConfigSize });
    derived = derive(pruned.config);
    dropped = pruned.dropped;
  }
  if (derived.config.layers.length === 0) {
    throw new CacheExportEmptyError(
      dropped
        ? `no result fits in ${options.maxConfigSize} bytes of config`
        : 'no source has a result',
    );
  }
  const result = await copyCache(derived, targets, { ...options, client });
  return {
    ...result,
    requests: client.requestCount - before,
    sources: sources.map((source) => source.name),
    merged: merged.stats,
    configSize: configSize(),
    ...(dropped ? { dropped } : {}),
  };
}
