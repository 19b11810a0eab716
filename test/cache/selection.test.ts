import test from 'ava';
import fc from 'fast-check';
import type { CacheConfig, CacheRecord } from '../../src/cache/config.ts';
import { serializeCacheConfig, sortCacheConfig } from '../../src/cache/config-write.ts';
import { type CacheSelection, SelectableConfig } from '../../src/cache/selection.ts';
import { arbitraryConfig } from './_configs.ts';

/** A closed selection: some results, some extra records, and everything they need. */
function closedSelection(view: SelectableConfig, picks: readonly number[]): CacheSelection {
  const { layers, records } = view.config;
  const selection = {
    records: new Uint8Array(records.length),
    layers: new Uint8Array(layers.length),
    results: new Uint8Array(view.resultCount),
  };
  let p = 0;
  const pick = () => (picks[p++ % picks.length] as number) % 3 === 0;
  const keepLayer = (layer: number) => {
    for (let i = layer; i !== -1 && selection.layers[i] === 0; i = layers[i]?.parent ?? -1) {
      selection.layers[i] = 1;
    }
  };
  const keepRecord = (index: number) => {
    if (selection.records[index] === 1) return;
    selection.records[index] = 1;
    for (const group of (records[index] as CacheRecord).inputs) {
      for (const { link } of group) keepRecord(link);
    }
  };
  records.forEach((record, i) => {
    let r = view.resultOffsets[i] as number;
    for (const result of record.results) {
      if (pick()) {
        selection.results[r] = 1;
        keepRecord(i);
        keepLayer(result.layer);
      }
      r++;
    }
    for (const chain of record.chains) {
      if (pick()) {
        selection.results[r] = 1;
        keepRecord(i);
        for (const layer of chain.layers) keepLayer(layer);
      }
      r++;
    }
    if (pick()) keepRecord(i);
  });
  layers.forEach((_, i) => {
    if (pick()) keepLayer(i);
  });
  return selection;
}

test('the size of a selection is the length of its serialized subset, byte for byte', (t) => {
  fc.assert(
    fc.property(
      arbitraryConfig(),
      fc.array(fc.nat(), { minLength: 1, maxLength: 50 }),
      (config, picks) => {
        const view = new SelectableConfig(sortCacheConfig(config));
        const selection = closedSelection(view, picks);
        const subset = view.subset(selection);
        return view.size(selection) === serializeCacheConfig(subset).length;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('sizes count multi-byte selectors and large indexes', (t) => {
  const config: CacheConfig = {
    layers: Array.from({ length: 120 }, (_, i) => ({
      blob: `sha256:${String(i).padStart(64, '0')}`,
      parent: i - 1,
    })),
    records: [
      { digest: 'sha256:a', results: [], chains: [], inputs: [] },
      {
        digest: 'sha256:b',
        results: [{ layer: 119, createdAt: '2025-01-01T00:00:00Z' }],
        chains: [{ layers: [], createdAt: '0001-01-01T00:00:00Z' }],
        inputs: [[{ link: 0, selector: 'é→<' }]],
      },
    ],
  };
  const view = new SelectableConfig(sortCacheConfig(config));
  const everything = {
    records: new Uint8Array([1, 1]),
    layers: new Uint8Array(120).fill(1),
    results: new Uint8Array([1, 1]),
  };
  t.is(view.size(everything), serializeCacheConfig(view.subset(everything)).length);
  const nothing = {
    records: new Uint8Array(2),
    layers: new Uint8Array(120),
    results: new Uint8Array(2),
  };
  t.is(view.size(nothing), 2);
  t.is(serializeCacheConfig(view.subset(nothing)).toString(), '{}');
});
