import { writeLayer, writeResult } from '../cache/config-write.ts';
import { goJsonString } from '../cache/go-json.ts';
import { ZERO_TIME } from '../cache/go-time.ts';

/** What a result row keeps of a layer: the facts ImportCache annotates it with. */
export interface StoredLayer {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly diffID?: string;
}

/** A result as ImportCache reads it: record, layer chain, creation time. */
export type ResultRow = readonly [record: string, chain: readonly StoredLayer[], createdAt: string];

/**
 * A namespace's rows as ImportCache reads them, one snapshot of the database: links as four
 * parallel columns (a link `i` is `sources[i]`, `targets[i]`, `inputs[i]`, `selectors[i]`).
 */
export interface NamespaceRows {
  readonly records: readonly string[];
  readonly sources: readonly string[];
  readonly targets: readonly string[];
  readonly inputs: readonly number[];
  readonly selectors: readonly string[];
  readonly results: readonly ResultRow[];
  readonly blobs: readonly string[];
}

/** Serialized pieces are flushed to bytes at this size: no 12 MB string is ever built. */
const CHUNK = 65536;

/**
 * The cacheconfig v0 bytes ImportCache serves for `rows`, as `serializeCacheConfig` writes the
 * config (byte for byte): records sorted by digest as BuildKit sorts them; every record's input
 * groups at the positions the links were reported at (an empty group kept, BuildKit matches by
 * input index), each group ordered by link; layers made from the results whose blobs are all
 * committed, shared between chains with a common base. Links to or from unknown records are left
 * out.
 *
 * Built for 100k-record namespaces: links are grouped by a counting sort over typed arrays and
 * records written straight to text, with no object per record or link.
 */
export function buildImportDocument(rows: NamespaceRows): Buffer {
  const digests = [...rows.records].sort();
  const count = digests.length;
  const index = new Map<string, number>();
  for (let i = 0; i < count; i++) index.set(digests[i] as string, i);

  const { layers, resultsOf } = buildLayers(rows, index);

  // Links grouped by target record: counting sort into `order`, each group by input then link.
  const linkCount = rows.targets.length;
  const source = new Int32Array(linkCount);
  const target = new Int32Array(linkCount);
  const starts = new Int32Array(count + 1);
  for (let i = 0; i < linkCount; i++) {
    const s = index.get(rows.sources[i] as string);
    const t = index.get(rows.targets[i] as string);
    source[i] = s ?? -1;
    target[i] = s === undefined || t === undefined ? -1 : t;
    if (s !== undefined && t !== undefined) starts[t + 1] = (starts[t + 1] as number) + 1;
  }
  for (let r = 0; r < count; r++) starts[r + 1] = (starts[r + 1] as number) + (starts[r] as number);
  const order = new Int32Array(starts[count] as number);
  const fill = starts.slice(0, count);
  for (let i = 0; i < linkCount; i++) {
    const t = target[i] as number;
    if (t < 0) continue;
    const at = fill[t] as number;
    order[at] = i;
    fill[t] = at + 1;
  }

  const chunks: Buffer[] = [];
  let text = '{';
  const flush = () => {
    if (text.length >= CHUNK) {
      chunks.push(Buffer.from(text, 'utf8'));
      text = '';
    }
  };
  if (layers.length > 0) {
    text += '"layers":[';
    for (let i = 0; i < layers.length; i++) {
      text += (i === 0 ? '' : ',') + writeLayer(layers[i] as (typeof layers)[number]);
      flush();
    }
    text += ']';
  }
  if (count > 0) {
    text += layers.length > 0 ? ',"records":[' : '"records":[';
    const byLink = (a: number, b: number) =>
      (rows.inputs[a] as number) - (rows.inputs[b] as number) ||
      (source[a] as number) - (source[b] as number) ||
      compareStrings(rows.selectors[a] as string, rows.selectors[b] as string);
    for (let r = 0; r < count; r++) {
      text += r === 0 ? '{' : ',{';
      const results = resultsOf[r];
      if (results) text += `"layers":[${results.map(writeResult).join(',')}],`;
      // Digests were validated when reported: lower-case `algorithm:hex`, nothing to escape.
      text += `"digest":"${digests[r]}"`;
      const from = starts[r] as number;
      const to = starts[r + 1] as number;
      if (to > from) {
        const links =
          to - from === 1 ? order.subarray(from, to) : order.subarray(from, to).sort(byLink);
        text += ',"inputs":[[';
        let group = 0;
        let empty = true;
        for (const link of links) {
          for (const input = rows.inputs[link] as number; group < input; group++) {
            text += '],[';
            empty = true;
          }
          const selector = rows.selectors[link] as string;
          text += empty ? '' : ',';
          text += selector
            ? `{"selector":${goJsonString(selector)},"link":${source[link]}}`
            : `{"link":${source[link]}}`;
          empty = false;
        }
        text += ']]';
      }
      text += '}';
      flush();
    }
    text += ']';
  }
  chunks.push(Buffer.from(`${text}}`, 'utf8'));
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Layers of the results whose blobs are all committed, and each record's results on them. */
function buildLayers(
  rows: NamespaceRows,
  index: ReadonlyMap<string, number>,
): {
  layers: {
    blob: string;
    parent: number;
    annotations: { mediaType: string; diffID?: string; size: number; createdAt: string };
  }[];
  resultsOf: ({ layer: number; createdAt: string }[] | undefined)[];
} {
  const blobs = new Set(rows.blobs);
  const layers: ReturnType<typeof buildLayers>['layers'] = [];
  const layerIndex = new Map<string, number>(); // `${parent} ${digest}` -> index
  const resultsOf: ({ layer: number; createdAt: string }[] | undefined)[] = [];
  for (const [record, chain, createdAt] of rows.results) {
    const at = index.get(record);
    if (at === undefined || !chain.every((layer) => blobs.has(layer.digest))) continue;
    let parent = -1;
    for (const layer of chain) {
      const key = `${parent} ${layer.digest}`;
      let found = layerIndex.get(key);
      if (found === undefined) {
        found = layers.length;
        layers.push({
          blob: layer.digest,
          parent,
          annotations: {
            mediaType: layer.mediaType,
            diffID: layer.diffID,
            size: layer.size,
            createdAt: ZERO_TIME,
          },
        });
        layerIndex.set(key, found);
      }
      parent = found;
    }
    const list = resultsOf[at];
    if (list) list.push({ layer: parent, createdAt });
    else resultsOf[at] = [{ layer: parent, createdAt }];
  }
  return { layers, resultsOf };
}
