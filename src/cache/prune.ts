import {
  type CacheConfig,
  type CacheLayer,
  type CacheRecord,
  validateCacheConfig,
} from './config.ts';
import { sortCacheConfig } from './config-write.ts';
import { CacheOptionsError } from './errors.ts';
import { goTimeMillis, rankGoTimes } from './go-time.ts';
import { type CacheSelection, SelectableConfig } from './selection.ts';

/**
 * What {@link pruneCacheConfig} keeps. Every option is a limit: a result stays when it passes
 * all the limits given. With none, only records no result needs are dropped.
 */
export interface PruneCacheOptions {
  /**
   * Keep the results of the N most recent builds. A build is found from the graph: its final
   * records are those no other record links to, and its instant is the newest `createdAt` of
   * their own results (of what they reach, when they have none); final records sharing an
   * instant are one build. A build keeps every result of the records its final records reach.
   */
  keepLast?: number;
  /** Keep results created less than this many milliseconds before `now`. */
  keepNewer?: number;
  /** The instant `keepNewer` counts back from, in milliseconds since the epoch; default now. */
  now?: number;
  /**
   * Keep the newest results whose layers fit in this many bytes (each blob counted once): going
   * from the newest, the first result that would go over the limit and every older one that
   * would add bytes are dropped; older results whose blobs are all kept already stay.
   */
  maxSize?: number;
  /** Then drop the oldest results until the config, serialized, is at most this many bytes. */
  maxConfigSize?: number;
  /** Size of a blob, for `maxSize` and for the byte counts (unknown blobs count 0). */
  blobSize?: (blob: string) => number | undefined;
}

/** Counts of entries, and bytes of the distinct blobs of the layers. */
export interface CachePruneCounts {
  readonly records: number;
  readonly results: number;
  readonly layers: number;
  readonly bytes: number;
}

/** A pruned config and what was kept and dropped. */
export interface PrunedCacheConfig {
  /** Sorted as BuildKit writes it: serialize it as is. */
  readonly config: CacheConfig;
  /** With `maxConfigSize`: the bytes `serializeCacheConfig(config)` writes. */
  readonly configSize?: number;
  readonly kept: CachePruneCounts;
  /** `bytes`: blobs the config's layers referenced that no kept layer references. */
  readonly dropped: CachePruneCounts;
  /** Results dropped by `maxConfigSize` alone (the oldest of those the other limits kept). */
  readonly droppedForConfigSize: number;
  /** With `keepLast`: builds found, and how many of them still have a kept result. */
  readonly builds?: { readonly found: number; readonly kept: number };
}

/**
 * Keep the results the options keep, the records they need (a record is needed when it has a
 * kept result or a record with one reaches it through its inputs: BuildKit matches a step's key
 * through its inputs' records) and the layers of kept results; drop the rest. The config is
 * sorted as BuildKit's exporter sorts it, so the same selection always writes the same bytes.
 * Cost O((records + links + layers + results) x log(results)) with `maxConfigSize` (a binary
 * search over exact sizes computed without writing), linear without.
 */
