import {
  failedImportWarning,
  isFailedImport,
  type OpenCacheSourceOptions,
  openCacheSource,
} from './import.ts';
import { oversizedConfigProblem } from './importable.ts';
import { type CacheSource, type CacheSourceInput, isCacheSource } from './source.ts';

/** How {@link openCacheSources} treats a config BuildKit refuses for its size (over 1 MiB). */
export interface OpenCacheSourcesOptions extends OpenCacheSourceOptions {
  /**
   * True to leave such a cache out, as BuildKit does (for answers that predict BuildKit); false
   * (default) to keep it and only warn.
   */
  skipOversized?: boolean;
}

/** The caches a lookup searches, and a warning for each one skipped as a failed import. */
export interface OpenedSources {
  readonly sources: readonly CacheSource[];
  readonly warnings: readonly string[];
}

/**
 * Open the caches a lookup imports, in parallel. A cache BuildKit would fail to import (missing,
 * not a cache, malformed or oversized: see `isFailedImport`) is skipped with a warning naming it
 * and the problem, as BuildKit goes on without it; other errors (network, credentials) are
 * thrown, since they say nothing of what BuildKit would import. A config over BuildKit's 1 MiB
 * import cap gets a warning, and is left out with `skipOversized`.
 */
export async function openCacheSources(
  inputs: CacheSourceInput | readonly CacheSourceInput[],
  options: OpenCacheSourcesOptions,
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
  const sources: CacheSource[] = [];
  for (const source of opened) {
    if (source === undefined) continue;
    const problem = oversizedConfigProblem(source);
    if (problem === undefined) sources.push(source);
    else if (options.skipOversized) warnings.push(`${problem}; skipped, as BuildKit skips it`);
    else {
      warnings.push(problem);
      sources.push(source);
    }
  }
  return { sources, warnings };
}
