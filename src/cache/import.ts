import { stat } from 'node:fs/promises';
import { type ErrorCode, OciferryError } from '../errors.ts';
import { BlobUnknownError, NotFoundInLayoutError } from '../layout/index.ts';
import { type Descriptor, DOCKER_MANIFEST_LIST } from '../oci/index.ts';
import { formatReference, type Reference } from '../reference/index.ts';
import { type RegistryClient, RegistryError } from '../registry/index.ts';
import type { BlobLocations } from '../remote/blob-locations.ts';
import { remoteContext } from '../remote/context.ts';
import type { ContextOptions } from '../remote/ociferry-context.ts';
import { openStore } from '../remote/open-store.ts';
import { type Remote, remoteFromBytes } from '../remote/remote-index.ts';
import { CACHE_CONFIG_MEDIA_TYPE, DEFAULT_CACHE_CONFIG_LIMIT } from './config.ts';
import { loadCacheConfig } from './config-load.ts';
import { type CacheImportCache, importCacheOf } from './import-cache.ts';
import { readInlineCache } from './inline.ts';
import {
  type CacheImportSource,
  type LocalCacheImport,
  parseCacheImport,
  type RegistryCacheImport,
} from './options.ts';
import { findServiceCache } from './service-cache.ts';
import {
  type CacheFormat,
  type CacheSource,
  cacheSourceName,
  createCacheSource,
} from './source.ts';

/** Options of {@link openCacheSource}. */
export interface OpenCacheSourceOptions extends ContextOptions {
  /** Registry client; default the context's. `registry.insecure` is the client's setting. */
  client?: RegistryClient;
  /** Parsed configs and recently seen blobs reused across calls; default the context's. */
  cache?: CacheImportCache;
  /** Directory keeping validated configs by digest across processes; default none. */
  cacheDir?: string;
  /** Size budget of `cacheDir`, the configs used longest ago removed beyond it; default 512 MiB. */
  cacheDirMaxBytes?: number;
  /** Size cap of a cache config (inline: of its records), default 16 MiB. */
  configSizeLimit?: number;
  /** Where learnt blob locations go (what later copies mount from); default the context's. */
  blobLocations?: BlobLocations;
  /** @deprecated Use {@link blobLocations}. */
  sources?: BlobLocations;
  signal?: AbortSignal;
}

/** The cache a source names is not there: no such tag, digest, repository or directory. */
export class CacheNotFoundError extends OciferryError {
  constructor(name: string, reason: string, options: { cause?: unknown } = {}) {
    super('CACHE_NOT_FOUND', `no cache at ${name}: ${reason}`, options);
  }
}

/** A manifest that is neither a BuildKit cache nor an image carrying an inline cache. */
export class NotACacheError extends OciferryError {
  constructor(name: string) {
    super(
      'NOT_A_CACHE',
      `${name} is not a BuildKit cache: no ${CACHE_CONFIG_MEDIA_TYPE} config in its manifest and no inline cache (moby.buildkit.cache.v0) in its image config`,
    );
  }
}

/**
 * Codes of the errors that make BuildKit skip a cache import (a warning, and the build goes on):
 * nothing there, not a cache, a manifest or config that is malformed, too large or not the bytes
 * its digest names, a blob the manifest lists that is gone.
 */
const FAILED_IMPORT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CACHE_NOT_FOUND',
  'NOT_A_CACHE',
  'CACHE_CONFIG_INVALID',
  'CONFIG_INVALID',
  'JSON_INVALID',
  'MANIFEST_INVALID',
  'SIZE_EXCEEDED',
  'DIGEST_MISMATCH',
  'BLOB_UNKNOWN',
  'MANIFEST_UNKNOWN',
]);

/**
 * True when `error`, thrown while opening a cache, is about the cache itself: one BuildKit skips
 * as a failed import (see {@link FAILED_IMPORT_CODES}). Failures to reach the source (network,
 * TLS, credentials, a 5xx) and aborts are not: they say nothing of what BuildKit, with its own
 * network and credentials, would import.
 */
export function isFailedImport(error: unknown): error is OciferryError {
  if (!(error instanceof OciferryError)) return false;
  if (error instanceof RegistryError) return error.status === 404;
  return FAILED_IMPORT_CODES.has(error.code);
}

/** The warning for a source skipped as a failed import: the source, the problem, `skipped`. */
export function failedImportWarning(source: CacheImportSource | string, error: Error): string {
  const name = cacheSourceName(typeof source === 'string' ? parseCacheImport(source) : source);
  const problem = error.message.includes(name) ? error.message : `${name}: ${error.message}`;
  return `${problem}; skipped`;
}

/** Image config size cap when reading an inline cache: the records may be base64 of 16 MiB. */
const IMAGE_CONFIG_LIMIT = 32 * 1024 * 1024;

/** A cache manifest found and read, its config not loaded yet. */
export interface FoundCache {
  readonly spec: CacheImportSource;
  readonly name: string;
  readonly remote: Remote;
  /** The config the manifest wraps; undefined when it wraps none (inline cache, or no cache). */
  readonly wrapped: WrappedConfig | undefined;
}

