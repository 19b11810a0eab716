import {
  type CacheConfig,
  type CacheLayer,
  type CacheRecord,
  isValidatedCacheConfig,
  type LayerAnnotations,
  markValidatedCacheConfig,
  validateCacheConfig,
} from './config.ts';
import { CacheConfigError } from './errors.ts';
import { compareGoTimes } from './go-time.ts';

/** A record by index into `records`, or by cache key digest (any case; all records sharing it). */
export type RecordKey = number | string;

/** One layer of a result's chain. */
export interface ChainLayer {
  /** Index into the config's `layers`. */
  readonly index: number;
  readonly blob: string;
  readonly parentIndex: number;
  readonly annotations?: LayerAnnotations;
}

/** A result of a record with the layers it loads, bottom-up (the last one is the top). */
export interface GraphResult {
  readonly record: number;
  readonly digest: string;
  readonly createdAt: string;
  readonly layers: readonly ChainLayer[];
  /** True for a chained result (explicit layer list, inline cache), false for a parent chain. */
  readonly chained: boolean;
}

/** An input link of a record, resolved. */
export interface GraphLink {
  readonly selector?: string;
  /** Index of the source record. */
  readonly link: number;
  readonly digest: string;
}

/** Records and layers, as ascending indexes. */
export interface Reachable {
  readonly records: readonly number[];
  readonly layers: readonly number[];
}

/**
 * Read-only view of a cache config as a graph: records by digest, input links, layer chains.
 * Every walk keeps a visited set, so cost is O(records + links + layers), never O(paths): a
 * 64-level diamond (2^64 paths) walks as fast as its 128 records.
 */
export class CacheGraph {
  readonly config: CacheConfig;
  readonly #byDigest = new Map<string, number[]>();

  private constructor(config: CacheConfig) {
    this.config = config;
    config.records.forEach((record, index) => {
      const key = record.digest.toLowerCase();
      const list = this.#byDigest.get(key);
      if (list) list.push(index);
      else this.#byDigest.set(key, [index]);
    });
  }

  /** A graph over `config`, validated unless it came from `parseCacheConfig` (CacheConfigError). */
  static from(config: CacheConfig): CacheGraph {
    if (!isValidatedCacheConfig(config)) validateCacheConfig(config);
    return new CacheGraph(config);
  }

  /** Indexes of the records `key` names: all records with that digest, or the index itself. */
  indexesOf(key: RecordKey): readonly number[] {
    if (typeof key === 'number') {
      return Number.isInteger(key) && key >= 0 && key < this.config.records.length ? [key] : [];
    }
    return this.#byDigest.get(key.toLowerCase()) ?? [];
  }

  /** True when the config has a record for `key`. */
  has(key: RecordKey): boolean {
    return this.indexesOf(key).length > 0;
  }

  /** The record at an index, or the first record with a digest (see {@link indexesOf} for all). */
  record(key: RecordKey): CacheRecord | undefined {
    const index = this.indexesOf(key)[0];
    return index === undefined ? undefined : this.config.records[index];
  }

  /** Input groups of {@link record}(key), each link resolved to its source record's digest. */
  inputs(key: RecordKey): readonly (readonly GraphLink[])[] {
    const record = this.record(key);
    if (!record) return [];
    return record.inputs.map((group) =>
      group.map((input) => ({
        ...input,
        digest: (this.config.records[input.link] as CacheRecord).digest,
      })),
    );
  }

  /**
   * The layer chain ending at layer `index`, bottom-up. Throws CacheConfigError on a parent
   * loop (a chain longer than the layer list), which only a config changed after validation has.
   */
  chain(index: number): ChainLayer[] {
    const { layers } = this.config;
    const chain: ChainLayer[] = [];
    for (let i = index; i !== -1; ) {
      const layer = layers[i];
      if (layer === undefined || chain.length === layers.length) {
        throw new CacheConfigError(`layer ${index} has a broken parent chain (at layer ${i})`, {
          layer: index,
        });
      }
      chain.push(chainLayer(i, layer));
      i = layer.parent;
    }
    return chain.reverse();
  }

  /**
   * The newest result (by `createdAt`, first one on ties, as BuildKit's `bestResult`) among the
   * records `key` names, with its layers; undefined when they have none.
   */
  newestResult(key: RecordKey): GraphResult | undefined {
    let best:
      | { record: number; createdAt: string; layer?: number; chain?: readonly number[] }
      | undefined;
    for (const index of this.indexesOf(key)) {
      const record = this.config.records[index] as CacheRecord;
      for (const result of record.results) {
        if (!best || compareGoTimes(result.createdAt, best.createdAt) > 0) {
          best = { record: index, createdAt: result.createdAt, layer: result.layer };
        }
      }
      for (const chained of record.chains) {
        if (!best || compareGoTimes(chained.createdAt, best.createdAt) > 0) {
          best = { record: index, createdAt: chained.createdAt, chain: chained.layers };
        }
      }
    }
    if (!best) return undefined;
    const digest = (this.config.records[best.record] as CacheRecord).digest;
    return best.chain
      ? this.#chainedResult(best.record, digest, best.createdAt, best.chain)
      : this.#result(best.record, digest, best.createdAt, best.layer as number);
  }