export function pruneCacheConfig(
  input: CacheConfig,
  options: PruneCacheOptions = {},
): PrunedCacheConfig {
  checkLimits(options);
  validateCacheConfig(input);
  const view = new SelectableConfig(sortCacheConfig(input), { sorted: true });
  const { config } = view;
  const { records, layers } = config;
  const results = enumerateResults(view);
  const alive = new Uint8Array(results.count).fill(1);

  if (options.keepNewer !== undefined) {
    const cutoff = (options.now ?? Date.now()) - options.keepNewer;
    for (let r = 0; r < results.count; r++) {
      if (goTimeMillis(results.time[r] as string) < cutoff) alive[r] = 0;
    }
  }
  const builds = options.keepLast === undefined ? undefined : findBuilds(view, results);
  if (builds && options.keepLast !== undefined) {
    const inBuild = reach(records, builds.newest(options.keepLast));
    for (let r = 0; r < results.count; r++) {
      if (inBuild[results.record[r] as number] === 0) alive[r] = 0;
    }
  }
  const order = newestFirst(results, alive);
  const blobOf = blobIds(layers);
  const sizeOf = blobSizes(layers, blobOf, options.blobSize);
  if (options.maxSize !== undefined) {
    fitSize(view, results, order, alive, blobOf, sizeOf, options.maxSize);
  }

  // When each entry is first needed, going from the newest result: kept(k) = needed before k.
  const live = order.filter((r) => alive[r] === 1);
  const recordAt = new Int32Array(records.length).fill(NEVER);
  const layerAt = new Int32Array(layers.length).fill(NEVER);
  const stack: number[] = [];
  live.forEach((r, position) => {
    const record = results.record[r] as number;
    if (recordAt[record] === NEVER) {
      recordAt[record] = position;
      stack.push(record);
    }
    for (let at = stack.pop(); at !== undefined; at = stack.pop()) {
      for (const group of (records[at] as CacheRecord).inputs) {
        for (const { link } of group) {
          if (recordAt[link] === NEVER) {
            recordAt[link] = position;
            stack.push(link);
          }
        }
      }
    }
    forEachLayer(view, results, r, (layer) => {
      if (layerAt[layer] !== NEVER) return false;
      layerAt[layer] = position;
      return true;
    });
  });
  const resultAt = new Int32Array(results.count).fill(NEVER);
  live.forEach((r, position) => {
    resultAt[r] = position;
  });
  const selection = (k: number): CacheSelection => ({
    records: below(recordAt, k),
    layers: below(layerAt, k),
    results: below(resultAt, k),
  });

  let k = live.length;
  let chosen = selection(k);
  let configSize = options.maxConfigSize === undefined ? undefined : view.size(chosen);
  if (options.maxConfigSize !== undefined && (configSize as number) > options.maxConfigSize) {
    // size(k) grows with k: find the largest k that fits.
    let low = 0;
    let high = k - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (view.size(selection(middle)) <= options.maxConfigSize) low = middle;
      else high = middle - 1;
    }
    k = low;
    chosen = selection(k);
    configSize = view.size(chosen);
  }

  const before = counts(all(records.length), all(layers.length), results.count, blobOf, sizeOf);
  const kept = counts(chosen.records, chosen.layers, k, blobOf, sizeOf);
  const everything =
    kept.records === before.records && kept.layers === before.layers && k === results.count;
  return {
    config: everything ? config : view.subset(chosen),
    ...(configSize === undefined ? {} : { configSize }),
    kept,
    dropped: {
      records: before.records - kept.records,
      results: before.results - kept.results,
      layers: before.layers - kept.layers,
      bytes: before.bytes - kept.bytes,
    },
    droppedForConfigSize: live.length - k,
    ...(builds ? { builds: { found: builds.count, kept: builds.keptBy(chosen) } } : {}),
  };
}

const NEVER = 0x7fffffff;

function checkLimits(options: PruneCacheOptions): void {
  const limits = [
    ['keepLast', options.keepLast, 1],
    ['keepNewer', options.keepNewer, 0],
    ['maxSize', options.maxSize, 0],
    ['maxConfigSize', options.maxConfigSize, 2],
  ] as const;
  for (const [name, value, least] of limits) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= least)) {
      throw new CacheOptionsError(`${name} must be a whole number of at least ${least}`, {
        key: name,
      });
    }
  }
}

/** Every result of a config, flat, in {@link SelectableConfig.resultOffsets} order. */
interface Results {
  readonly count: number;
  readonly record: Int32Array;
  readonly time: readonly string[];
  /** Chronological rank of `time` (equal instants share one). */
  readonly rank: Int32Array;
}

function enumerateResults(view: SelectableConfig): Results {
  const count = view.resultCount;
  const record = new Int32Array(count);
  const time: string[] = [];
  view.config.records.forEach((entry, i) => {
    for (const result of entry.results) {
      record[time.length] = i;
      time.push(result.createdAt);
    }
    for (const chain of entry.chains) {
      record[time.length] = i;
      time.push(chain.createdAt);
    }
  });
  return { count, record, time, rank: rankGoTimes(time) };
}

