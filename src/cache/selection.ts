import {
  type CacheConfig,
  type CacheLayer,
  type CacheRecord,
  type CacheResult,
  type ChainedResult,
  markValidatedCacheConfig,
} from './config.ts';
import {
  markSortedCacheConfig,
  writeChain,
  writeLayer,
  writeRecord,
  writeResult,
} from './config-write.ts';

/**
 * Which parts of a config to keep, one flag per entry (1 kept). It must be closed: the records a
 * kept record links to, the parents of a kept layer and the layers of a kept result are kept.
 */
export interface CacheSelection {
  readonly records: Uint8Array;
  readonly layers: Uint8Array;
  /** Per result, at {@link SelectableConfig.resultOffsets}[record] + j: results, then chains. */
  readonly results: Uint8Array;
}

/**
 * A config prepared for choosing subsets of it: the subset itself, re-indexed in the original
 * order (a subset of a sorted config is sorted), and its exact serialized size without writing
 * it, in O(records + links + layers + results) per call. The byte counts come from the writer
 * itself (each entry written once with zero indexes), so they cannot drift from it.
 */
export class SelectableConfig {
  readonly config: CacheConfig;
  /** Where each record's results start in {@link CacheSelection.results}; one more entry at the end. */
  readonly resultOffsets: Int32Array;
  #sizes: EntrySizes | undefined;

  /** True when `config` is in sortCacheConfig's order: so are its subsets then. */
  readonly #sorted: boolean;

  constructor(config: CacheConfig, options: { sorted?: boolean } = {}) {
    this.config = config;
    this.#sorted = options.sorted ?? false;
    const { records } = config;
    this.resultOffsets = new Int32Array(records.length + 1);
    let result = 0;
    records.forEach((record, i) => {
      this.resultOffsets[i] = result;
      result += record.results.length + record.chains.length;
    });
    this.resultOffsets[records.length] = result;
  }

  /** Number of results (and chained results) of the whole config. */
  get resultCount(): number {
    return this.resultOffsets[this.config.records.length] as number;
  }

  /**
   * Bytes `serializeCacheConfig(this.subset(selection))` would write. The first call measures
   * every entry once (about the cost of writing the config); later calls only add numbers.
   */
  size(selection: CacheSelection): number {
    this.#sizes ??= new EntrySizes(this.config);
    const sizes = this.#sizes;
    const newLayer = ranks(selection.layers);
    const newRecord = ranks(selection.records);
    const { layers, records } = this.config;
    let fields = 0;
    let bytes = 2;
    let layerCount = 0;
    let layerBytes = 0;
    for (let i = 0; i < layers.length; i++) {
      if (selection.layers[i] === 0) continue;
      layerCount++;
      let n = sizes.layerFields[i] as number;
      layerBytes += sizes.layerBytes[i] as number;
      const parent = (layers[i] as CacheLayer).parent;
      const index = parent === -1 ? -1 : (newLayer[parent] as number);
      if (index !== 0) {
        n++;
        layerBytes += 9 + digits(index); // "parent":N
      }
      layerBytes += commas(n);
    }
    if (layerCount > 0) {
      fields++;
      bytes += 11 + layerBytes + commas(layerCount); // "layers":[...]
    }

    let recordCount = 0;
    let recordBytes = 0;
    for (let i = 0; i < records.length; i++) {
      if (selection.records[i] === 0) continue;
      recordCount++;
      let n = sizes.recordFields[i] as number;
      let b = sizes.recordBytes[i] as number;
      const linksEnd = sizes.linkOffsets[i + 1] as number;
      for (let l = sizes.linkOffsets[i] as number; l < linksEnd; l++) {
        b += digits(newRecord[sizes.links[l] as number] as number);
      }
      let plain = 0;
      let plainBytes = 0;
      let chained = 0;
      let chainBytes = 0;
      const resultsEnd = this.resultOffsets[i + 1] as number;
      for (let r = this.resultOffsets[i] as number; r < resultsEnd; r++) {
        if (selection.results[r] === 0) continue;
        let rb = sizes.resultBytes[r] as number;
        const end = sizes.resultLayerOffsets[r + 1] as number;
        for (let k = sizes.resultLayerOffsets[r] as number; k < end; k++) {
          rb += digits(newLayer[sizes.resultLayers[k] as number] as number);
        }
        if (sizes.resultChained[r] === 1) {
          chained++;
          chainBytes += rb;
        } else {
          plain++;
          plainBytes += rb;
        }
      }
      if (plain > 0) {
        n++;
        b += 11 + plainBytes + commas(plain); // "layers":[...]
      }
      if (chained > 0) {
        n++;
        b += 11 + chainBytes + commas(chained); // "chains":[...]
      }
      recordBytes += b + commas(n);
    }
    if (recordCount > 0) {
      fields++;
      bytes += 12 + recordBytes + commas(recordCount); // "records":[...]
    }
    return bytes + commas(fields);
  }

