import { contextOf } from '../remote/ociferry-context.ts';
import { type CacheHit, chainBlobs } from './check.ts';
import type { OpenCacheSourceOptions } from './import.ts';
import type { CacheKey } from './key.ts';
import { CacheKeyStore } from './match.ts';
import { openCacheSources } from './open-sources.ts';
import { BlobPresence } from './presence.ts';
import type { CacheSourceInput } from './source.ts';

/** Options of {@link lookupCacheKeys}. */
export interface LookupCacheKeysOptions extends OpenCacheSourceOptions {
  /** Blob existence checks in flight at once, default 8. */
  concurrency?: number;
}

/** What the caches hold for one key. */
export interface KeyLookup {
  /** The key's digest. */
  readonly key: string;
  /** How many records of the caches the key reaches (with or without a result). */
  readonly matched: number;
  /**
   * The result BuildKit would load for the key: the newest of the reached records' results
   * whose every blob exists; undefined when there is none (the step would run).
   */
  readonly hit?: CacheHit;
}

/** Result of {@link lookupCacheKeys}. */
export interface CacheKeyLookupResult {
  /** One entry per key, in the order asked. */
  readonly keys: readonly KeyLookup[];
  /** Always 0: manifests and configs are read, blobs only HEADed. */
  readonly layerBytesDownloaded: 0;
  /** HTTP exchanges made (token requests included). */
  readonly requests: number;
  /** Caches skipped because they do not exist. */
  readonly warnings: readonly string[];
}

/**
 * Look keys an engine computed up in imported caches as BuildKit's solver does: each key is
 * matched by its digest and, per input, by the keys it comes from and the links' selectors (see
 * {@link CacheKeyStore}), over all the caches side by side, and the newest result whose blobs
 * all exist (HEAD or stat) is the one BuildKit would load. This answers for one step given its
 * key; `explainCache` answers for a whole build (which steps never run because a later one hits).
 */
export async function lookupCacheKeys(
  keys: readonly CacheKey[],
  from: CacheSourceInput | readonly CacheSourceInput[],
  options: LookupCacheKeysOptions = {},
): Promise<CacheKeyLookupResult> {
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const { sources, warnings } = await openCacheSources(from, {
    ...options,
    client,
    skipOversized: true,
  });
  const store = new CacheKeyStore(sources);
  const presence = new BlobPresence(options);
  const found = await Promise.all(
    keys.map(async (key): Promise<KeyLookup> => {
      const items = store.match(key);
      const item = await presence.loadable(items);
      if (item?.result) {
        const { source, result } = item;
        const exists = await presence.check(
          source,
          result.layers.map((layer) => layer.blob),
        );
        const hit: CacheHit = {
          key: key.digest,
          source: source.name,
          createdAt: result.createdAt,
          chain: chainBlobs(source, result, exists),
        };
        return { key: key.digest, matched: items.length, hit };
      }
      return { key: key.digest, matched: items.length };
    }),
  );
  return {
    keys: found,
    layerBytesDownloaded: 0,
    requests: client.requestCount - before,
    warnings,
  };
}
