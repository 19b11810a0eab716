import {
  type CacheConfig,
  type CacheLayer,
  type CacheRecord,
  markValidatedCacheConfig,
  validateCacheConfig,
} from './config.ts';
import { cacheConfigOrder, markSortedCacheConfig } from './config-write.ts';
import { compareGoTimes } from './go-time.ts';

/** Counts of a merge: what the sources held (added up) and what the merged config holds. */
export interface CacheMergeStats {
  /** Records of all sources, added up. */
  readonly recordsIn: number;
  /** Records of the merged config: one per distinct (key, links). */
  readonly records: number;
  /** Results and chained results of all sources, added up. */
  readonly resultsIn: number;
  /** Results of the merged config: one per record and layer chain, at its newest time. */
  readonly results: number;
  /** Layers the sources' results load, added up over the sources. */
  readonly layersIn: number;
  /** Layers of the merged config: one per distinct (blob, parent chain). */
  readonly layers: number;
}

/** A merged config and its counts. */
export interface MergedCacheConfig {
  /** Sorted as `sortCacheConfig` sorts (as BuildKit writes a config): serialize it as is. */
  readonly config: CacheConfig;
  readonly stats: CacheMergeStats;
}

/**
 * A record of the merged config being built: one result per layer (list), at its newest time.
 * Every object in it is the merge's own, so sorting can renumber them in place.
 */
interface MergedRecord {
  readonly digest: string;
  readonly inputs: { selector?: string; link: number }[][];
  results: { layer: number; createdAt: string }[];
  chains: { layers: number[]; createdAt: string }[];
}

/**
 * The union of several cache configs, deduplicated the way BuildKit's importer matches them: a
 * record is its cache key plus, per input, the set of (selector, linked record) pairs, linked
 * records compared the same way, so two records are one when their keys and everything their
 * inputs link to are the same. Identities are computed bottom-up once per record (a visited
 * map, iterative), so cost is O(records + links + layers) whatever the number of paths.
 *
 * Layers are one when their blob and parent chain are. A merged record keeps the results of
 * every copy, one per layer chain at its newest `createdAt`, newest first (BuildKit loads the
 * newest). Records without results are kept too (they link keys together); layers no result
 * loads are left out. Digests are compared case-insensitively and written as first seen.
 */
export function mergeCacheConfigs(configs: readonly CacheConfig[]): MergedCacheConfig {
  const state = new MergeState();
  let recordsIn = 0;
  let resultsIn = 0;
  let layersIn = 0;
  for (const config of configs) {
    validateCacheConfig(config);
    recordsIn += config.records.length;
    const merged = state.add(config);
    resultsIn += merged.results;
    layersIn += merged.layers;
  }
  const config = state.result();
  markValidatedCacheConfig(config);
  const results = config.records.reduce((n, r) => n + r.results.length + r.chains.length, 0);
  return {
    config,
    stats: {
      recordsIn,
      records: config.records.length,
      resultsIn,
      results,
      layersIn,
      layers: config.layers.length,
    },
  };
}

class MergeState {
  readonly #records: MergedRecord[] = [];
  readonly #layers: CacheLayer[] = [];
  /** Record identity (`digestId|group|group`) to merged index. */
  readonly #recordIds = new Map<string, number>();
  /** Layer identity (`blobId/parentIndex`) to merged index. */
  readonly #layerIds = new Map<string, number>();
  readonly #blobs = new Map<string, number>();
  readonly #selectorIds = new Map<string, number>([['', 0]]);
  readonly #selectors: string[] = [''];

  /** Merge one config in; returns how many results and layers it brought. */
  add(config: CacheConfig): { results: number; layers: number } {
    const layerOf = this.#layerMapper(config.layers);
    const recordOf = this.#recordIdentities(config.records);
    let results = 0;
    config.records.forEach((record, index) => {
      const target = this.#records[recordOf[index] as number] as MergedRecord;
      for (const result of record.results) {
        results++;
        const layer = layerOf(result.layer);
        const known = target.results.find((r) => r.layer === layer);
        if (!known) target.results.push({ layer, createdAt: result.createdAt });
        else if (compareGoTimes(result.createdAt, known.createdAt) > 0) {
          known.createdAt = result.createdAt;
        }
      }
      for (const chain of record.chains) {
        results++;
        const layers = chain.layers.map(layerOf);
        const same = (known: { layers: readonly number[] }) =>
          known.layers.length === layers.length && known.layers.every((l, i) => l === layers[i]);
        addNewest(target.chains, { layers, createdAt: chain.createdAt }, same);
      }
    });
    return { results, layers: layerOf.count() };
  }

