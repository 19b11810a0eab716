import { pipeline, type Readable } from 'node:stream';
import { type BlobStats, type CopyEvent, type CopyResult, copyToMany } from '../copy/index.ts';
import { type ErrorCode, OciferryError } from '../errors.ts';
import { LayoutStore } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { formatReference, type Reference } from '../reference/index.ts';
import type { RemoteContext } from '../remote/context.ts';
import { MultiProvider } from '../remote/multi-provider.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import type { Provider } from '../remote/provider.ts';
import { type Remote, remoteFromBytes } from '../remote/remote-index.ts';
import { countingStage } from '../util/counting.ts';
import { BytesProvider } from './bytes-provider.ts';
import type { CacheConfig } from './config.ts';
import { sortCacheConfig } from './config-write.ts';
import { formatCsvFields } from './csv.ts';
import { configBlob, withoutLayerAnnotations } from './derived-source.ts';
import { CacheOptionsError } from './errors.ts';
import { type CacheWrapperFormat, cacheManifest, givesForm, wrapperFormat } from './export.ts';
import { compareGoTimes } from './go-time.ts';
import {
  type FoundCache,
  findCache,
  loadCacheSource,
  type OpenCacheSourceOptions,
  type WrappedConfig,
} from './import.ts';
import {
  type CacheExportTarget,
  type CacheMode,
  type LocalCacheExport,
  parseCacheExport,
  type RegistryCacheExport,
  type ServiceCacheExport,
} from './options.ts';
import { pruneCacheConfig } from './prune.ts';
import { formRefusalWarning } from './readers.ts';
import { exportToService } from './service-cache.ts';
import {
  assertCacheKeys,
  type CacheFormat,
  type CacheSource,
  type CacheSourceInput,
  isCacheSource,
} from './source.ts';

/** Where a cache goes: an export (`--to` CSV string or parsed). */
export type CacheTargetInput = CacheExportTarget | string;

/** Options of {@link copyCache}. */
export interface CopyCacheOptions extends OpenCacheSourceOptions {
  /**
   * Mode for every target, overriding theirs. Where neither gives one, every record is kept
   * (`min` when `keys` are given).
   */
  mode?: CacheMode;
  /**
   * For `mode=min`: keep the records these keys name and everything they reach (default: the
   * record holding the newest result, see {@link copyCache}). Implies `mode=min` for targets
   * without a mode.
   */
  keys?: readonly string[];
  /** `ignore-error` for every target, overriding theirs. */
  ignoreError?: boolean;
  /** Blob transfers at once per destination, default 8. */
  concurrency?: number;
  onEvent?: (event: CopyEvent) => void;
  /**
   * Called with each warning as it arises: those about the targets before anything is written,
   * so that a caller sees them even when the copy then fails. The result lists them all too.
   */
  onWarning?: (warning: string) => void;
  /**
   * Bytes a cache config written may take (BuildKit refuses configs over 1 MiB): a bigger one
   * is rewritten without its oldest results until it fits, and the destination's `converted`
   * says how many were dropped. An inline cache copied as its image is left as it is.
   */
  maxConfigSize?: number;
}

/** What a copy changed of the cache at one destination (nothing: it went as it is). */
export interface CacheConversion {
  /** `min`: only the records the keys (or the newest result) reach were kept. */
  readonly mode?: 'min';
  /** The form written, when it is not the source's ({@link CacheCopyResult.sourceFormat}). */
  readonly form?: CacheWrapperFormat;
  /** Results dropped (the oldest) so that the config fits `maxConfigSize`. */
  readonly droppedForConfigSize?: number;
}

/** What happened at one destination. */
export type CacheExportOutcome =
  | (Omit<CopyResult, 'converted'> & {
      readonly status: 'exported';
      /** The target as a `--to` value. */
      readonly target: string;
      /** `min` when records were selected, `max` when every record of the source was kept. */
      readonly mode: CacheMode;
      /** The form written. */
      readonly format: CacheFormat;
      /** False when the source manifest was copied byte for byte (digest kept). */
      readonly rebuilt: boolean;
      /** What was converted; absent when the cache was copied as it is. */
      readonly converted?: CacheConversion;
    })
  | {
      readonly status: 'failed';
      readonly target: string;
      /** The error's code; `EXPORT_FAILED` for a failure that is not an ociferry error. */
      readonly code: ErrorCode | 'EXPORT_FAILED';
      readonly message: string;
    };

/**
 * Result of {@link copyCache}. The copy fields (digest, mediaType, size, tags) are those of the
 * first destination written (empty when none was); `blobs` and `requests` add up all of them.
 * `converted` is always empty: the per-destination `converted` says what changed.
 */