/** A cache config wrapped by a manifest, with the manifest's blob list. */
export interface WrappedConfig {
  readonly format: CacheFormat;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

/**
 * Open a cache for reading: fetch its manifest, find the cache config (the manifest's config,
 * the config entry of an index or Docker list, or inline cache in the image configs), then load
 * and parse that config. Never fetches a layer. A config already parsed in this process (or kept
 * in `cacheDir`) is not fetched again, so reopening an unchanged cache costs one manifest request.
 * A local source is read from its OCI layout without writing to it (read-only stores work).
 */
export async function openCacheSource(
  source: CacheImportSource | string,
  options: OpenCacheSourceOptions = {},
): Promise<CacheSource> {
  return loadCacheSource(await findCache(source, options), options);
}

/** The first half of {@link openCacheSource}: the manifest alone (one request). */
export async function findCache(
  source: CacheImportSource | string,
  options: OpenCacheSourceOptions = {},
): Promise<FoundCache> {
  const spec = typeof source === 'string' ? parseCacheImport(source) : source;
  const name = cacheSourceName(spec);
  if (spec.type === 'service')
    return { spec, name, ...(await findServiceCache(spec, name, options)) };
  const remote = await resolveCache(spec, name, options);
  return { spec, name, remote, wrapped: wrappedConfig(remote) };
}

/** The second half of {@link openCacheSource}: load the config (or the inline cache). */
export async function loadCacheSource(
  found: FoundCache,
  options: OpenCacheSourceOptions = {},
): Promise<CacheSource> {
  const { spec, name, remote, wrapped } = found;
  const cache = options.cache ?? importCacheOf(options.context);
  const limit = options.configSizeLimit ?? DEFAULT_CACHE_CONFIG_LIMIT;
  if (wrapped) {
    const parsed = await loadCacheConfig(wrapped.config, remote.context.provider, {
      cache,
      cacheDir: options.cacheDir,
      cacheDirMaxBytes: options.cacheDirMaxBytes,
      limit,
      origin: name,
      signal: options.signal,
    });
    return createCacheSource({
      spec,
      remote,
      format: wrapped.format,
      configDescriptor: wrapped.config,
      config: parsed.config,
      layers: wrapped.layers,
    });
  }
  const inline = await readInlineCache(remote, { cache, limit, signal: options.signal });
  if (!inline) throw new NotACacheError(name);
  return createCacheSource({
    spec,
    remote,
    format: 'inline',
    configDescriptor: undefined,
    config: inline.config,
    layers: inline.layers,
  });
}

/**
 * The manifest a cache source names, from its store: a registry tag or digest; a layout's tag
 * or digest (a manifest blob that `index.json` does not list included, as BuildKit reads it).
 */
async function resolveCache(
  spec: RegistryCacheImport | LocalCacheImport,
  name: string,
  options: OpenCacheSourceOptions,
): Promise<Remote> {
  // A local cache directory that does not exist is a missing cache, as for BuildKit.
  if (spec.type === 'local' && !(await isDirectory(spec.src))) {
    throw new CacheNotFoundError(name, `${spec.src} is not a directory`);
  }
  const reference = sourceReference(spec);
  const { signal } = options;
  try {
    const store = await openStore(reference, options);
    const { descriptor, bytes } = await store.fetchReference(reference.digest ?? reference.tag, {
      signal,
    });
    const context = remoteContext(store, formatReference(reference), {
      ...options,
      configSizeLimit: IMAGE_CONFIG_LIMIT,
    });
    return remoteFromBytes(descriptor, bytes, context);
  } catch (error) {
    const reason = notFound(error, reference);
    if (reason === undefined) throw error;
    throw new CacheNotFoundError(name, reason, { cause: error });
  }
}

/** A cache source as the reference of its manifest. */
function sourceReference(spec: RegistryCacheImport | LocalCacheImport): Reference {
  if (spec.type === 'registry') return spec.ref;
  const named = spec.digest ? { digest: spec.digest } : { tag: spec.tag };
  return { kind: 'layout', path: spec.src, ...named };
}

/** Why `error` means the cache is not there (no such manifest), else undefined. */
function notFound(error: unknown, reference: Reference): string | undefined {
  if (error instanceof RegistryError && error.status === 404) return error.message;
  if (error instanceof NotFoundInLayoutError || error instanceof BlobUnknownError) {
    return reference.digest
      ? `the store has no manifest ${reference.digest}`
      : `no tag ${reference.tag} in index.json`;
  }
  return undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (found) => found.isDirectory(),
    () => false,
  );
}

/** The cache config a manifest wraps, with its blob list; undefined when it wraps none. */
function wrappedConfig(remote: Remote): WrappedConfig | undefined {
  if (remote.kind === 'image') {
    const { config, layers } = remote.manifest;
    if (config.mediaType !== CACHE_CONFIG_MEDIA_TYPE) return undefined;
    return { format: 'image-manifest', config, layers };
  }
  // As BuildKit's importer: the last entry with the config media type wins; all others are blobs.
  const config = remote.manifests.findLast((entry) => entry.mediaType === CACHE_CONFIG_MEDIA_TYPE);
  if (!config) return undefined;
  return {
    format: remote.mediaType === DOCKER_MANIFEST_LIST ? 'manifest-list' : 'index',
    config,
    layers: remote.manifests.filter((entry) => entry.mediaType !== CACHE_CONFIG_MEDIA_TYPE),
  };
}