  /**
   * The merged config, sorted as `sortCacheConfig` sorts it. The records are renumbered in
   * place rather than copied: a merge of 2 x 100k records would otherwise hold two copies.
   */
  result(): CacheConfig {
    const order = cacheConfigOrder({ layers: this.#layers, records: this.#records });
    const { newLayer, newRecord } = order;
    const layers = order.layers.map((old): CacheLayer => {
      const layer = this.#layers[old] as CacheLayer;
      return layer.parent === -1 ? layer : { ...layer, parent: newLayer[layer.parent] as number };
    });
    const records = order.records.map((old): CacheRecord => {
      const record = this.#records[old] as MergedRecord;
      for (const result of record.results) result.layer = newLayer[result.layer] as number;
      for (const chain of record.chains) {
        chain.layers = chain.layers.map((layer) => newLayer[layer] as number);
      }
      for (const group of record.inputs) {
        for (const input of group) input.link = newRecord[input.link] as number;
        group.sort((x, y) => x.link - y.link);
      }
      // Sorted copies: exact-sized, where lists grown by push keep room for 17 entries.
      record.results = record.results.slice().sort(newestFirst);
      if (record.chains.length > 0) record.chains = record.chains.slice().sort(newestFirst);
      return record;
    });
    const config = { layers, records };
    markSortedCacheConfig(config);
    return config;
  }

  /**
   * Merged index of every record of `records`, found bottom-up: a record's identity needs its
   * links' identities first. The links are first copied into flat arrays in one pass in record
   * order (where the parser allocated them, so memory is read in order), then walked in
   * post-order with a visited array (configs are validated, so there is no loop): O(records +
   * links), and no object is visited at random.
   */
  #recordIdentities(records: readonly CacheRecord[]): Int32Array {
    const links = flatLinks(records, (selector) => this.#selector(selector));
    const ids = new Int32Array(records.length).fill(-1);
    const next = new Int32Array(records.length); // per record on the stack: its next link
    const stack: number[] = [];
    for (let root = 0; root < records.length; root++) {
      if (ids[root] !== -1) continue;
      stack.push(root);
      next[root] = links.start[root] as number;
      while (stack.length > 0) {
        const index = stack[stack.length - 1] as number;
        const end = links.start[index + 1] as number;
        let at = next[index] as number;
        while (at < end && ids[links.target[at] as number] !== -1) at++;
        next[index] = at;
        if (at < end) {
          // Descend into the first link without an identity yet (not on the stack: no loops).
          const link = links.target[at] as number;
          next[link] = links.start[link] as number;
          stack.push(link);
          continue;
        }
        stack.pop();
        ids[index] = this.#identify(records[index] as CacheRecord, index, links, ids);
      }
    }
    return ids;
  }

  /** The merged index of record `index`, whose links all have merged indexes in `ids`. */
  #identify(record: CacheRecord, index: number, links: FlatLinks, ids: Int32Array): number {
    const digest = record.digest.toLowerCase();
    let key = `${digest.length}:${digest}`; // length first: no digest text can pass for links
    const groups: Pair[][] = [];
    let at = links.start[index] as number;
    for (const group of record.inputs) {
      const pairs: Pair[] = [];
      for (let k = 0; k < group.length; k++, at++) {
        pairs.push({
          selector: links.selector[at] as number,
          link: ids[links.target[at] as number] as number,
        });
      }
      if (pairs.length > 1) {
        pairs.sort((x, y) => x.link - y.link || x.selector - y.selector);
        for (let k = pairs.length - 1; k > 0; k--) {
          const prev = pairs[k - 1] as Pair;
          const pair = pairs[k] as Pair;
          if (prev.link === pair.link && prev.selector === pair.selector) pairs.splice(k, 1);
        }
      }
      key += '|';
      for (const { selector, link } of pairs) key += selector ? `${selector}.${link},` : `${link},`;
      groups.push(pairs);
    }
    const known = this.#recordIds.get(key);
    if (known !== undefined) return known;
    const merged = this.#records.length;
    this.#recordIds.set(key, merged);
    this.#records.push({
      digest: record.digest,
      inputs: groups.map((group) =>
        group.map(({ selector, link }) =>
          selector ? { selector: this.#selectors[selector] as string, link } : { link },
        ),
      ),
      results: [],
      chains: [],
    });
    return merged;
  }