export interface CacheCopyResult extends CopyResult {
  /** The source as a `--from` value. */
  readonly source: string;
  /** The form of the source. */
  readonly sourceFormat: CacheFormat;
  readonly destinations: readonly CacheExportOutcome[];
  /** Ignored export failures, keys that selected nothing, forms a destination refuses. */
  readonly warnings: readonly string[];
}

/** A `mode=min` export would hold no layer: nothing the keys select has a result. */
export class CacheExportEmptyError extends OciferryError {
  constructor(message: string) {
    super('CACHE_EMPTY', `nothing to export: ${message}`);
  }
}

/**
 * Copy a BuildKit cache to one or more registries or local stores. The source manifest is read
 * once and shared by every destination (its config only when a destination needs a new config;
 * never a layer). All destinations are written at once and each blob is read from the source
 * at most once for all of them (see `copyToMany`): skipped where present, mounted on the same
 * registry (a destination on the same registry as an earlier one mounts from it), else
 * streamed to every destination that needs it together (never to disk between registries).
 *
 * - Without `mode=`, `image-manifest=` and `oci-mediatypes=` the cache goes as it is: the same
 *   manifest, byte for byte (same digest), and nothing but the manifest read. An inline cache
 *   (an image or index whose image configs carry `moby.buildkit.cache.v0`) is copied as that
 *   image, to a registry and to a local store alike, since BuildKit imports it from both; its
 *   image configs are read once to make sure it is a cache.
 * - `mode=max` keeps every record: as is when the form stays.
 * - `image-manifest=` / `oci-mediatypes=` set the form: each changes one property of the
 *   source's form and keeps the other (see `wrapperFormat`). A new form keeps the config blob
 *   and writes a new wrapper around it (the manifest is all that is read), as BuildKit's
 *   exporter would; an inline cache becomes a standalone one (its config derived from the
 *   image configs).
 * - `mode=min` keeps the records `keys` name, every record their inputs reach, and the layer
 *   chains of those records' results. Without keys it keeps what the record holding the newest
 *   result reaches (the final step of the last build; first record on a tie). The new config is
 *   sorted and written as BuildKit writes it, so the same selection always has the same digest.
 *   Its form is the source's unless a form key is given (an inline source: image-manifest).
 *
 * Each destination's `converted` says what changed. Before writing an index or Docker-list form
 * to a registry, the registry's `/v2/` challenge (the one ping every copy makes) is looked at: a
 * Harbor registry, which refuses those forms, gets a warning. Local stores are written as
 * BuildKit's `ociindex.Put` does: `index.json` entry with `org.opencontainers.image.ref.name` =
 * tag replacing the previous holder of the tag; `reset=true` then deletes blobs no entry
 * references. `compression=` applies to new blobs only, so a copy keeps blobs as they are;
 * `force-compression=true` cannot be honoured without the layers and fails the export. An export
 * that cannot be prepared (options, `mode=min` selecting nothing) fails before anything is
 * written; one failing while written leaves the others to finish. With `ignore-error`, a failed
 * export becomes a warning; otherwise the first failure (in `to` order) is thrown at the end.
 * `blobs.bytesDownloaded` counts the bytes of blobs that crossed the network: the config read to
 * rebuild (or the image configs of an inline cache), and the blobs streamed from a registry.
 */
