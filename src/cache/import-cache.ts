import { LRUCache } from 'lru-cache';
import {
  type ContextKey,
  defaultContext,
  type OciferryContext,
} from '../remote/ociferry-context.ts';
import { SingleFlight } from '../util/single-flight.ts';
import type { ParsedCacheConfig } from './config-parse.ts';

/** Options of {@link CacheImportCache}. */
export interface CacheImportCacheOptions {
  /** Parsed configs kept in memory, counted by their JSON size; default 64 MiB. */
  maxConfigBytes?: number;
  /**
   * How long a blob seen at a registry is trusted to still be there, so a repeated check sends
   * no HEAD for it; default 5 minutes, 0 to always ask.
   */
  presenceTtlMs?: number;
}

/**
 * What repeated cache imports reuse within a process: parsed configs by config digest (LRU) and
 * blobs recently seen at a registry. With it, checking an unchanged cache again costs one manifest
 * request. Configs on disk are the `cacheDir` option's business (see `loadCacheConfig`).
 */
export class CacheImportCache {
  readonly #configs: LRUCache<string, ParsedCacheConfig>;
  readonly #presenceTtlMs: number;
  /** Made on first use: its 100 000 slots cost 4 MiB and 10 ms, which only cache checks need. */
  #presentCache: LRUCache<string, true> | undefined;
  readonly #loading = new SingleFlight<string, ParsedCacheConfig>();

  constructor(options: CacheImportCacheOptions = {}) {
    const { maxConfigBytes = 64 * 1024 * 1024, presenceTtlMs = 5 * 60_000 } = options;
    this.#configs = new LRUCache({
      maxSize: maxConfigBytes,
      sizeCalculation: (parsed) => Math.max(1, parsed.size),
    });
    this.#presenceTtlMs = presenceTtlMs;
  }

  get #present(): LRUCache<string, true> | undefined {
    if (this.#presenceTtlMs > 0) {
      this.#presentCache ??= new LRUCache({ max: 100_000, ttl: this.#presenceTtlMs });
    }
    return this.#presentCache;
  }

  /** The config kept under `key`, without loading anything. */
  get(key: string): ParsedCacheConfig | undefined {
    return this.#configs.get(key);
  }

  /**
   * The config kept under `key` (a config digest, or a key naming a derived config), else the
   * result of `load`, kept when it succeeds. Concurrent calls for one key share one load.
   */
  config(key: string, load: () => Promise<ParsedCacheConfig>): Promise<ParsedCacheConfig> {
    const kept = this.#configs.get(key);
    if (kept) return Promise.resolve(kept);
    return this.#loading.do(key, async () => {
      const parsed = await load();
      this.#configs.set(key, parsed);
      return parsed;
    });
  }

  /** True when `digest` was seen at `location` (`host/repository`) within the presence TTL. */
  isPresent(location: string, digest: string): boolean {
    return this.#present?.get(`${location}@${digest}`) === true;
  }

  /** Record that `digest` exists at `location` (`host/repository`). */
  markPresent(location: string, digest: string): void {
    this.#present?.set(`${location}@${digest}`, true);
  }

  /** Forget everything (configs and presence). */
  clear(): void {
    this.#configs.clear();
    this.#presentCache?.clear();
  }
}

/** The import cache a library context keeps. */
const IMPORT_CACHE: ContextKey<CacheImportCache> = { create: () => new CacheImportCache() };

/** The import cache of `context` (default: the default context), made on first use. */
export function importCacheOf(context: OciferryContext = defaultContext()): CacheImportCache {
  return context.shared(IMPORT_CACHE);
}
