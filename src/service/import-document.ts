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
 * groups at the positions the links were reported at, each group ordered by link; layers made
 * from the results whose blobs are all committed, shared between chains with a common base.
 *
 * A record one of whose input groups has no link (none reported at that input, or only links
 * from records that are left out) is left out, and so, in turn, are records left with an empty
 * group by that: BuildKit matches a record through a link at every input, so such a record can
 * never be reached; BuildKit's own exporter drops it the same way, and from v0.25 its importer
 * refuses a whole config holding one. Links from unknown records count as no link.
 *
 * Built for 100k-record namespaces: links are grouped by a counting sort over typed arrays and
 * records written straight to text, with no object per record or link.
 */
export function buildImportDocument(rows: NamespaceRows): Buffer {
  const all = [...rows.records].sort();
  const allIndex = new Map<string, number>();
  for (let i = 0; i < all.length; i++) allIndex.set(all[i] as string, i);
  const links = groupLinks(rows, allIndex);
  const keep = reachableRecords(all.length, links, rows.inputs);

  const digests: string[] = [];
  const renumber = new Int32Array(all.length).fill(-1);
  for (let r = 0; r < all.length; r++) {
    if (!keep[r]) continue;
    renumber[r] = digests.length;
    digests.push(all[r] as string);
  }
  const index =
    digests.length === all.length ? allIndex : new Map(digests.map((digest, i) => [digest, i]));
  const { layers, resultsOf } = buildLayers(rows, index);
  const { source, starts, order } = links;
  // Every link written as reported unless a record or a link's source is left out.
  const allKept =
    digests.length === all.length && !order.some((link) => (source[link] as number) < 0);

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
  if (digests.length > 0) {
    text += layers.length > 0 ? ',"records":[' : '"records":[';
    // Kept records keep their order, so ordering links by old index orders them by new index.
    const byLink = (a: number, b: number) =>
      (rows.inputs[a] as number) - (rows.inputs[b] as number) ||
      (source[a] as number) - (source[b] as number) ||
      compareStrings(rows.selectors[a] as string, rows.selectors[b] as string);
    for (let r = 0; r < all.length; r++) {
      const at = renumber[r] as number;
      if (at < 0) continue;
      text += at === 0 ? '{' : ',{';
      const results = resultsOf[at];
      if (results) text += `"layers":[${results.map(writeResult).join(',')}],`;
      // Digests were validated when reported: lower-case `algorithm:hex`, nothing to escape.
      text += `"digest":"${digests[at]}"`;
      const reported = order.subarray(starts[r] as number, starts[r + 1] as number);
      const mine = allKept
        ? reported
        : reported.filter((link) => keep[source[link] as number] === 1);
      if (mine.length > 0) {
        text += ',"inputs":[[';
        let group = 0;
        let empty = true;
        for (const link of mine.length === 1 ? mine : mine.sort(byLink)) {
          for (const input = rows.inputs[link] as number; group < input; group++) {
            text += '],[';
            empty = true;
          }
          const selector = rows.selectors[link] as string;
          text += empty ? '' : ',';
          const from = renumber[source[link] as number];
          text += selector
            ? `{"selector":${goJsonString(selector)},"link":${from}}`
            : `{"link":${from}}`;
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

/**
 * Links by record index: `source[i]` (-1 when unknown) and, for each target record `r`, its links
 * `order[starts[r]..starts[r + 1])` (a counting sort; links to unknown records are left out).
 */
interface GroupedLinks {
  readonly source: Int32Array;
  readonly target: Int32Array;
  readonly starts: Int32Array;
  readonly order: Int32Array;
}

function groupLinks(rows: NamespaceRows, index: ReadonlyMap<string, number>): GroupedLinks {
  const count = index.size;
  const linkCount = rows.targets.length;
  const source = new Int32Array(linkCount);
  const target = new Int32Array(linkCount);
  const starts = new Int32Array(count + 1);
  for (let i = 0; i < linkCount; i++) {
    const t = index.get(rows.targets[i] as string);
    source[i] = index.get(rows.sources[i] as string) ?? -1;
    target[i] = t ?? -1;
    if (t !== undefined) starts[t + 1] = (starts[t + 1] as number) + 1;
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
  return { source, target, starts, order };
}

/**
 * 1 for each record that can be reached (every input group up to its last linked input holds a
 * link from a kept record), 0 for the others; a record dropped makes the records it links to be
 * looked at again (a worklist, so a long chain costs one look per link).
 */
function reachableRecords(
  count: number,
  { source, target, starts, order }: GroupedLinks,
  inputs: readonly number[],
): Uint8Array {
  const keep = new Uint8Array(count).fill(1);
  let widest = 0;
  for (const link of order) widest = Math.max(widest, inputs[link] as number);
  // seen[input] === stamp when the record looked at has a kept link at that input.
  const seen = new Int32Array(widest + 1);
  let stamp = 0;
  const hasEmptyGroup = (r: number): boolean => {
    const from = starts[r] as number;
    const to = starts[r + 1] as number;
    if (from === to) return false;
    stamp++;
    let last = 0;
    let linked = 0;
    for (let i = from; i < to; i++) {
      const link = order[i] as number;
      const input = inputs[link] as number;
      last = Math.max(last, input);
      const s = source[link] as number;
      if (s >= 0 && keep[s] === 1 && seen[input] !== stamp) {
        seen[input] = stamp;
        linked++;
      }
    }
    return linked < last + 1;
  };
  const dropped: number[] = [];
  for (let r = 0; r < count; r++) {
    if (hasEmptyGroup(r)) {
      keep[r] = 0;
      dropped.push(r);
    }
  }
  if (dropped.length === 0) return keep;

  // Outgoing links per source record, to look again at the targets of a dropped record.
  const outStarts = new Int32Array(count + 1);
  for (const link of order) {
    const s = source[link] as number;
    if (s >= 0) outStarts[s + 1] = (outStarts[s + 1] as number) + 1;
  }
  for (let r = 0; r < count; r++) {
    outStarts[r + 1] = (outStarts[r + 1] as number) + (outStarts[r] as number);
  }
  const outgoing = new Int32Array(outStarts[count] as number);
  const fill = outStarts.slice(0, count);
  for (const link of order) {
    const s = source[link] as number;
    if (s < 0) continue;
    outgoing[fill[s] as number] = link;
    fill[s] = (fill[s] as number) + 1;
  }
  for (let r = dropped.pop(); r !== undefined; r = dropped.pop()) {
    for (let i = outStarts[r] as number; i < (outStarts[r + 1] as number); i++) {
      const t = target[outgoing[i] as number] as number;
      if (keep[t] === 1 && hasEmptyGroup(t)) {
        keep[t] = 0;
        dropped.push(t);
      }
    }
  }
  return keep;
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
