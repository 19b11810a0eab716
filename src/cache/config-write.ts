import {
  type CacheConfig,
  type CacheInput,
  type CacheLayer,
  type CacheRecord,
  type CacheResult,
  type ChainedResult,
  isValidatedCacheConfig,
  type LayerAnnotations,
  markValidatedCacheConfig,
} from './config.ts';
import { compareGoStrings, goJsonString } from './go-json.ts';
import { ZERO_TIME } from './go-time.ts';

/**
 * The bytes Go's `json.Marshal` produces for `config` as BuildKit's types: struct field order
 * (a record writes `layers`, `chains`, `digest`, `inputs`), no whitespace, `omitempty` (`parent`
 * 0, empty strings and lists left out; `layer`, `link` and `createdAt` always written), Go's
 * string escaping. It does not sort: call {@link sortCacheConfig} first to get BuildKit's
 * deterministic order, as BuildKit's exporter does. A parsed config writes back byte for byte.
 */
export function serializeCacheConfig(config: CacheConfig): Buffer {
  // Written in pieces of about 64 KiB: a 40 MB config never exists as one string or as a
  // list of 150k record strings, only as the bytes.
  const chunks: Buffer[] = [];
  let text = '{';
  const list = <T>(key: string, entries: readonly T[], write: (entry: T) => string) => {
    text += `"${key}":[`;
    entries.forEach((entry, i) => {
      text += i === 0 ? write(entry) : `,${write(entry)}`;
      if (text.length >= 65536) {
        chunks.push(Buffer.from(text, 'utf8'));
        text = '';
      }
    });
    text += ']';
  };
  if (config.layers.length > 0) list('layers', config.layers, writeLayer);
  if (config.records.length > 0) {
    if (config.layers.length > 0) text += ',';
    list('records', config.records, writeRecord);
  }
  chunks.push(Buffer.from(`${text}}`, 'utf8'));
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** One layer as {@link serializeCacheConfig} writes it. */
export function writeLayer(layer: CacheLayer): string {
  const parts: string[] = [];
  if (layer.blob) parts.push(`"blob":${goJsonString(layer.blob)}`);
  if (layer.parent !== 0) parts.push(`"parent":${layer.parent}`);
  if (layer.annotations) parts.push(`"annotations":${writeAnnotations(layer.annotations)}`);
  return `{${parts.join(',')}}`;
}

function writeAnnotations(annotations: LayerAnnotations): string {
  const parts: string[] = [];
  if (annotations.mediaType) parts.push(`"mediaType":${goJsonString(annotations.mediaType)}`);
  if (annotations.diffID) parts.push(`"diffID":${goJsonString(annotations.diffID)}`);
  if (annotations.size) parts.push(`"size":${annotations.size}`);
  parts.push(`"createdAt":${writeTime(annotations.createdAt)}`);
  return `{${parts.join(',')}}`;
}

/** One record as {@link serializeCacheConfig} writes it. */
export function writeRecord(record: CacheRecord): string {
  const parts: string[] = [];
  if (record.results.length > 0)
    parts.push(`"layers":[${record.results.map(writeResult).join(',')}]`);
  if (record.chains.length > 0) parts.push(`"chains":[${record.chains.map(writeChain).join(',')}]`);
  if (record.digest) parts.push(`"digest":${goJsonString(record.digest)}`);
  if (record.inputs.length > 0) {
    const groups = record.inputs.map((group) => `[${group.map(writeInput).join(',')}]`);
    parts.push(`"inputs":[${groups.join(',')}]`);
  }
  return `{${parts.join(',')}}`;
}

/** One result as {@link serializeCacheConfig} writes it. */
export function writeResult(result: CacheResult): string {
  return `{"layer":${result.layer},"createdAt":${writeTime(result.createdAt)}}`;
}

/** One chain as {@link serializeCacheConfig} writes it. */
export function writeChain(chain: ChainedResult): string {
  // Not omitempty in Go, and BuildKit only ever has a nil list when it has none.
  const layers = chain.layers.length > 0 ? `[${chain.layers.join(',')}]` : 'null';
  return `{"layers":${layers},"createdAt":${writeTime(chain.createdAt)}}`;
}

function writeInput(input: CacheInput): string {
  const selector = input.selector ? `"selector":${goJsonString(input.selector)},` : '';
  return `{${selector}"link":${input.link}}`;
}

function writeTime(time: string): string {
  return goJsonString(time || ZERO_TIME);
}

/**
 * BuildKit's `sortConfig` (cache/remotecache/v1/utils.go), returning a new config (`config`
 * itself when it is sorted already): layers by blob then (old) parent index; records by digest,
 * then input count, then each input group's size, selectors and linked digests; every index
 * remapped; each input group by new link.
 * Chained results are remapped too (BuildKit never sorts a config that has them). Sorts are
 * stable where Go's are not, which only matters for entries Go considers equal.
 */
export function sortCacheConfig(config: CacheConfig): CacheConfig {
  if (sortedConfigs.has(config)) return config;
  const { layers, records } = config;
  const order = cacheConfigOrder(config);
  const { layers: layerOrder, records: recordOrder, newLayer, newRecord } = order;
  // A stable sort of sorted entries changes nothing: keep the config (and its validation).
  if (isIdentity(layerOrder) && isIdentity(recordOrder) && groupsSorted(records)) {
    sortedConfigs.add(config);
    return config;
  }

  const sortedLayers = layerOrder.map((old): CacheLayer => {
    const layer = layers[old] as CacheLayer;
    return layer.parent === -1 ? layer : { ...layer, parent: newLayer[layer.parent] as number };
  });
  const sortedRecords = recordOrder.map((old): CacheRecord => {
    const record = records[old] as CacheRecord;
    return {
      ...record,
      results: record.results.map((result) => ({
        ...result,
        layer: newLayer[result.layer] as number,
      })),
      chains: record.chains.map((chain) => ({
        ...chain,
        layers: chain.layers.map((layer) => newLayer[layer] as number),
      })),
      inputs: record.inputs.map((group) =>
        group
          .map((input) => ({ ...input, link: newRecord[input.link] as number }))
          .sort((x, y) => x.link - y.link),
      ),
    };
  });

  const sorted = { layers: sortedLayers, records: sortedRecords };
  if (isValidatedCacheConfig(config)) markValidatedCacheConfig(sorted);
  sortedConfigs.add(sorted);
  return sorted;
}

/** Configs known to be in {@link sortCacheConfig}'s order, so that it need not check again. */
const sortedConfigs = new WeakSet<CacheConfig>();

/**
 * Record that `config` is in {@link sortCacheConfig}'s order: it was sorted so (a merge sorts
 * its result), or it keeps entries of such a config in their order.
 */
export function markSortedCacheConfig(config: CacheConfig): void {
  sortedConfigs.add(config);
}

/** Where {@link sortCacheConfig} puts layers and records. */
export interface CacheConfigOrder {
  /** `layers[new] = old`. */
  readonly layers: readonly number[];
  /** `records[new] = old`. */
  readonly records: readonly number[];
  /** `newLayer[old] = new`. */
  readonly newLayer: readonly number[];
  /** `newRecord[old] = new`. */
  readonly newRecord: readonly number[];
}

/**
 * The order {@link sortCacheConfig} puts layers and records in (input groups, sorted by their
 * new links, are left to the caller).
 */
export function cacheConfigOrder(config: CacheConfig): CacheConfigOrder {
  const { layers, records } = config;
  const compare = stringComparer([...layers.map((l) => l.blob), ...records.map((r) => r.digest)]);
  const layerOrder = layers.map((_, i) => i);
  layerOrder.sort((a, b) => {
    const x = layers[a] as CacheLayer;
    const y = layers[b] as CacheLayer;
    return compare(x.blob, y.blob) || x.parent - y.parent;
  });
  const digestOf = (index: number) => (records[index] as CacheRecord).digest;
  const recordOrder = records.map((_, i) => i);
  // Most records differ in the first characters after the digests' common prefix: compare those
  // as numbers first (a 150k-record sort then makes few string comparisons).
  const keys = prefixKeys(records.map((record) => record.digest));
  recordOrder.sort(
    (a, b) =>
      (keys[a] as number) - (keys[b] as number) ||
      compareRecords(records[a] as CacheRecord, records[b] as CacheRecord, digestOf, compare),
  );
  return {
    layers: layerOrder,
    records: recordOrder,
    newLayer: inverse(layerOrder),
    newRecord: inverse(recordOrder),
  };
}

/**
 * Numbers that order `strings` as Go orders them, where they are unequal: the 6 characters
 * after their common prefix, each in base 129 (0 for none). All zeros (so every comparison
 * falls to the strings) when a string has a non-ASCII character in that place.
 */
function prefixKeys(strings: readonly string[]): Float64Array {
  const keys = new Float64Array(strings.length);
  const first = strings[0];
  if (first === undefined) return keys;
  let common = first.length;
  for (const s of strings) {
    let i = 0;
    while (i < common && i < s.length && s.charCodeAt(i) === first.charCodeAt(i)) i++;
    common = i;
  }
  for (let n = 0; n < strings.length; n++) {
    const s = strings[n] as string;
    let key = 0;
    for (let i = common; i < common + 6; i++) {
      const c = i < s.length ? s.charCodeAt(i) : -1;
      if (c >= 128) return keys.fill(0);
      key = key * 129 + c + 1;
    }
    keys[n] = key;
  }
  return keys;
}

/**
 * Go's string order, as {@link compareGoStrings}; JavaScript's own comparison (much faster)
 * when no string has a unit at or above U+D800, the only place where the two orders differ.
 */
function stringComparer(strings: readonly string[]): (a: string, b: string) => number {
  const high = /[\ud800-\uffff]/;
  if (strings.some((s) => high.test(s))) return compareGoStrings;
  return (a, b) => (a < b ? -1 : a > b ? 1 : 0);
}

function isIdentity(order: readonly number[]): boolean {
  return order.every((value, index) => value === index);
}

function groupsSorted(records: readonly CacheRecord[]): boolean {
  return records.every((record) =>
    record.inputs.every((group) =>
      group.every((input, i) => i === 0 || (group[i - 1] as CacheInput).link <= input.link),
    ),
  );
}

function compareRecords(
  a: CacheRecord,
  b: CacheRecord,
  digestOf: (index: number) => string,
  compare: (a: string, b: string) => number,
): number {
  const byDigest = compare(a.digest, b.digest);
  if (byDigest !== 0) return byDigest;
  if (a.inputs.length !== b.inputs.length) return a.inputs.length - b.inputs.length;
  for (let i = 0; i < a.inputs.length; i++) {
    const x = a.inputs[i] as readonly CacheInput[];
    const y = b.inputs[i] as readonly CacheInput[];
    if (x.length !== y.length) return x.length - y.length;
    for (let j = 0; j < x.length; j++) {
      const p = x[j] as CacheInput;
      const q = y[j] as CacheInput;
      const bySelector = compareGoStrings(p.selector ?? '', q.selector ?? '');
      if (bySelector !== 0) return bySelector;
      const byLink = compare(digestOf(p.link), digestOf(q.link));
      if (byLink !== 0) return byLink;
    }
  }
  return 0;
}

/** `order[new] = old` to `result[old] = new`. */
function inverse(order: readonly number[]): number[] {
  const result = new Array<number>(order.length);
  order.forEach((old, index) => {
    result[old] = index;
  });
  return result;
}
