import { InvalidDigestError, isDigest } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { formatReference } from '../reference/index.ts';
import type { Remote } from '../remote/remote-index.ts';
import {
  type CacheConfig,
  type CacheLayer,
  type CacheRecord,
  markValidatedCacheConfig,
} from './config.ts';
import { formatCsvFields } from './csv.ts';
import { CacheGraph } from './graph.ts';
import type { CacheImportSource } from './options.ts';

/**
 * How a cache travels: an image manifest whose config is the cache config (`image-manifest`,
 * BuildKit's default), an OCI index or Docker manifest list whose last entry is the config, or
 * inline in image configs (`moby.buildkit.cache.v0`).
 */
export type CacheFormat = 'image-manifest' | 'index' | 'manifest-list' | 'inline';

/**
 * A BuildKit cache opened for reading: its manifest and parsed config. No layer has been
 * fetched; `remote` can still copy every blob.
 */
export interface CacheSource {
  /** The source as a `--from` value, e.g. `type=registry,ref=host/repo:tag`. */
  readonly name: string;
  readonly spec: CacheImportSource;
  /** The cache manifest (for an inline cache: the image or index carrying it). */
  readonly remote: Remote;
  readonly format: CacheFormat;
  /** The cache config blob; undefined for an inline cache, whose config is derived. */
  readonly configDescriptor: Descriptor | undefined;
  /** The config as parsed (inline: as derived from the image configs and layers). */
  readonly config: CacheConfig;
  /**
   * Lookup graph over the usable part of `config`: results whose every blob the manifest lists.
   * BuildKit drops the other results on import, so they can never hit.
   */
  readonly graph: CacheGraph;
  /** Layer descriptors in manifest order (annotations carry diffID and creation time). */
  readonly layers: readonly Descriptor[];
  /** The same descriptors by blob digest. */
  readonly blobs: ReadonlyMap<string, Descriptor>;
}

/** A cache to read: already opened, or an import (`--from` CSV string or parsed). */
export type CacheSourceInput = CacheSource | CacheImportSource | string;

/** True when `input` is an opened {@link CacheSource}. */
export function isCacheSource(input: CacheSourceInput): input is CacheSource {
  return typeof input === 'object' && 'graph' in input;
}

/** The parts a cache source is made of; {@link createCacheSource} derives the rest. */
export interface CacheSourceParts {
  readonly spec: CacheImportSource;
  readonly remote: Remote;
  readonly format: CacheFormat;
  readonly configDescriptor: Descriptor | undefined;
  readonly config: CacheConfig;
  readonly layers: readonly Descriptor[];
}

/** Assemble a {@link CacheSource}: blob map, usable graph and display name. */
export function createCacheSource(parts: CacheSourceParts): CacheSource {
  const blobs = new Map<string, Descriptor>();
  for (const layer of parts.layers) if (!blobs.has(layer.digest)) blobs.set(layer.digest, layer);
  return {
    ...parts,
    name: cacheSourceName(parts.spec),
    graph: CacheGraph.from(usableConfig(parts.config, blobs)),
    blobs,
  };
}

/** Throw InvalidDigestError unless every key looks like a cache key (a digest, any case). */
export function assertCacheKeys(keys: readonly string[]): void {
  for (const key of keys) {
    if (!isDigest(key.toLowerCase())) {
      throw new InvalidDigestError(key, 'a cache key is a digest such as sha256:<64 hex digits>');
    }
  }
}

/** A cache import as the `--from` CSV value that names it (never with a service's token). */
export function cacheSourceName(spec: CacheImportSource): string {
  if (spec.type === 'registry')
    return formatCsvFields(['type=registry', `ref=${formatReference(spec.ref)}`]);
  if (spec.type === 'service') return formatCsvFields(['type=service', `url=${spec.url}`]);
  const fields = ['type=local', `src=${spec.src}`, `tag=${spec.tag}`];
  return formatCsvFields(spec.digest ? [...fields, `digest=${spec.digest}`] : fields);
}

/**
 * `config` without the results that load a blob `listed` lacks (as BuildKit's `Parse` skips
 * them); the same object when nothing is dropped. Indexes are unchanged, so it stays valid.
 * Cost O(layers + results).
 */
function usableConfig(config: CacheConfig, listed: ReadonlyMap<string, Descriptor>): CacheConfig {
  const { layers } = config;
  const state = new Int8Array(layers.length); // 0 unknown, 1 usable chain, -1 not
  const usable = (top: number): boolean => {
    const walk: number[] = [];
    let i = top;
    while (i !== -1 && state[i] === 0) {
      walk.push(i);
      i = (layers[i] as CacheLayer).parent;
    }
    let ok = i === -1 || state[i] === 1;
    // Back down the walk: a layer is usable when its blob is listed and its parent is usable.
    for (let k = walk.length - 1; k >= 0; k--) {
      const index = walk[k] as number;
      ok = ok && listed.has((layers[index] as CacheLayer).blob);
      state[index] = ok ? 1 : -1;
    }
    return state[top] === 1;
  };
  let dropped = false;
  const records = config.records.map((record): CacheRecord => {
    const results = record.results.filter((result) => usable(result.layer));
    const chains = record.chains.filter((chain) =>
      chain.layers.every((layer) => listed.has((layers[layer] as CacheLayer).blob)),
    );
    if (results.length === record.results.length && chains.length === record.chains.length) {
      return record;
    }
    dropped = true;
    return { ...record, results, chains };
  });
  if (!dropped) return config;
  const pruned: CacheConfig = { layers, records };
  markValidatedCacheConfig(pruned);
  return pruned;
}