export async function copyCache(
  from: CacheSourceInput,
  to: CacheTargetInput | readonly CacheTargetInput[],
  options: CopyCacheOptions = {},
): Promise<CacheCopyResult> {
  assertCacheKeys(options.keys ?? []);
  const client = options.client ?? contextOf(options).client;
  const before = client.requestCount;
  const targets = (Array.isArray(to) ? to : [to]).map((target: CacheTargetInput) =>
    typeof target === 'string' ? parseCacheExport(target) : target,
  );
  const warnings: string[] = [];
  const warn = (warning: string) => {
    warnings.push(warning);
    options.onWarning?.(warning);
  };
  const openOptions = { ...options, client };
  const source = isCacheSource(from)
    ? copySource(from, openOptions)
    : copySource(await findCache(from, openOptions), openOptions);
  // A manifest wrapping no config must be an inline cache: find out before any export.
  if (source.format === 'inline') await source.load();
  const wrappers = new Map<string, { remote: Remote; dropped: number }>();
  const exports: PlannedExport[] = [];
  for (const target of targets) {
    const name = cacheTargetName(target);
    const ignore = options.ignoreError ?? target.ignoreError;
    const select = (options.mode ?? target.mode ?? (options.keys ? 'min' : 'max')) === 'min';
    const format: CacheFormat =
      select || givesForm(target) ? wrapperFormat(target, source.format) : source.format;
    const converted: CacheConversion | undefined =
      select || format !== source.format
        ? {
            ...(select ? { mode: 'min' as const } : {}),
            ...(format === source.format ? {} : { form: format as CacheWrapperFormat }),
          }
        : undefined;
    const plan = { target, name, mode: select ? 'min' : 'max', format, ignore } as const;
    if (target.type === 'service') {
      // The service keeps records and blobs, not a manifest: exported as an engine would.
      exports.push({ ...plan, format: source.format, service: target, converted: undefined });
      continue;
    }
    try {
      if (target.forceCompression) {
        throw new CacheOptionsError(
          'force-compression=true needs the layers recompressed; a cache copy keeps blobs as they are',
          { key: 'force-compression' },
        );
      }
      let remote = source.remote;
      let conversion = converted;
      const { maxConfigSize } = options;
      const tooBig =
        maxConfigSize !== undefined && (source.wrapped?.config.size ?? 0) > maxConfigSize;
      if (converted || tooBig) {
        const key = `${select} ${format}`;
        const form = format as CacheWrapperFormat;
        const { context } = source.remote;
        const built =
          wrappers.get(key) ??
          (!select && source.wrapped && !tooBig
            ? { remote: rewrap(source.wrapped, context, form), dropped: 0 }
            : rebuild(await source.load(), context, select, form, { ...options, warn }));
        wrappers.set(key, built);
        remote = built.remote;
        if (built.dropped > 0) conversion = { ...converted, droppedForConfigSize: built.dropped };
      }
      exports.push({ ...plan, remote, converted: conversion });
    } catch (error) {
      if (!ignore || options.signal?.aborted) throw error;
      exports.push({ ...plan, error });
    }
  }

  const writing = exports.filter((planned) => planned.remote !== undefined);
  await warnOfRefusedForms(writing, client, options.signal, warn);
  const serving = exports.filter((planned) => planned.service !== undefined);
  const [copied, served] = await Promise.all([
    copyToMany(
      source.remote,
      writing.map((planned) => ({
        reference: cacheReference(planned.target as RegistryCacheExport | LocalCacheExport),
        source: planned.remote,
      })),
      {
        client,
        concurrency: options.concurrency,
        signal: options.signal,
        onEvent: options.onEvent,
        onWarning: warn,
      },
    ),
    Promise.all(
      serving.map(async (planned) => {
        try {
          const loaded = await source.load();
          const config =
            planned.mode === 'min'
              ? minimalConfig(loaded, options.keys, warn)
              : loaded.graph.config;
          const service = planned.service as ServiceCacheExport;
          return await exportToService(loaded, config, service, options);
        } catch (error) {
          return { error };
        }
      }),
    ),
  ]);
  const destinations: CacheExportOutcome[] = [];
  let failure: { error: unknown } | undefined;
  // The source's config bytes count once, at the first destination written.
  let loaded = source.bytesDownloaded();
  for (const planned of exports) {
    const { target, name, mode, format, converted } = planned;
    let error = planned.error;
    const outcome = copied.destinations[writing.indexOf(planned)];
    const exported = served[serving.indexOf(planned)];
    if (exported && !('error' in exported)) {
      destinations.push({
        digest: '',
        mediaType: '',
        size: 0,
        tags: [],
        blobs: exported.blobs,
        requests: 0,
        status: 'exported',
        target: name,
        mode,
        format,
        rebuilt: true,
        ...(mode === 'min' ? { converted: { mode: 'min' } } : {}),
      });
      continue;
    }
    if (exported) error = exported.error;
    if (outcome?.status === 'copied') {
      try {
        if (target.type === 'local' && target.reset) {
          await (await LayoutStore.open(target.dest)).gc({ signal: options.signal });
        }
        const { converted: _, blobs, ...result } = outcome.result;
        destinations.push({
          ...result,
          blobs: { ...blobs, bytesDownloaded: blobs.bytesDownloaded + loaded },
          status: 'exported',
          target: name,
          mode,
          format,
          rebuilt: converted !== undefined,
          ...(converted ? { converted } : {}),
        });
        loaded = 0;
        continue;
      } catch (gcError) {
        error = gcError;
      }
    } else if (outcome) {
      error = outcome.error;
    }
    if (!planned.ignore || options.signal?.aborted) {
      failure ??= { error };
      continue;
    }
    const message = error instanceof Error ? error.message : String(error);
    warn(`export to ${name} failed (ignore-error=true): ${message}`);
    destinations.push({
      status: 'failed',
      target: name,
      code: error instanceof OciferryError ? error.code : 'EXPORT_FAILED',
      message,
    });
  }
  if (failure) throw failure.error;

  const first = destinations.find((d) => d.status === 'exported');
  return {
    digest: first?.digest ?? '',
    mediaType: first?.mediaType ?? '',
    size: first?.size ?? 0,
    tags: first?.tags ?? [],
    converted: new Map(),
    blobs: served.reduce(
      (sum, exported) => ('error' in exported ? sum : addStats(sum, exported.blobs)),
      { ...copied.blobs, bytesDownloaded: copied.blobs.bytesDownloaded + source.bytesDownloaded() },
    ),
    requests: client.requestCount - before,
    source: source.name,
    sourceFormat: source.format,
    destinations,
    warnings,
  };
}