  #selector(selector: string): number {
    let id = this.#selectorIds.get(selector);
    if (id === undefined) {
      id = this.#selectors.length;
      this.#selectorIds.set(selector, id);
      this.#selectors.push(selector);
    }
    return id;
  }

  /**
   * A function giving the merged index of a layer of `layers`, mapping its parent chain on
   * first use (memoised: each layer is walked once); `count()` tells how many it mapped.
   */
  #layerMapper(layers: readonly CacheLayer[]): ((index: number) => number) & { count(): number } {
    const memo = new Int32Array(layers.length).fill(-1);
    const walk: number[] = [];
    let mapped = 0;
    const layerOf = (index: number): number => {
      let i = index;
      while (i !== -1 && memo[i] === -1) {
        walk.push(i);
        i = (layers[i] as CacheLayer).parent;
      }
      let parent = i === -1 ? -1 : (memo[i] as number);
      for (let k = walk.length - 1; k >= 0; k--) {
        const at = walk[k] as number;
        const layer = layers[at] as CacheLayer;
        const key = `${intern(this.#blobs, layer.blob)}/${parent}`;
        let merged = this.#layerIds.get(key);
        if (merged === undefined) {
          merged = this.#layers.length;
          this.#layerIds.set(key, merged);
          this.#layers.push(
            layer.parent === parent ? layer : { ...layer, parent: parent as number },
          );
        }
        memo[at] = merged;
        parent = merged;
        mapped++;
      }
      walk.length = 0;
      return memo[index] as number;
    };
    return Object.assign(layerOf, { count: () => mapped });
  }
}

/** An input link as identities: the selector's id (0 for none) and the linked merged record. */
interface Pair {
  readonly selector: number;
  readonly link: number;
}

/** Every input link of a config's records, flat: record i's are `start[i]` to `start[i + 1]`. */
interface FlatLinks {
  readonly start: Int32Array;
  /** The record linked to. */
  readonly target: Int32Array;
  /** The link's selector as an interned id (0 for none). */
  readonly selector: Int32Array;
}

function flatLinks(
  records: readonly CacheRecord[],
  selectorId: (selector: string) => number,
): FlatLinks {
  let count = 0;
  for (const record of records) for (const group of record.inputs) count += group.length;
  const start = new Int32Array(records.length + 1);
  const target = new Int32Array(count);
  const selector = new Int32Array(count);
  let at = 0;
  records.forEach((record, i) => {
    start[i] = at;
    for (const group of record.inputs) {
      for (const input of group) {
        target[at] = input.link;
        selector[at] = input.selector ? selectorId(input.selector) : 0;
        at++;
      }
    }
  });
  start[records.length] = at;
  return { start, target, selector };
}

/** Add `result`, or keep the newer time of it and the one `same` finds (lists are short). */
function addNewest<T extends { readonly createdAt: string }>(
  list: T[],
  result: T,
  same: (known: T) => boolean,
): void {
  const at = list.findIndex(same);
  if (at === -1) list.push(result);
  else if (compareGoTimes(result.createdAt, (list[at] as T).createdAt) > 0) list[at] = result;
}

function newestFirst(a: { createdAt: string }, b: { createdAt: string }): number {
  return compareGoTimes(b.createdAt, a.createdAt);
}

function intern(ids: Map<string, number>, value: string): number {
  let id = ids.get(value);
  if (id === undefined) {
    id = ids.size;
    ids.set(value, id);
  }
  return id;
}
