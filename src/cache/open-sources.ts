import { CacheNotFoundError, type OpenCacheSourceOptions, openCacheSource } from './import.ts';
import { type CacheSource, type CacheSourceInput, isCacheSource } from './source.ts';

/** The caches a lookup searches, and a warning for each one that does not exist. */
export interface OpenedSources {
  readonly sources: readonly CacheSource[];
  readonly warnings: readonly string[];
}

/**
 * Open the caches a lookup imports, in parallel. A cache that does not exist is skipped with a
 * warning, as BuildKit goes on without an import it cannot find; other errors are thrown.
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
        if (!(error instanceof CacheNotFoundError)) throw error;
        warnings.push(`${error.message}; skipped`);
        return undefined;
      }
    }),
  );
  return {
    sources: opened.filter((source): source is CacheSource => source !== undefined),
    warnings,
  };
}