/** Results still alive, newest first (ties in config order). */
function newestFirst(results: Results, alive: Uint8Array): number[] {
  const order: number[] = [];
  for (let r = 0; r < results.count; r++) if (alive[r] === 1) order.push(r);
  order.sort((a, b) => (results.rank[b] as number) - (results.rank[a] as number) || a - b);
  return order;
}

/** Builds of a config (see {@link PruneCacheOptions.keepLast}), newest first. */
interface Builds {
  readonly count: number;
  /** Final records of the `n` newest builds. */
  newest(n: number): number[];
  /** How many builds have a final record `selection` keeps (so a kept result). */
  keptBy(selection: CacheSelection): number;
}

function findBuilds(view: SelectableConfig, results: Results): Builds {
  const { records } = view.config;
  const linked = new Uint8Array(records.length);
  for (const record of records) {
    for (const group of record.inputs) for (const { link } of group) linked[link] = 1;
  }
  // Newest own result of each record, then the newest a record reaches (bottom-up, memoised).
  const own = new Int32Array(records.length).fill(-1);
  for (let r = 0; r < results.count; r++) {
    const record = results.record[r] as number;
    own[record] = Math.max(own[record] as number, results.rank[r] as number);
  }
  const reached = newestReached(records, own);
  const finals: { record: number; instant: number }[] = [];
  for (let i = 0; i < records.length; i++) {
    if (linked[i] === 1) continue;
    const instant = (own[i] as number) >= 0 ? (own[i] as number) : (reached[i] as number);
    if (instant >= 0) finals.push({ record: i, instant });
  }
  finals.sort((a, b) => b.instant - a.instant || a.record - b.record);
  const instants = [...new Set(finals.map((f) => f.instant))];
  return {
    count: instants.length,
    newest: (n) => {
      const last = instants[Math.min(n, instants.length) - 1];
      return last === undefined ? [] : finals.filter((f) => f.instant >= last).map((f) => f.record);
    },
    keptBy: (selection) => {
      const kept = new Set<number>();
      for (const { record, instant } of finals) {
        if (selection.records[record] === 1) kept.add(instant);
      }
      return kept.size;
    },
  };
}

/** For each record, the newest rank among its own results and those of records it reaches. */
function newestReached(records: readonly CacheRecord[], own: Int32Array): Int32Array {
  const newest = new Int32Array(records.length);
  const done = new Uint8Array(records.length);
  const stack: number[] = [];
  for (let root = 0; root < records.length; root++) {
    if (done[root] === 1) continue;
    stack.push(root);
    while (stack.length > 0) {
      const index = stack[stack.length - 1] as number;
      if (done[index] === 1) {
        stack.pop();
        continue;
      }
      let pending = false;
      let value = own[index] as number;
      for (const group of (records[index] as CacheRecord).inputs) {
        for (const { link } of group) {
          if (done[link] === 0) {
            stack.push(link);
            pending = true;
          } else value = Math.max(value, newest[link] as number);
        }
      }
      if (pending) continue;
      stack.pop();
      newest[index] = value;
      done[index] = 1;
    }
  }
  return newest;
}

/** Records `roots` reach through their inputs, themselves included. */
function reach(records: readonly CacheRecord[], roots: readonly number[]): Uint8Array {
  const seen = new Uint8Array(records.length);
  const stack: number[] = [];
  for (const root of roots) {
    if (seen[root] === 0) {
      seen[root] = 1;
      stack.push(root);
    }
  }
  for (let at = stack.pop(); at !== undefined; at = stack.pop()) {
    for (const group of (records[at] as CacheRecord).inputs) {
      for (const { link } of group) {
        if (seen[link] === 0) {
          seen[link] = 1;
          stack.push(link);
        }
      }
    }
  }
  return seen;
}

/**
 * Visit the layers result `r` loads: a plain result's chain from its top down to the first layer
 * `visit` declines (returns false: already seen, so are its parents); a chained result's layers
 * one by one, whatever `visit` returns. Parents of a chained result's layers are loaded too.
 */
