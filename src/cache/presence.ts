import type { ContextOptions } from '../remote/ociferry-context.ts';
import { mapLimit } from '../util/limiter.ts';
import { compareGoTimes } from './go-time.ts';
import { type CacheImportCache, importCacheOf } from './import-cache.ts';
import type { CacheItem } from './match.ts';
import type { CacheSource } from './source.ts';

/** Options of {@link BlobPresence}. */
export interface BlobPresenceOptions extends ContextOptions {
  /** Remembers blobs seen at a registry for its presence TTL; default the context's. */
  cache?: CacheImportCache;
  /** Existence checks in flight at once, default 8. */
  concurrency?: number;
  signal?: AbortSignal;
}

/**
 * Whether the blobs of cache results exist where their cache lives: a HEAD request per blob at a
 * registry (a stat in a local store), each asked once per instance, none for a blob the import
 * cache saw at that registry within its presence TTL. Never downloads a blob.
 */
export class BlobPresence {
  readonly #cache: CacheImportCache;
  readonly #concurrency: number;
  readonly #signal: AbortSignal | undefined;
  readonly #answers = new Map<CacheSource, Map<string, Promise<boolean>>>();

  constructor(options: BlobPresenceOptions = {}) {
    this.#cache = options.cache ?? importCacheOf(options.context);
    this.#concurrency = options.concurrency ?? 8;
    this.#signal = options.signal;
  }

  /** Per blob of `blobs`, whether `source` has it; blobs asked before are not asked again. */
  async check(source: CacheSource, blobs: readonly string[]): Promise<Map<string, boolean>> {
    let known = this.#answers.get(source);
    if (!known) {
      known = new Map();
      this.#answers.set(source, known);
    }
    const where = source.remote.context.provider.location;
    const location = where && `${where.registry}/${where.repository}`;
    const pending: Array<{
      blob: string;
      settle: (found: boolean) => void;
      fail: (error: unknown) => void;
    }> = [];
    for (const blob of new Set(blobs)) {
      if (known.has(blob)) continue;
      if (location !== undefined && this.#cache.isPresent(location, blob)) {
        known.set(blob, Promise.resolve(true));
        continue;
      }
      let settle!: (found: boolean) => void;
      let fail!: (error: unknown) => void;
      const answer = new Promise<boolean>((resolve, reject) => {
        settle = resolve;
        fail = reject;
      });
      answer.catch(() => {});
      known.set(blob, answer);
      pending.push({ blob, settle, fail });
    }
    const provider = source.remote.context.provider;
    try {
      await mapLimit(
        pending,
        this.#concurrency,
        async ({ blob, settle }, _index, signal) => {
          const found = (await provider.info(blob, { signal })) !== undefined;
          if (found && location !== undefined) this.#cache.markPresent(location, blob);
          settle(found);
        },
        this.#signal,
      );
    } catch (error) {
      for (const { blob, fail } of pending) {
        fail(error);
        known.delete(blob);
      }
      throw error;
    }
    const answers = new Map<string, boolean>();
    for (const blob of blobs) answers.set(blob, await (known.get(blob) as Promise<boolean>));
    return answers;
  }

  /** The blobs of `item`'s result that its cache lacks (none for a loadable result). */
  async missing(item: CacheItem<CacheSource>): Promise<string[]> {
    const blobs = (item.result?.layers ?? []).map((layer) => layer.blob);
    const found = await this.check(item.source, blobs);
    return blobs.filter((blob) => found.get(blob) !== true);
  }

  /**
   * The record BuildKit loads among `items`: the newest result first, the next when a blob is
   * missing (its load fails and BuildKit tries the others); undefined when none loads.
   */
  async loadable(
    items: readonly CacheItem<CacheSource>[],
  ): Promise<CacheItem<CacheSource> | undefined> {
    const candidates = items
      .filter((item) => item.result !== undefined)
      .sort((a, b) => compareGoTimes(b.result?.createdAt ?? '', a.result?.createdAt ?? ''));
    for (const item of candidates) {
      if ((await this.missing(item)).length === 0) return item;
    }
    return undefined;
  }
}
