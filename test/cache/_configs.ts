/** Hand-made and generated cache configs for the merge, prune and selection tests. */
import fc from 'fast-check';
import type { CacheConfig, CacheLayer, CacheRecord } from '../../src/cache/config.ts';

/** `sha256:` + n in 64 hex digits. */
export const hex = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

/** An RFC 3339 time `minutes` after 2025-01-01T00:00:00Z, as Go writes it. */
export const at = (minutes: number) =>
  new Date(Date.UTC(2025, 0, 1) + minutes * 60_000).toISOString().replace('.000Z', 'Z');

/**
 * A config in a small language: `layers` as [blob, parent] pairs, records as objects with
 * digest number, results as [layer, minute] pairs, inputs as groups of record indexes (or
 * [index, selector] pairs).
 */
export function config(
  layers: ReadonlyArray<readonly [blob: number, parent: number]>,
  records: ReadonlyArray<{
    key: number;
    results?: ReadonlyArray<readonly [layer: number, minute: number]>;
    inputs?: ReadonlyArray<ReadonlyArray<number | readonly [number, string]>>;
  }>,
): CacheConfig {
  return {
    layers: layers.map(([blob, parent]) => ({ blob: hex(blob), parent })),
    records: records.map(
      (record): CacheRecord => ({
        digest: hex(record.key),
        results: (record.results ?? []).map(([layer, minute]) => ({
          layer,
          createdAt: at(minute),
        })),
        chains: [],
        inputs: (record.inputs ?? []).map((group) =>
          group.map((input) =>
            typeof input === 'number' ? { link: input } : { link: input[0], selector: input[1] },
          ),
        ),
      }),
    ),
  };
}

/**
 * Valid configs of up to `max` records and layers: layer parents and record links only point to
 * lower indexes (no loop), a few digests and blobs repeat, selectors, chained results, layer
 * annotations and odd times (non-UTC offsets, fractions, the zero time) appear.
 */
export function arbitraryConfig(max = 12): fc.Arbitrary<CacheConfig> {
  const time = fc.oneof(
    fc.integer({ min: 0, max: 50 }).map(at),
    fc.constant('0001-01-01T00:00:00Z'),
    fc.integer({ min: 0, max: 50 }).map((m) => at(m).replace('Z', '.5+02:00')),
  );
  return fc
    .record({
      layerCount: fc.integer({ min: 0, max }),
      recordCount: fc.integer({ min: 0, max }),
      seed: fc.array(fc.nat(1000), { minLength: 400, maxLength: 400 }),
      times: fc.array(time, { minLength: 40, maxLength: 40 }),
    })
    .map(({ layerCount, recordCount, seed, times }) => {
      let s = 0;
      const next = (n: number) => (n <= 0 ? 0 : (seed[s++ % seed.length] as number) % n);
      const layers: CacheLayer[] = Array.from({ length: layerCount }, (_, i) => ({
        blob: hex(next(layerCount) + 1000),
        parent: i === 0 || next(4) === 0 ? -1 : next(i),
        ...(next(6) === 0
          ? { annotations: { createdAt: times[next(40)] as string, size: 5 } }
          : {}),
      }));
      const records: CacheRecord[] = Array.from({ length: recordCount }, (_, i) => ({
        digest: hex(next(Math.max(1, recordCount - 2))),
        results:
          layerCount === 0
            ? []
            : Array.from({ length: next(3) }, () => ({
                layer: next(layerCount),
                createdAt: times[next(40)] as string,
              })),
        chains:
          layerCount === 0 || next(5) !== 0
            ? []
            : [
                {
                  layers: Array.from({ length: next(3) }, () => next(layerCount)),
                  createdAt: times[next(40)] as string,
                },
              ],
        inputs:
          i === 0
            ? []
            : Array.from({ length: next(3) }, () =>
                Array.from({ length: 1 + next(2) }, () => {
                  const link = next(i);
                  return next(3) === 0 ? { link, selector: `sel${next(2)}<&>` } : { link };
                }),
              ),
      }));
      return { layers, records };
    });
}

/**
 * An index-free view of a config, one line per record, sorted: its key and what its inputs link
 * to (recursively), then its results (layer chains and times) and chained results, sorted.
 */
export function describe(config: CacheConfig): string[] {
  const memo = new Map<number, string>();
  const chain = (layer: number): string => {
    const entry = config.layers[layer] as CacheLayer;
    return entry.parent === -1
      ? entry.blob.slice(-4)
      : `${chain(entry.parent)}>${entry.blob.slice(-4)}`;
  };
  const name = (index: number): string => {
    const known = memo.get(index);
    if (known !== undefined) return known;
    const record = config.records[index] as CacheRecord;
    const inputs = record.inputs.map((group) =>
      [...new Set(group.map((i) => `${i.selector ?? ''}${name(i.link)}`))].sort().join('|'),
    );
    const text = `${record.digest.slice(-3)}(${inputs.join(';')})`;
    memo.set(index, text);
    return text;
  };
  return config.records
    .map((record, i) => {
      const results = [
        ...record.results.map((r) => `${chain(r.layer)}@${r.createdAt}`),
        ...record.chains.map((c) => `(${c.layers.map(chain).join(',')})@${c.createdAt}`),
      ].sort();
      return `${name(i)} [${results.join(' ')}]`;
    })
    .sort();
}