/** One `--to` as prepared for the copy: the remote to write, or why there is none. */
interface PlannedExport {
  readonly target: CacheExportTarget;
  readonly name: string;
  readonly mode: CacheMode;
  readonly format: CacheFormat;
  readonly ignore: boolean;
  readonly remote?: Remote;
  /** A service target: exported through its API, not as a manifest. */
  readonly service?: ServiceCacheExport;
  /** What the remote changes of the source; undefined when it is the source as it is. */
  readonly converted?: CacheConversion;
  readonly error?: unknown;
}

/** Warn before writing a form a destination registry is known to refuse (see `readers.ts`). */
async function warnOfRefusedForms(
  writing: readonly PlannedExport[],
  client: NonNullable<OpenCacheSourceOptions['client']>,
  signal: AbortSignal | undefined,
  warn: (warning: string) => void,
): Promise<void> {
  const found = await Promise.all(
    writing.map(async ({ target, name, format }) => {
      if (target.type !== 'registry' || (format !== 'index' && format !== 'manifest-list')) {
        return undefined;
      }
      // The copy's own ping, made early; a failure is the copy's to report.
      const challenge = await client.challenge(target.ref.registry, { signal }).catch(() => null);
      return formRefusalWarning(name, format, challenge);
    }),
  );
  for (const warning of found) if (warning) warn(warning);
}

/** Where an export writes, as a reference. */
function cacheReference(target: RegistryCacheExport | LocalCacheExport): Reference {
  return target.type === 'registry'
    ? target.ref
    : { kind: 'layout', path: target.dest, tag: target.tag };
}

/** The source of a copy: what a copy as is needs, and the whole source loaded on demand. */
interface CopySource {
  readonly name: string;
  readonly remote: Remote;
  readonly format: CacheFormat;
  /** The config the manifest wraps and its blob list; undefined for an inline cache. */
  readonly wrapped: WrappedConfig | undefined;
  /** The source with its config (loaded once, on the first call). */
  load(): Promise<CacheSource>;
  /** Bytes of blobs (config, image configs) downloaded by `load` so far. */
  bytesDownloaded(): number;
}

function copySource(from: CacheSource | FoundCache, options: OpenCacheSourceOptions): CopySource {
  if ('graph' in from) {
    const { configDescriptor: config, format, layers } = from;
    return {
      name: from.name,
      remote: from.remote,
      format,
      wrapped: config && { format, config, layers },
      load: async () => from,
      bytesDownloaded: () => 0,
    };
  }
  let loaded: Promise<CacheSource> | undefined;
  let downloaded = 0;
  return {
    name: from.name,
    remote: from.remote,
    format: from.wrapped?.format ?? 'inline',
    wrapped: from.wrapped,
    load: () => {
      // Read through a counting provider; the copy itself reads through the source's own.
      loaded ??= loadCacheSource(
        {
          ...from,
          remote: countingRemote(from.remote, (bytes) => {
            downloaded += bytes;
          }),
        },
        options,
      );
      return loaded;
    },
    bytesDownloaded: () => downloaded,
  };
}

/** `remote` read through a provider that reports the bytes crossing the network to `count`. */
function countingRemote(remote: Remote, count: (bytes: number) => void): Remote {
  const inner = remote.context.provider;
  const provider: Provider = {
    description: inner.description,
    ...(inner.location ? { location: inner.location } : {}),
    isLocal: (digest) => inner.isLocal?.(digest) === true,
    info: (digest, infoOptions) => inner.info(digest, infoOptions),
    fetch: async (descriptor, fetchOptions) => {
      const body = await inner.fetch(descriptor, fetchOptions);
      if (inner.isLocal?.(descriptor.digest)) return body;
      const counter = countingStage(count);
      pipeline(body, counter, () => undefined);
      return counter as Readable;
    },
  };
  return remoteFromBytes(remote.descriptor, remote.bytes, { ...remote.context, provider });
}

