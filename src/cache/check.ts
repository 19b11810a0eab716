import type { Descriptor } from '../oci/index.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import { compareGoTimes } from './go-time.ts';
import type { GraphResult } from './graph.ts';
import type { OpenCacheSourceOptions } from './import.ts';
import { UNCOMPRESSED_ANNOTATION } from './inline.ts';
import { openCacheSources } from './open-sources.ts';
import { BlobPresence } from './presence.ts';
import { assertCacheKeys, type CacheSource, type CacheSourceInput } from './source.ts';

/** Options of {@link checkCache}. */
export interface CheckCacheOptions extends OpenCacheSourceOptions {
  /** Blob existence checks in flight at once, default 8. */
  concurrency?: number;
}

/** One blob of a hit's layer chain. */
export interface ChainBlob {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  /** Uncompressed digest, from the descriptor's `containerd.io/uncompressed` annotation. */
  readonly diffID?: string;
  /** Whether the source has the blob (a HEAD request, or a stat for a local store). */
  readonly exists: boolean;
}

/** A key with a result in some source. */
export interface CacheHit {
  /** The key as asked. */
  readonly key: string;
  /** The source whose result was chosen (see {@link checkCache}), as a `--from` value. */
  readonly source: string;
  /** Creation time of the result (RFC 3339). */
  readonly createdAt: string;
  /** Layers the result loads, bottom-up. */
  readonly chain: readonly ChainBlob[];
}

/** Result of {@link checkCache}; the `cache check --json` object. */
export interface CacheCheckResult {
  readonly hits: readonly CacheHit[];
  /** Keys no source has a usable result for, in the order asked. */
  readonly misses: readonly string[];
  /** Always 0: a check reads manifests and cache configs, never a layer. */
  readonly layerBytesDownloaded: 0;
  /** HTTP exchanges the check made (token requests included). */
  readonly requests: number;
  /** Sources skipped as BuildKit skips a failed import: missing, not a cache, or malformed. */
  readonly warnings: readonly string[];
  /** What was looked up: always `record-digest` (see {@link CHECK_MEANING}). */
  readonly lookup: 'record-digest';
  /** {@link CHECK_MEANING}, so a reader of the JSON knows what a hit is. */
  readonly meaning: string;
}

/** What a `cache check` hit is, and what it is not. */
export const CHECK_MEANING =
  "a hit is a cache record with this digest whose newest result's blobs the cache lists; it is not BuildKit's decision, which also matches each input's links (a step whose files changed keeps its digest) and skips steps below a hit: use cache explain for that";

/**
 * Whether the caches hold a record with each digest of `keys` that has a result: a lookup by
 * record digest alone, not BuildKit's decision (see {@link CHECK_MEANING}; `explainCache` and
 * `CacheKeyStore` match keys as BuildKit does). Downloads no layer: only manifests and
 * cache configs are read, and each blob of a hit's chain is checked with HEAD (or stat). Every key
 * is looked up in every source; when several have a result, the newest one wins (first source on
 * a tie), as BuildKit's solver picks among combined cache imports. A key whose records have no
 * result (or only results with blobs missing from the manifest) is a miss. Sources BuildKit would
 * fail to import are skipped with a warning (see `openCacheSources`). Blobs seen at a registry
 * within the import cache's presence TTL are not asked again, so repeating a check costs one
 * manifest request per source.
 */
export async function checkCache(
  sources: CacheSourceInput | readonly CacheSourceInput[],
  keys: readonly string[],
  options: CheckCacheOptions = {},
): Promise<CacheCheckResult> {
  assertCacheKeys(keys);
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const { sources: available, warnings } = await openCacheSources(sources, {
    ...options,
    client,
  });

  const chosen: Array<{ key: string; source: CacheSource; result: GraphResult }> = [];
  const misses: string[] = [];
  for (const key of keys) {
    let best: { source: CacheSource; result: GraphResult } | undefined;
    for (const source of available) {
      const result = source.graph.newestResult(key);
      if (result && (!best || compareGoTimes(result.createdAt, best.result.createdAt) > 0)) {
        best = { source, result };
      }
    }
    if (best) chosen.push({ key, ...best });
    else misses.push(key);
  }

  const presence = new BlobPresence(options);
  const answers = await Promise.all(
    chosen.map(({ source, result }) =>
      presence.check(
        source,
        result.layers.map((layer) => layer.blob),
      ),
    ),
  );
  const hits = chosen.map(
    ({ key, source, result }, index): CacheHit => ({
      key,
      source: source.name,
      createdAt: result.createdAt,
      chain: chainBlobs(source, result, answers[index] ?? new Map()),
    }),
  );
  return {
    hits,
    misses,
    layerBytesDownloaded: 0,
    requests: client.requestCount - before,
    warnings,
    lookup: 'record-digest',
    meaning: CHECK_MEANING,
  };
}

/** The blobs of a result's chain as the manifest lists them, and whether each exists. */
export function chainBlobs(
  source: CacheSource,
  result: GraphResult,
  exists: ReadonlyMap<string, boolean>,
): ChainBlob[] {
  return result.layers.map((layer) => {
    // Listed: the graph keeps only results whose every blob the manifest lists.
    const descriptor = source.blobs.get(layer.blob) as Descriptor;
    const diffID = descriptor.annotations?.[UNCOMPRESSED_ANNOTATION] ?? layer.annotations?.diffID;
    return {
      digest: descriptor.digest,
      size: descriptor.size,
      mediaType: descriptor.mediaType,
      ...(diffID ? { diffID } : {}),
      exists: exists.get(layer.blob) === true,
    };
  });
}
