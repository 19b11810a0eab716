import type { Readable } from 'node:stream';
import { SizeExceededError } from '../errors.ts';
import { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { Provider } from '../remote/provider.ts';
import { DEFAULT_CACHE_CONFIG_LIMIT } from './config.ts';
import { type ParsedCacheConfig, parseCacheConfig } from './config-parse.ts';
import { CacheConfigError } from './errors.ts';
import { type CacheImportCache, importCacheOf } from './import-cache.ts';

/** Options of {@link loadCacheConfig}. */
export interface LoadCacheConfigOptions {
  /** In-memory cache of parsed configs; default the default context's. */
  cache?: CacheImportCache;
  /**
   * Directory keeping validated configs by digest across processes (an OCI layout holding the
   * config blobs); re-verified and re-parsed on every load from disk. Default: none.
   */
  cacheDir?: string;
  /** Size budget of `cacheDir`; the configs used longest ago are removed beyond it. Default 512 MiB. */
  cacheDirMaxBytes?: number;
  /** Size cap of the config, default 16 MiB. */
  limit?: number;
  /** What the config belongs to, for messages (never with credentials). */
  origin?: string;
  signal?: AbortSignal;
}

const MESSAGE_PREFIX = 'invalid cache config: ';

/** Default size budget of a `cacheDir`: the configs used longest ago go first beyond it. */
export const DEFAULT_CACHE_DIR_MAX_BYTES = 512 * 1024 * 1024;

/**
 * The cache config `descriptor` names, from memory, else `cacheDir`, else `provider`. Refused
 * before any request when its declared size is over the cap (`SIZE_EXCEEDED`); otherwise read as a
 * stream, hashed and parsed in one pass, and capped again while streaming. A config that fails
 * to parse or verify is never kept.
 */
export function loadCacheConfig(
  descriptor: Descriptor,
  provider: Provider,
  options: LoadCacheConfigOptions = {},
): Promise<ParsedCacheConfig> {
  const { cache = importCacheOf(), cacheDir, limit = DEFAULT_CACHE_CONFIG_LIMIT, signal } = options;
  if (descriptor.size > limit)
    return Promise.reject(
      new SizeExceededError({ what: 'cache config', size: descriptor.size, limit }),
    );
  const what = `config ${descriptor.digest}${options.origin ? ` of ${options.origin}` : ''}`;
  const parse = (source: Readable) =>
    parseCacheConfig(source, { limit, expectedDigest: descriptor.digest, origin: what, signal });
  const fetch = () => provider.fetch(descriptor, { signal });
  return cache.config(descriptor.digest, async () => {
    try {
      return cacheDir === undefined
        ? await parse(await fetch())
        : await throughDisk(
            { dir: cacheDir, maxBytes: options.cacheDirMaxBytes ?? DEFAULT_CACHE_DIR_MAX_BYTES },
            descriptor,
            fetch,
            parse,
            signal,
          );
    } catch (error) {
      throw locateConfigError(error, what);
    }
  });
}

/**
 * Parse from the disk cache; on a miss (or a damaged entry) fetch into it first, then keep the
 * directory within its budget. A cache directory that cannot be written (read-only, full) is
 * skipped, not an error.
 */
async function throughDisk(
  { dir, maxBytes }: { dir: string; maxBytes: number },
  descriptor: Descriptor,
  fetch: () => Promise<Readable>,
  parse: (source: Readable) => Promise<ParsedCacheConfig>,
  signal: AbortSignal | undefined,
): Promise<ParsedCacheConfig> {
  const direct = async () => parse(await fetch());
  let store: LayoutStore;
  try {
    store = await LayoutStore.open(dir);
  } catch (error) {
    if (!isFileSystemError(error)) throw error;
    return direct();
  }
  const { digest } = descriptor;
  const drop = () => store.deleteBlob(digest).catch(() => false);
  if (await store.has(digest)) {
    try {
      const parsed = await parse(store.readBlob(digest));
      await store.touchBlob(digest);
      return parsed;
    } catch (error) {
      if (signal?.aborted) throw error;
      // Damaged or not a valid config after all: drop it and read the source again.
      await drop();
    }
  }
  try {
    await store.writeBlob(descriptor, fetch, { signal });
  } catch (error) {
    if (!isFileSystemError(error) || signal?.aborted) throw error;
    return direct();
  }
  // Best effort: a blob another process removes or reads meanwhile costs that reader a fetch.
  await store.prune({ maxBytes, keep: [digest], signal }).catch(() => undefined);
  try {
    return await parse(store.readBlob(digest));
  } catch (error) {
    await drop();
    throw error;
  }
}

/** A failure of the local filesystem (it names a path), not of the source or the bytes. */
function isFileSystemError(error: unknown): boolean {
  const { syscall, path } = (error ?? {}) as { syscall?: unknown; path?: unknown };
  return typeof syscall === 'string' && typeof path === 'string';
}

/** `error` with `where` (the config and where it came from) in front of its reason. */
export function locateConfigError(error: unknown, where: string): unknown {
  if (!(error instanceof CacheConfigError)) return error;
  const reason = error.message.startsWith(MESSAGE_PREFIX)
    ? error.message.slice(MESSAGE_PREFIX.length)
    : error.message;
  return new CacheConfigError(`${where}: ${reason}`, {
    record: error.record,
    layer: error.layer,
    cause: error,
  });
}
