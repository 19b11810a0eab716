import { resolve } from 'node:path';
import { digestBytes } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { formatReference } from '../reference/index.ts';
import { MultiProvider } from '../remote/multi-provider.ts';
import { remoteFromBytes } from '../remote/remote-index.ts';
import { BytesProvider } from './bytes-provider.ts';
import { CACHE_CONFIG_MEDIA_TYPE, type CacheConfig } from './config.ts';
import { serializeCacheConfig } from './config-write.ts';
import { CacheConfigError, CacheOptionsError } from './errors.ts';
import { type CacheWrapperFormat, cacheManifest } from './export.ts';
import { type CacheExportTarget, type CacheImportSource, parseCacheExport } from './options.ts';
import { type CacheSource, createCacheSource } from './source.ts';

/** A config as the blob an export writes: its bytes and the descriptor that addresses them. */
export interface ConfigBlob {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/** The blob of a config that is sorted already (see `sortCacheConfig`). */
export function configBlob(config: CacheConfig): ConfigBlob {
  const bytes = serializeCacheConfig(config);
  return {
    descriptor: {
      mediaType: CACHE_CONFIG_MEDIA_TYPE,
      digest: digestBytes(bytes),
      size: bytes.length,
    },
    bytes,
  };
}

/** The config without its layers' annotations: a manifest's descriptors carry those facts. */
export function withoutLayerAnnotations(config: CacheConfig): CacheConfig {
  if (!config.layers.some((layer) => layer.annotations)) return config;
  return { ...config, layers: config.layers.map(({ annotations: _, ...layer }) => layer) };
}

/** What {@link derivedCacheSource} builds a cache from. */
export interface DerivedCacheParts {
  /** How messages name the new cache, e.g. `merge of A, B`. */
  readonly name: string;
  /** Sorted and valid, without layer annotations; every blob it names is in a source. */
  readonly config: CacheConfig;
  readonly format: CacheWrapperFormat;
  /** Where the blobs are read from: the first source listing a blob serves it. */
  readonly sources: readonly CacheSource[];
}

/**
 * A cache made in memory from other caches' blobs: a new config (served from memory) wrapped
 * in `format`, each layer read from the first source whose manifest lists its blob. Nothing is
 * fetched: copying it (`copyCache`) mounts, skips or streams each blob from its own source, as
 * a copy of that source would.
 */
export function derivedCacheSource(parts: DerivedCacheParts): CacheSource {
  const [first] = parts.sources;
  if (!first) throw new CacheConfigError('a derived cache needs at least one source');
  const blob = configBlob(parts.config);
  const provider = new MultiProvider({ description: parts.name });
  provider.add(
    blob.descriptor.digest,
    new BytesProvider('cache config written for export').add(blob.descriptor.digest, blob.bytes),
  );
  const layers = parts.config.layers.map((layer, index): Descriptor => {
    for (const source of parts.sources) {
      const descriptor = source.blobs.get(layer.blob);
      if (descriptor) {
        provider.add(layer.blob, source.remote.context.provider);
        return descriptor;
      }
    }
    throw new CacheConfigError(`layer ${index} (${layer.blob}) is in no source manifest`, {
      layer: index,
    });
  });
  const manifest = cacheManifest(parts.format, blob.descriptor, layers);
  const remote = remoteFromBytes(manifest.descriptor, manifest.bytes, {
    ...first.remote.context,
    ref: parts.name,
    provider,
  });
  const source = createCacheSource({
    spec: first.spec,
    remote,
    format: parts.format,
    configDescriptor: blob.descriptor,
    config: parts.config,
    layers,
  });
  return { ...source, name: parts.name };
}

/**
 * Refuse to write a derived cache where an inline source lives: the image carrying the inline
 * cache would be replaced by a standalone cache (CacheOptionsError, before anything is written).
 */
export function assertInlineKept(
  sources: readonly CacheSource[],
  targets: readonly CacheExportTarget[],
): void {
  const place = (cache: CacheImportSource | CacheExportTarget): string | undefined => {
    if (cache.type === 'registry') return formatReference(cache.ref);
    if (cache.type === 'local')
      return `${resolve('src' in cache ? cache.src : cache.dest)}:${cache.tag}`;
    return undefined; // a cache service holds no images
  };
  for (const source of sources) {
    if (source.format !== 'inline') continue;
    const at = place(source.spec);
    if (at !== undefined && targets.some((target) => place(target) === at)) {
      throw new CacheOptionsError(
        `${source.name} is an image carrying an inline cache: writing the new cache there would replace the image; give another --to`,
      );
    }
  }
}

/** `--to` values, parsed where given as CSV. */
export function exportTargets(
  to: CacheExportTarget | string | readonly (CacheExportTarget | string)[],
): CacheExportTarget[] {
  return (Array.isArray(to) ? to : [to]).map((target: CacheExportTarget | string) =>
    typeof target === 'string' ? parseCacheExport(target) : target,
  );
}