/** A cache export as the `--to` CSV value that names it. */
export function cacheTargetName(target: CacheExportTarget): string {
  const fields =
    target.type === 'registry'
      ? ['type=registry', `ref=${formatReference(target.ref)}`]
      : target.type === 'service'
        ? ['type=service', `url=${target.url}`]
        : ['type=local', `dest=${target.dest}`, `tag=${target.tag}`];
  return formatCsvFields(fields);
}

/** A new wrapper around a wrapped config and its blobs, config unchanged (nothing read). */
function rewrap(
  wrapped: WrappedConfig,
  context: RemoteContext,
  format: CacheWrapperFormat,
): Remote {
  const manifest = cacheManifest(format, wrapped.config, wrapped.layers);
  return remoteFromBytes(manifest.descriptor, manifest.bytes, context);
}

/**
 * A new config (the records `mode=min` selects, or all those of the source) in a new wrapper
 * over the source's blobs, read through `context` (the source's own provider); without its
 * oldest results when it would be over `maxConfigSize` (how many: `dropped`).
 */
function rebuild(
  source: CacheSource,
  context: RemoteContext,
  select: boolean,
  format: CacheWrapperFormat,
  options: {
    keys?: readonly string[];
    maxConfigSize?: number;
    warn: (warning: string) => void;
  },
): { remote: Remote; dropped: number } {
  const { keys, maxConfigSize, warn } = options;
  const selected = select ? minimalConfig(source, keys, warn) : source.graph.config;
  let written = sortCacheConfig(withoutLayerAnnotations(selected));
  let blob = configBlob(written);
  let dropped = 0;
  if (maxConfigSize !== undefined && blob.descriptor.size > maxConfigSize) {
    const pruned = pruneCacheConfig(written, { maxConfigSize });
    if (pruned.kept.results === 0) {
      throw new CacheExportEmptyError(
        `no result of ${source.name} fits in a config of ${maxConfigSize} bytes`,
      );
    }
    written = pruned.config;
    blob = configBlob(written);
    dropped = pruned.droppedForConfigSize;
  }
  const { descriptor: config, bytes } = blob;
  const provider = new MultiProvider({ fallback: context.provider }).add(
    config.digest,
    new BytesProvider('cache config written for export').add(config.digest, bytes),
  );
  // Every blob is listed: the graph keeps only results whose blobs the manifest lists.
  const layers = written.layers.map((layer) => source.blobs.get(layer.blob) as Descriptor);
  const manifest = cacheManifest(format, config, layers);
  return {
    remote: remoteFromBytes(manifest.descriptor, manifest.bytes, { ...context, provider }),
    dropped,
  };
}

/** What `mode=min` keeps (see {@link copyCache}); CacheExportEmptyError when that has no layer. */
function minimalConfig(
  source: CacheSource,
  keys: readonly string[] | undefined,
  warn: (warning: string) => void,
): CacheConfig {
  const { graph } = source;
  let roots: (string | number)[];
  if (keys) {
    roots = keys.filter((key) => graph.has(key));
    for (const key of keys) {
      if (!graph.has(key)) warn(`key ${key} is not in ${source.name}; nothing kept for it`);
    }
  } else {
    const newest = newestRecord(graph.config);
    roots = newest === undefined ? [] : [newest];
  }
  const config = graph.subset(roots);
  if (config.layers.length === 0) {
    throw new CacheExportEmptyError(
      keys
        ? `no record the keys select in ${source.name} has a result`
        : `${source.name} has no result`,
    );
  }
  return config;
}

/** Index of the record holding the newest result (first on a tie); undefined without results. */
function newestRecord(config: CacheConfig): number | undefined {
  let best: { index: number; createdAt: string } | undefined;
  config.records.forEach((record, index) => {
    const times = [...record.results, ...record.chains].map((result) => result.createdAt);
    for (const createdAt of times) {
      if (!best || compareGoTimes(createdAt, best.createdAt) > 0) best = { index, createdAt };
    }
  });
  return best?.index;
}

function addStats(a: BlobStats, b: BlobStats): BlobStats {
  return {
    mounted: a.mounted + b.mounted,
    skipped: a.skipped + b.skipped,
    uploaded: a.uploaded + b.uploaded,
    bytesUploaded: a.bytesUploaded + b.bytesUploaded,
    bytesDownloaded: a.bytesDownloaded + b.bytesDownloaded,
  };
}
