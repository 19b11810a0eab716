import {
  failedImportWarning,
  isFailedImport,
  type OpenCacheSourceOptions,
  openCacheSource,
} from './import.ts';
import { type CacheSource, type CacheSourceInput, isCacheSource } from './source.ts';

/** The caches a lookup searches, and a warning for each one skipped as a failed import. */
export interface OpenedSources {
  readonly sources: readonly CacheSource[];
  readonly warnings: readonly string[];
}

/**
 * Open the caches a lookup imports, in parallel. A cache BuildKit would fail to import (missing,
 * not a cache, malformed or oversized: see `isFailedImport`) is skipped with a warning naming it
 * and the problem, as BuildKit goes on without it; other errors (network, credentials) are
 * thrown, since they say nothing of what BuildKit would import.
 */
export async function openCacheSources(
  inputs: CacheSourceInput | readonly CacheSourceInput[],
  options: OpenCacheSourceOptions,
): Promise<OpenedSources> {
  const list: readonly CacheSourceInput[] = Array.isArray(inputs) ? inputs : [inputs];
  const warnings: string[] = [];
  const opened = await Promise.all(
    list.map(async (input) => {
      if (isCacheSource(input)) return input;
      try {
        return await openCacheSource(input, options);
      } catch (error) {
        if (!isFailedImport(error)) throw error;
        warnings.push(failedImportWarning(input, error));
        return undefined;
      }
    }),
  );
  return {
    sources: opened.filter((source): source is CacheSource => source !== undefined),
    warnings,
  };
}