  /** Every result of every record, in record order (results, then chained results). */
  allResults(): GraphResult[] {
    return this.config.records.flatMap((_, index) => this.resultsOf(index));
  }

  /** The results of the record at `index`: its results, then its chained results. */
  resultsOf(index: number): GraphResult[] {
    const record = this.config.records[index];
    if (!record) return [];
    return [
      ...record.results.map((result) =>
        this.#result(index, record.digest, result.createdAt, result.layer),
      ),
      ...record.chains.map((chained) =>
        this.#chainedResult(index, record.digest, chained.createdAt, chained.layers),
      ),
    ];
  }

  /**
   * Records reachable from `keys` going down their inputs (the keys' records included), and the
   * layers their results load: what a `mode=min` export of those keys needs. Unknown keys are
   * skipped.
   */
  reachableFrom(keys: Iterable<RecordKey>): Reachable {
    const { records, layers } = this.config;
    const seenRecords = new Uint8Array(records.length);
    const seenLayers = new Uint8Array(layers.length);
    const stack: number[] = [];
    for (const key of keys) {
      for (const index of this.indexesOf(key)) {
        if (seenRecords[index] === 0) {
          seenRecords[index] = 1;
          stack.push(index);
        }
      }
    }
    const markChain = (top: number) => {
      // Stop at the first layer already marked: its parents are marked too.
      for (let i = top; i !== -1 && seenLayers[i] === 0; i = (layers[i] as CacheLayer).parent) {
        seenLayers[i] = 1;
      }
    };
    for (let index = stack.pop(); index !== undefined; index = stack.pop()) {
      const record = records[index] as CacheRecord;
      for (const result of record.results) markChain(result.layer);
      for (const chained of record.chains)
        for (const layer of chained.layers) seenLayers[layer] = 1;
      for (const group of record.inputs) {
        for (const { link } of group) {
          if (seenRecords[link] === 0) {
            seenRecords[link] = 1;
            stack.push(link);
          }
        }
      }
    }
    return { records: marked(seenRecords), layers: marked(seenLayers) };
  }

  /**
   * A config holding only what {@link reachableFrom}(keys) returns, re-indexed, in the original
   * relative order (sort it with `sortCacheConfig` before export). Every link stays inside.
   */
  subset(keys: Iterable<RecordKey>): CacheConfig {
    const reachable = this.reachableFrom(keys);
    const newLayer = reindex(reachable.layers, this.config.layers.length);
    const newRecord = reindex(reachable.records, this.config.records.length);
    const at = (map: Int32Array, old: number) => map[old] as number;
    const config: CacheConfig = {
      layers: reachable.layers.map((old) => {
        const layer = this.config.layers[old] as CacheLayer;
        return layer.parent === -1 ? layer : { ...layer, parent: at(newLayer, layer.parent) };
      }),
      records: reachable.records.map((old) => {
        const record = this.config.records[old] as CacheRecord;
        return {
          ...record,
          results: record.results.map((r) => ({ ...r, layer: at(newLayer, r.layer) })),
          chains: record.chains.map((c) => ({
            ...c,
            layers: c.layers.map((l) => at(newLayer, l)),
          })),
          inputs: record.inputs.map((group) =>
            group.map((i) => ({ ...i, link: at(newRecord, i.link) })),
          ),
        };
      }),
    };
    markValidatedCacheConfig(config);
    return config;
  }

  #result(record: number, digest: string, createdAt: string, layer: number): GraphResult {
    return { record, digest, createdAt, layers: this.chain(layer), chained: false };
  }

  #chainedResult(
    record: number,
    digest: string,
    createdAt: string,
    indexes: readonly number[],
  ): GraphResult {
    const layers = indexes.map((i) => chainLayer(i, this.config.layers[i] as CacheLayer));
    return { record, digest, createdAt, layers, chained: true };
  }
}

function chainLayer(index: number, layer: CacheLayer): ChainLayer {
  const { blob, parent, annotations } = layer;
  return annotations
    ? { index, blob, parentIndex: parent, annotations }
    : { index, blob, parentIndex: parent };
}

function marked(seen: Uint8Array): number[] {
  const indexes: number[] = [];
  seen.forEach((flag, index) => {
    if (flag) indexes.push(index);
  });
  return indexes;
}

/** Old index to new index for the kept entries (`-1` for dropped ones). */
function reindex(kept: readonly number[], length: number): Int32Array {
  const map = new Int32Array(length).fill(-1);
  kept.forEach((old, index) => {
    map[old] = index;
  });
  return map;
}
