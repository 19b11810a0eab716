import { digestBytes } from '../digest/index.ts';
import { OciferryError } from '../errors.ts';
import { LayoutStore } from '../layout/index.ts';
import { type CopyEvent, type CopyResult, copyToMany } from '../push/index.ts';
import { formatReference, type Reference } from '../reference/index.ts';
import type { Descriptor } from '../registry/oci.ts';
import { MultiProvider } from '../remote/multi-provider.ts';
import { contextOf } from '../remote/ociferry-context.ts';
import { type Remote, remoteFromBytes } from '../remote/remote-index.ts';
import { BytesProvider } from './bytes-provider.ts';
import { CACHE_CONFIG_MEDIA_TYPE, type CacheConfig } from './config.ts';
import { serializeCacheConfig, sortCacheConfig } from './config-write.ts';
import { formatCsvFields } from './csv.ts';
import { CacheOptionsError } from './errors.ts';
import { type CacheWrapperFormat, cacheManifest, wrapperFormat } from './export.ts';
import { compareGoTimes } from './go-time.ts';
import {
  type FoundCache,
  findCache,
  loadCacheSource,
  type OpenCacheSourceOptions,
} from './import.ts';
import { type CacheExportTarget, type CacheMode, parseCacheExport } from './options.ts';
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
  /** Mode for every target, overriding theirs (a target without `mode=` is `min`, as in BuildKit). */
  mode?: CacheMode;
  /**
   * For `mode=min`: keep the records these keys name and everything they reach. Default: the
   * record holding the newest result (see {@link copyCache}).
   */
  keys?: readonly string[];
  /** `ignore-error` for every target, overriding theirs. */
  ignoreError?: boolean;
  /** Blob transfers at once per destination, default 8. */
  concurrency?: number;
  onEvent?: (event: CopyEvent) => void;
}

/** What happened at one destination. */
export type CacheExportOutcome =
  | (CopyResult & {
      readonly status: 'exported';
      /** The target as a `--to` value. */
      readonly target: string;
      readonly mode: CacheMode;
      readonly format: CacheWrapperFormat;
      /** False when the source manifest was copied byte for byte (digest kept). */
      readonly rebuilt: boolean;
    })
  | {
      readonly status: 'failed';
      readonly target: string;
      readonly code: string;
      readonly message: string;
    };

/**
 * Result of {@link copyCache}. The copy fields (digest, mediaType, size, tags) are those of the
 * first destination written (empty when none was); `blobs` and `requests` add up all of them.
 */
export interface CacheCopyResult extends CopyResult {
  /** The source as a `--from` value. */
  readonly source: string;
  readonly destinations: readonly CacheExportOutcome[];
  /** Ignored export failures and keys that selected nothing. */
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
 * once and shared by every destination (its config only when a destination needs a new wrapper;
 * never a layer). All destinations are written at once and each blob is read from the source
 * at most once for all of them (see `copyToMany`): skipped where present, mounted on the same
 * registry (a destination on the same registry as an earlier one mounts from it), else
 * streamed to every destination that needs it together (never to disk between registries).
 *
 * - `mode=max` with the source's wrapper format copies the manifest byte for byte: same digest.
 * - `mode=max` in another format (`image-manifest`, `oci-mediatypes`) keeps the config blob and
 *   writes a new wrapper around it, as BuildKit's exporter would.
 * - `mode=min` keeps the records `keys` name, every record their inputs reach, and the layer
 *   chains of those records' results. Without keys it keeps what the record holding the newest
 *   result reaches (the final step of the last build; first record on a tie). The new config is
 *   sorted and written as BuildKit writes it, so the same selection always has the same digest.
 *
 * Inline caches always get a new config and wrapper. Local stores are written as BuildKit's
 * `ociindex.Put` does: `index.json` entry with `org.opencontainers.image.ref.name` = tag replacing
 * the previous holder of the tag; `reset=true` then deletes blobs no entry references.
 * `compression=` applies to new blobs only, so a copy keeps blobs as they are;
 * `force-compression=true` cannot be honoured without the layers and fails the export. An export
 * that cannot be prepared (options, `mode=min` selecting nothing) fails before anything is
 * written; one failing while written leaves the others to finish. With `ignore-error`, a failed
 * export becomes a warning; otherwise the first failure (in `to` order) is thrown at the end.
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
  const openOptions = { ...options, client };
  const source = isCacheSource(from)
    ? copySource(from, openOptions)
    : copySource(await findCache(from, openOptions), openOptions);
  // A manifest wrapping no config must be an inline cache: find out before any export.
  if (source.format === 'inline') await source.load();
  const warnings: string[] = [];
  const wrappers = new Map<string, Remote>();
  const exports: PlannedExport[] = [];
  for (const target of targets) {
    const name = cacheTargetName(target);
    const mode = options.mode ?? target.mode;
    const format = wrapperFormat(target);
    const ignore = options.ignoreError ?? target.ignoreError;
    try {
      if (target.forceCompression) {
        throw new CacheOptionsError(
          'force-compression=true needs the layers recompressed; a cache copy keeps blobs as they are',
          { key: 'force-compression' },
        );
      }
      const asIs = mode === 'max' && source.format === format;
      let remote = source.remote;
      if (!asIs) {
        const key = `${mode} ${format}`;
        remote =
          wrappers.get(key) ?? rebuild(await source.load(), mode, format, options.keys, warnings);
        wrappers.set(key, remote);
      }
      exports.push({ target, name, mode, format, ignore, remote, rebuilt: !asIs });
    } catch (error) {
      if (!ignore || options.signal?.aborted) throw error;
      exports.push({ target, name, mode, format, ignore, error });
    }
  }

