import type { CacheLayer, CacheRecord } from './config.ts';
import { compareGoTimes } from './go-time.ts';
import type { CacheGraph } from './graph.ts';
import { finalRecords } from './order.ts';

/**
 * The layer each step of a cache made, by record index: the top layer of its newest result; for
 * a step without a result (a cache written by a build served from another cache keeps only the
 * results of the steps that ran), the layer at its place in its final step's chain when that
 * can be told (see {@link alignLine}). Records without inputs have none.
 */
export function stepLayers(graph: CacheGraph): Map<number, string> {
  const layers = new Map<number, string>();
  graph.config.records.forEach((record, index) => {
    const top = newestTop(graph, record);
    if (top !== undefined) layers.set(index, top);
  });
  for (const final of finalRecords(graph.config.records)) alignLine(graph, final, layers);
  return layers;
}

/**
 * Steps without a result on the input-0 line down from `final` (each COPY or RUN adds one layer
 * on top of its input 0) take the layer at their place in the final result's chain, when every
 * step of that line that has a result sits exactly at its place.
 */
function alignLine(graph: CacheGraph, final: number, layers: Map<number, string>): void {
  const { records } = graph.config;
  const result = graph.newestResult(final);
  if (!result) return;
  const line: number[] = [];
  for (let index: number | undefined = final; index !== undefined; ) {
    const record = records[index] as CacheRecord;
    if (record.inputs.length === 0) break;
    line.push(index);
    index = (record.inputs[0] ?? []).find(
      (input) => (records[input.link] as CacheRecord).inputs.length > 0,
    )?.link;
  }
  const chain = result.layers.map((layer) => layer.blob);
  const misplaced = line.some((index, k) => {
    const own = layers.get(index);
    return own !== undefined && chain[chain.length - 1 - k] !== own;
  });
  if (misplaced) return;
  line.forEach((index, k) => {
    const blob = chain[chain.length - 1 - k];
    if (blob !== undefined && !layers.has(index)) layers.set(index, blob);
  });
}

/** The top layer of the record's newest result (first on ties), without walking its chain. */
function newestTop(graph: CacheGraph, record: CacheRecord): string | undefined {
  let best: { createdAt: string; layer: number } | undefined;
  const consider = (createdAt: string, layer: number | undefined) => {
    if (layer === undefined) return;
    if (!best || compareGoTimes(createdAt, best.createdAt) > 0) best = { createdAt, layer };
  };
  for (const result of record.results) consider(result.createdAt, result.layer);
  for (const chained of record.chains) consider(chained.createdAt, chained.layers.at(-1));
  return best === undefined ? undefined : (graph.config.layers[best.layer] as CacheLayer).blob;
}