function forEachLayer(
  view: SelectableConfig,
  results: Results,
  r: number,
  visit: (layer: number) => boolean,
): void {
  const { layers, records } = view.config;
  const record = records[results.record[r] as number] as CacheRecord;
  const j = r - (view.resultOffsets[results.record[r] as number] as number);
  const tops =
    j < record.results.length
      ? [(record.results[j] as { layer: number }).layer]
      : (record.chains[j - record.results.length] as { layers: readonly number[] }).layers;
  for (const top of tops) {
    for (let i = top; i !== -1 && visit(i); i = (layers[i] as CacheLayer).parent);
  }
}

/**
 * {@link PruneCacheOptions.maxSize}: clear `alive` for the results beyond the budget, going
 * through `order` (newest first).
 */
function fitSize(
  view: SelectableConfig,
  results: Results,
  order: readonly number[],
  alive: Uint8Array,
  blobOf: Int32Array,
  sizeOf: Float64Array,
  maxSize: number,
): void {
  const layerSeen = new Uint8Array(view.config.layers.length);
  const layerStamp = new Int32Array(view.config.layers.length).fill(-1);
  const blobCounted = new Uint8Array(sizeOf.length);
  const blobStamp = new Int32Array(sizeOf.length).fill(-1);
  const fresh: number[] = [];
  const blobs: number[] = [];
  let total = 0;
  let full = false;
  for (const r of order) {
    fresh.length = 0;
    blobs.length = 0;
    let added = 0;
    forEachLayer(view, results, r, (layer) => {
      if (layerSeen[layer] === 1 || layerStamp[layer] === r) return false;
      layerStamp[layer] = r;
      fresh.push(layer);
      const blob = blobOf[layer] as number;
      if (blobCounted[blob] === 0 && blobStamp[blob] !== r) {
        blobStamp[blob] = r;
        blobs.push(blob);
        added += sizeOf[blob] as number;
      }
      return true;
    });
    if (added > 0 && (full || total + added > maxSize)) {
      full = true;
      alive[r] = 0;
      continue;
    }
    total += added;
    for (const layer of fresh) layerSeen[layer] = 1;
    for (const blob of blobs) blobCounted[blob] = 1;
  }
}

/** A dense id per distinct blob digest, for each layer. */
function blobIds(layers: readonly CacheLayer[]): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(layers, (layer) => {
    let id = ids.get(layer.blob);
    if (id === undefined) {
      id = ids.size;
      ids.set(layer.blob, id);
    }
    return id;
  });
}

/** Size of each blob id (0 when unknown). */
function blobSizes(
  layers: readonly CacheLayer[],
  blobOf: Int32Array,
  blobSize: ((blob: string) => number | undefined) | undefined,
): Float64Array {
  let count = 0;
  for (const id of blobOf) count = Math.max(count, id + 1);
  const sizes = new Float64Array(count);
  if (!blobSize) return sizes;
  layers.forEach((layer, i) => {
    sizes[blobOf[i] as number] = blobSize(layer.blob) ?? 0;
  });
  return sizes;
}

/** Flags of the entries first needed before `k`. */
function below(at: Int32Array, k: number): Uint8Array {
  const flags = new Uint8Array(at.length);
  for (let i = 0; i < at.length; i++) if ((at[i] as number) < k) flags[i] = 1;
  return flags;
}

function all(length: number): Uint8Array {
  return new Uint8Array(length).fill(1);
}

function counts(
  records: Uint8Array,
  layers: Uint8Array,
  results: number,
  blobOf: Int32Array,
  sizeOf: Float64Array,
): CachePruneCounts {
  const counted = new Uint8Array(sizeOf.length);
  let recordCount = 0;
  let layerCount = 0;
  let bytes = 0;
  for (const flag of records) recordCount += flag;
  layers.forEach((flag, i) => {
    if (flag === 0) return;
    layerCount++;
    const blob = blobOf[i] as number;
    if (counted[blob] === 0) {
      counted[blob] = 1;
      bytes += sizeOf[blob] as number;
    }
  });
  return { records: recordCount, results, layers: layerCount, bytes };
}