  const writing = exports.filter((planned) => planned.remote !== undefined);
  const copied = await copyToMany(
    source.remote,
    writing.map((planned) => ({
      reference: cacheReference(planned.target),
      source: planned.remote,
    })),
    { client, concurrency: options.concurrency, signal: options.signal, onEvent: options.onEvent },
  );
  const destinations: CacheExportOutcome[] = [];
  let failure: { error: unknown } | undefined;
  for (const planned of exports) {
    const { target, name, mode, format } = planned;
    let error = planned.error;
    const outcome = copied.destinations[writing.indexOf(planned)];
    if (outcome?.status === 'copied') {
      try {
        if (target.type === 'local' && target.reset) {
          await (await LayoutStore.open(target.dest)).gc({ signal: options.signal });
        }
        destinations.push({
          ...outcome.result,
          status: 'exported',
          target: name,
          mode,
          format,
          rebuilt: planned.rebuilt ?? false,
        });
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
    warnings.push(`export to ${name} failed (ignore-error=true): ${message}`);
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
    converted: first?.converted ?? new Map(),
    blobs: copied.blobs,
    requests: client.requestCount - before,
    source: source.name,
    destinations,
    warnings,
  };
}

/** One `--to` as prepared for the copy: the remote to write, or why there is none. */
interface PlannedExport {
  readonly target: CacheExportTarget;
  readonly name: string;
  readonly mode: CacheMode;
  readonly format: CacheWrapperFormat;
  readonly ignore: boolean;
  readonly remote?: Remote;
  /** False when the source manifest goes as it is (digest kept). */
  readonly rebuilt?: boolean;
  readonly error?: unknown;
}

/** Where an export writes, as a reference. */
function cacheReference(target: CacheExportTarget): Reference {
  return target.type === 'registry'
    ? target.ref
    : { kind: 'layout', path: target.dest, tag: target.tag };
}

/** The source of a copy: what a copy as is needs, and the whole source loaded on demand. */
interface CopySource {
  readonly name: string;
  readonly remote: Remote;
  readonly format: CacheFormat;
  /** The source with its config (loaded once, on the first call). */
  load(): Promise<CacheSource>;
}

function copySource(from: CacheSource | FoundCache, options: OpenCacheSourceOptions): CopySource {
  if ('graph' in from) {
    return { name: from.name, remote: from.remote, format: from.format, load: async () => from };
  }
  let loaded: Promise<CacheSource> | undefined;
  return {
    name: from.name,
    remote: from.remote,
    format: from.wrapped?.format ?? 'inline',
    load: () => {
      loaded ??= loadCacheSource(from, options);
      return loaded;
    },
  };
}

/** A cache export as the `--to` CSV value that names it. */
export function cacheTargetName(target: CacheExportTarget): string {
  const fields =
    target.type === 'registry'
      ? ['type=registry', `ref=${formatReference(target.ref)}`]
      : ['type=local', `dest=${target.dest}`, `tag=${target.tag}`];
  return formatCsvFields(fields);
}

/** A new wrapper (and, unless copying a whole wrapped config, a new config) over the source's blobs. */
function rebuild(
  source: CacheSource,
  mode: CacheMode,
  format: CacheWrapperFormat,
  keys: readonly string[] | undefined,
  warnings: string[],
): Remote {
  const context = source.remote.context;
  const provider = new MultiProvider({ fallback: context.provider });
  let config: Descriptor;
  let layers: readonly Descriptor[];
  if (mode === 'max' && source.configDescriptor) {
    config = source.configDescriptor;
    layers = source.layers;
  } else {
    const selected = mode === 'max' ? source.config : minimalConfig(source, keys, warnings);
    const written = sortCacheConfig(withoutLayerAnnotations(selected));
    const bytes = serializeCacheConfig(written);
    config = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: digestBytes(bytes), size: bytes.length };
    provider.add(
      config.digest,
      new BytesProvider('cache config written for export').add(config.digest, bytes),
    );
    // Every blob is listed: the graph keeps only results whose blobs the manifest lists.
    layers = written.layers.map((layer) => source.blobs.get(layer.blob) as Descriptor);
  }
  const manifest = cacheManifest(format, config, layers);
  return remoteFromBytes(manifest.descriptor, manifest.bytes, { ...context, provider });
}

/** What `mode=min` keeps (see {@link copyCache}); CacheExportEmptyError when that has no layer. */
function minimalConfig(
  source: CacheSource,
  keys: readonly string[] | undefined,
  warnings: string[],
): CacheConfig {
  const { graph } = source;
  let roots: (string | number)[];
  if (keys) {
    roots = keys.filter((key) => graph.has(key));
    for (const key of keys) {
      if (!graph.has(key))
        warnings.push(`key ${key} is not in ${source.name}; nothing kept for it`);
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

/** The config with its layers' annotations dropped: the wrapper's descriptors carry those facts. */
function withoutLayerAnnotations(config: CacheConfig): CacheConfig {
  if (!config.layers.some((layer) => layer.annotations)) return config;
  return { ...config, layers: config.layers.map(({ annotations: _, ...layer }) => layer) };
}