  /** The kept entries, re-indexed in their original relative order. */
  subset(selection: CacheSelection): CacheConfig {
    const newLayer = ranks(selection.layers);
    const newRecord = ranks(selection.records);
    const at = (map: Int32Array, old: number) => map[old] as number;
    const layers: CacheLayer[] = [];
    this.config.layers.forEach((layer, i) => {
      if (selection.layers[i] === 0) return;
      layers.push(layer.parent === -1 ? layer : { ...layer, parent: at(newLayer, layer.parent) });
    });
    const records: CacheRecord[] = [];
    this.config.records.forEach((record, i) => {
      if (selection.records[i] === 0) return;
      let r = this.resultOffsets[i] as number;
      const results: CacheResult[] = [];
      for (const plain of record.results) {
        if (selection.results[r++] === 1)
          results.push({ ...plain, layer: at(newLayer, plain.layer) });
      }
      const chains: ChainedResult[] = [];
      for (const chain of record.chains) {
        if (selection.results[r++] === 1) {
          chains.push({ ...chain, layers: chain.layers.map((layer) => at(newLayer, layer)) });
        }
      }
      records.push({
        digest: record.digest,
        results,
        chains,
        inputs: record.inputs.map((group) =>
          group.map((input) => ({ ...input, link: at(newRecord, input.link) })),
        ),
      });
    });
    const config: CacheConfig = { layers, records };
    markValidatedCacheConfig(config);
    if (this.#sorted) markSortedCacheConfig(config);
    return config;
  }
}

/** What each entry of a config writes, apart from its indexes and the commas between fields. */
class EntrySizes {
  /** Bytes of each layer without its `parent`, and how many other fields it writes. */
  readonly layerBytes: Int32Array;
  readonly layerFields: Uint8Array;
  /** Bytes of each record's braces, digest and inputs (links zero-width), and its field count. */
  readonly recordBytes: Float64Array;
  readonly recordFields: Uint8Array;
  /** Flat input links and where each record's start. */
  readonly links: Int32Array;
  readonly linkOffsets: Int32Array;
  /** Per result: bytes without layer indexes; whether it is a chain; its layers (flat). */
  readonly resultBytes: Int32Array;
  readonly resultChained: Uint8Array;
  readonly resultLayers: Int32Array;
  readonly resultLayerOffsets: Int32Array;

  constructor(config: CacheConfig) {
    const { layers, records } = config;
    this.layerBytes = new Int32Array(layers.length);
    this.layerFields = new Uint8Array(layers.length);
    layers.forEach((layer, i) => {
      const fields = (layer.blob ? 1 : 0) + (layer.annotations ? 1 : 0);
      this.layerFields[i] = fields;
      this.layerBytes[i] = utf8(writeLayer({ ...layer, parent: 0 })) - commas(fields);
    });

    let linkCount = 0;
    let resultCount = 0;
    let resultLayerCount = 0;
    for (const record of records) {
      for (const group of record.inputs) linkCount += group.length;
      resultCount += record.results.length + record.chains.length;
      resultLayerCount += record.results.length;
      for (const chain of record.chains) resultLayerCount += chain.layers.length;
    }
    this.recordBytes = new Float64Array(records.length);
    this.recordFields = new Uint8Array(records.length);
    this.links = new Int32Array(linkCount);
    this.linkOffsets = new Int32Array(records.length + 1);
    this.resultBytes = new Int32Array(resultCount);
    this.resultChained = new Uint8Array(resultCount);
    this.resultLayers = new Int32Array(resultLayerCount);
    this.resultLayerOffsets = new Int32Array(resultCount + 1);
    let link = 0;
    let result = 0;
    let resultLayer = 0;
    records.forEach((record, i) => {
      this.linkOffsets[i] = link;
      let links = 0;
      for (const group of record.inputs) {
        for (const input of group) {
          this.links[link++] = input.link;
          links++;
        }
      }
      const fields = (record.digest ? 1 : 0) + (record.inputs.length > 0 ? 1 : 0);
      this.recordFields[i] = fields;
      const zeroLinks: CacheRecord = {
        digest: record.digest,
        results: [],
        chains: [],
        inputs: record.inputs.map((group) => group.map((input) => ({ ...input, link: 0 }))),
      };
      this.recordBytes[i] = utf8(writeRecord(zeroLinks)) - links - commas(fields);
      for (const plain of record.results) {
        this.resultLayerOffsets[result] = resultLayer;
        this.resultLayers[resultLayer++] = plain.layer;
        this.resultBytes[result++] = utf8(writeResult({ ...plain, layer: 0 })) - 1;
      }
      for (const chain of record.chains) {
        this.resultLayerOffsets[result] = resultLayer;
        for (const layer of chain.layers) this.resultLayers[resultLayer++] = layer;
        const zeros = chain.layers.map(() => 0);
        this.resultChained[result] = 1;
        this.resultBytes[result++] =
          utf8(writeChain({ ...chain, layers: zeros })) - chain.layers.length;
      }
    });
    this.linkOffsets[records.length] = link;
    this.resultLayerOffsets[result] = resultLayer;
  }
}

/** New index of each kept entry (its rank among the kept ones); -1 for dropped ones. */
function ranks(kept: Uint8Array): Int32Array {
  const map = new Int32Array(kept.length);
  let next = 0;
  for (let i = 0; i < kept.length; i++) map[i] = kept[i] === 1 ? next++ : -1;
  return map;
}

/** Characters of `n` in decimal. */
function digits(n: number): number {
  if (n < 0) return 1 + digits(-n);
  let count = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) count++;
  return count;
}

function commas(items: number): number {
  return items > 1 ? items - 1 : 0;
}

function utf8(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
