import { CacheConfigError } from './errors.ts';

/** Media type of a BuildKit cache config blob. */
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.buildkit.cacheconfig.v0';

/**
 * Default size cap of a cache config: 16 MiB. BuildKit's own 1 MiB cap refuses real caches
 * (1.2-1.6 MB configs from 250-instruction Dockerfiles, moby/buildkit#7126).
 */
export const DEFAULT_CACHE_CONFIG_LIMIT = 16 * 1024 * 1024;

/**
 * A BuildKit cache config (`cache/remotecache/v1/types` `CacheConfig`): a flat list of layer
 * blobs chained by parent index, and the cache-key graph whose records point at them. Times are
 * kept as the RFC 3339 text Go writes, so a parsed config serializes back byte for byte.
 */
export interface CacheConfig {
  readonly layers: readonly CacheLayer[];
  readonly records: readonly CacheRecord[];
}

/** One blob in the layer list; with its parents (bottom-up) it forms a layer chain. */
export interface CacheLayer {
  /** Blob digest; the blob must be in the cache manifest. */
  readonly blob: string;
  /** Index of the parent layer, -1 for a root. An absent JSON `parent` means 0, not -1. */
  readonly parent: number;
  /** Written only by backends without an OCI manifest (gha, s3, azblob, cache services). */
  readonly annotations?: LayerAnnotations;
}

/** Descriptor facts a manifest-less backend stores beside a layer. */
export interface LayerAnnotations {
  readonly mediaType?: string;
  readonly diffID?: string;
  readonly size?: number;
  /** RFC 3339; `0001-01-01T00:00:00Z` (Go's zero time) when unset. */
  readonly createdAt: string;
}

/** A node of the cache-key graph. Several records may share a digest (same step, other inputs). */
export interface CacheRecord {
  /** Cache key digest. */
  readonly digest: string;
  /** JSON `layers`: results, each loaded with all its parent layers. */
  readonly results: readonly CacheResult[];
  /** JSON `chains`: results as explicit layer lists, parents ignored (inline cache only). */
  readonly chains: readonly ChainedResult[];
  /** One group per input of the step; each group lists alternative source records. */
  readonly inputs: readonly (readonly CacheInput[])[];
}

/** A result: the top layer of a chain. */
export interface CacheResult {
  /** Index into {@link CacheConfig.layers}. */
  readonly layer: number;
  /** RFC 3339; `0001-01-01T00:00:00Z` (Go's zero time) when unset. */
  readonly createdAt: string;
}

/** A result given as its full layer list, bottom-up. */
export interface ChainedResult {
  readonly layers: readonly number[];
  readonly createdAt: string;
}

/** A link to the record an input came from. */
export interface CacheInput {
  readonly selector?: string;
  /** Index into {@link CacheConfig.records}. */
  readonly link: number;
}

/** Configs known to pass {@link validateCacheConfig}, so a graph need not check them again. */
const validated = new WeakSet<CacheConfig>();

/** True when `config` passed {@link validateCacheConfig} (or was derived from one that did). */
export function isValidatedCacheConfig(config: CacheConfig): boolean {
  return validated.has(config);
}

/** Record that `config` is valid by construction (a re-indexed subset of a valid config). */
export function markValidatedCacheConfig(config: CacheConfig): void {
  validated.add(config);
}

/**
 * Check what BuildKit's `Parse` checks, for every layer and record (BuildKit only checks what
 * it reaches): indexes in range, no parent loop among layers, no input loop among records, no
 * empty input group. Cost O(layers + records + links). Throws {@link CacheConfigError}.
 */
export function validateCacheConfig(config: CacheConfig): void {
  if (validated.has(config)) return;
  validateLayers(config.layers);
  validateRecords(config);
  validated.add(config);
}

/** How errors name a record: index, and digest when there is one. */
export function describeRecord(index: number, digest: string | undefined): string {
  return digest ? `record ${index} (${digest})` : `record ${index}`;
}

function describeLayer(index: number, blob: string): string {
  return blob ? `layer ${index} (${blob})` : `layer ${index}`;
}

function validateLayers(layers: readonly CacheLayer[]): void {
  const count = layers.length;
  layers.forEach((layer, i) => {
    if (layer.parent !== -1 && !isIndex(layer.parent, count)) {
      throw new CacheConfigError(
        `${describeLayer(i, layer.blob)}: parent ${layer.parent} is out of range (${count} layers)`,
        { layer: i },
      );
    }
  });
  // Each layer has at most one parent: walk each chain once, colouring as we go.
  const state = new Uint8Array(count); // 0 new, 1 on the current walk, 2 known to reach a root
  const walk: number[] = [];
  for (let start = 0; start < count; start++) {
    let i = start;
    while (i !== -1 && state[i] === 0) {
      state[i] = 1;
      walk.push(i);
      i = (layers[i] as CacheLayer).parent;
    }
    if (i !== -1 && state[i] === 1) {
      const blob = (layers[i] as CacheLayer).blob;
      throw new CacheConfigError(`${describeLayer(i, blob)} is its own ancestor (looping layers)`, {
        layer: i,
      });
    }
    for (const j of walk) state[j] = 2;
    walk.length = 0;
  }
}

function validateRecords(config: CacheConfig): void {
  const { records, layers } = config;
  records.forEach((record, i) => {
    const fail = (problem: string): never => {
      throw new CacheConfigError(`${describeRecord(i, record.digest)}: ${problem}`, { record: i });
    };
    record.results.forEach((result, j) => {
      if (!isIndex(result.layer, layers.length)) {
        fail(`result ${j} names layer ${result.layer}, out of range (${layers.length} layers)`);
      }
    });
    record.chains.forEach((chain, j) => {
      for (const layer of chain.layers) {
        if (!isIndex(layer, layers.length)) {
          fail(`chain ${j} names layer ${layer}, out of range (${layers.length} layers)`);
        }
      }
    });
    record.inputs.forEach((group, j) => {
      if (group.length === 0) fail(`input ${j} is empty`);
      for (const input of group) {
        if (!isIndex(input.link, records.length)) {
          fail(
            `input ${j} links to record ${input.link}, out of range (${records.length} records)`,
          );
        }
      }
    });
  });
  findRecordLoop(records);
}

/** Iterative depth-first search over input links (records may chain 100k deep). */
function findRecordLoop(records: readonly CacheRecord[]): void {
  const state = new Uint8Array(records.length); // 0 new, 1 on the stack, 2 done
  const stack: Array<{ record: number; links: number[]; next: number }> = [];
  const open = (record: number) => {
    state[record] = 1;
    const links = (records[record] as CacheRecord).inputs.flatMap((group) =>
      group.map((input) => input.link),
    );
    stack.push({ record, links, next: 0 });
  };
  for (let root = 0; root < records.length; root++) {
    if (state[root] !== 0) continue;
    open(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as (typeof stack)[number];
      if (top.next === top.links.length) {
        state[top.record] = 2;
        stack.pop();
        continue;
      }
      const link = top.links[top.next++] as number;
      if (state[link] === 1) {
        const digest = (records[link] as CacheRecord).digest;
        throw new CacheConfigError(
          `${describeRecord(link, digest)} is its own input (looping records)`,
          {
            record: link,
          },
        );
      }
      if (state[link] === 0) open(link);
    }
  }
}

function isIndex(value: number, length: number): boolean {
  return Number.isInteger(value) && value >= 0 && value < length;
}
