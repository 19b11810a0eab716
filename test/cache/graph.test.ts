import { readFile } from 'node:fs/promises';
import test from 'ava';
import fc from 'fast-check';
import type { CacheConfig, CacheLayer, CacheRecord } from '../../src/cache/config.ts';
import { parseCacheConfig } from '../../src/cache/config-parse.ts';
import { serializeCacheConfig, sortCacheConfig } from '../../src/cache/config-write.ts';
import { CacheConfigError } from '../../src/cache/errors.ts';
import { ZERO_TIME } from '../../src/cache/go-time.ts';
import { CacheGraph } from '../../src/cache/graph.ts';
import { fixturePath } from '../helpers/fixtures.ts';

const hex = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const load = async (name: string) =>
  (await parseCacheConfig(await readFile(fixturePath(`cacheconfig/${name}`)))).config;
const blobs = (result: { layers: readonly { blob: string }[] } | undefined) =>
  result?.layers.map((l) => l.blob);

interface CacheKeys {
  hits: string[];
  misses: string[];
  withoutResult: string[];
  chains: Record<string, string[]>;
}

test('finds the layer chain of every hit in simple.json, and no result for the rest', async (t) => {
  const graph = CacheGraph.from(await load('simple.json'));
  const keys = JSON.parse(await readFile(fixturePath('cache-keys.json'), 'utf8')) as CacheKeys;
  for (const hit of keys.hits) {
    t.deepEqual(blobs(graph.newestResult(hit)), keys.chains[hit], hit);
  }
  for (const miss of keys.misses) {
    t.false(graph.has(miss));
    t.is(graph.newestResult(miss), undefined);
  }
  for (const key of keys.withoutResult) {
    t.true(graph.has(key));
    t.is(graph.newestResult(key), undefined);
  }
});

test('looks digests up case-insensitively', async (t) => {
  const graph = CacheGraph.from(await load('simple.json'));
  const digest = graph.config.records[2]?.digest as string;
  t.deepEqual(graph.indexesOf(digest.toUpperCase().replace('SHA256', 'sha256')), [2]);
  t.is(graph.record(digest.toUpperCase()), graph.config.records[2]);
});

test('resolves input links with their selectors and digests', async (t) => {
  const graph = CacheGraph.from(await load('simple.json'));
  const record = graph.config.records[0] as CacheRecord;
  const inputs = graph.inputs(record.digest);
  t.is(inputs.length, 2);
  t.deepEqual(inputs[1], [
    {
      selector: record.inputs[1]?.[0]?.selector,
      link: 5,
      digest: graph.config.records[5]?.digest,
    },
  ]);
  t.deepEqual(graph.inputs(hex(99)), []);
});

/** Two records share a digest (one step run on two different bases), one with a chained result. */
const shared: CacheConfig = {
  layers: [
    { blob: 'sha256:base-a', parent: -1 },
    { blob: 'sha256:base-b', parent: -1 },
    { blob: 'sha256:run-a', parent: 0, annotations: { size: 5, createdAt: ZERO_TIME } },
    { blob: 'sha256:run-b', parent: 1 },
  ],
  records: [
    {
      digest: 'sha256:A',
      results: [{ layer: 0, createdAt: '2025-01-01T00:00:00Z' }],
      chains: [],
      inputs: [],
    },
    {
      digest: 'sha256:B',
      results: [{ layer: 1, createdAt: '2025-01-01T00:00:00Z' }],
      chains: [],
      inputs: [],
    },
    {
      digest: 'sha256:RUN',
      results: [{ layer: 2, createdAt: '2025-01-03T00:00:00+05:00' }],
      chains: [],
      inputs: [[{ link: 0 }]],
    },
    {
      digest: 'sha256:run',
      results: [{ layer: 3, createdAt: '2025-01-02T20:00:00Z' }],
      chains: [{ layers: [1, 3], createdAt: '2025-01-02T20:00:00.000000001Z' }],
      inputs: [[{ selector: 'sel', link: 1 }]],
    },
  ],
};

test('a digest shared by several records names all of them', (t) => {
  const graph = CacheGraph.from(shared);
  t.deepEqual(graph.indexesOf('sha256:run'), [2, 3]);
  t.is(graph.record('sha256:run'), shared.records[2], 'record() is the first');
  t.deepEqual(graph.indexesOf(3), [3]);
  t.deepEqual(graph.indexesOf(4), []);
  t.deepEqual(graph.indexesOf(-1), []);
});

test('newestResult compares instants across zones and includes chained results', (t) => {
  const graph = CacheGraph.from(shared);
  // 2025-01-03T00:00:00+05:00 is 2025-01-02T19:00Z: older than both results of record 3.
  const newest = graph.newestResult('sha256:run');
  t.like(newest, { record: 3, chained: true, createdAt: '2025-01-02T20:00:00.000000001Z' });
  t.deepEqual(blobs(newest), ['sha256:base-b', 'sha256:run-b']);
  t.deepEqual(graph.newestResult(2)?.layers, [
    { index: 0, blob: 'sha256:base-a', parentIndex: -1 },
    {
      index: 2,
      blob: 'sha256:run-a',
      parentIndex: 0,
      annotations: { size: 5, createdAt: ZERO_TIME },
    },
  ]);
});

test('on equal times the first result wins, as in BuildKit', (t) => {
  const graph = CacheGraph.from({
    layers: [
      { blob: 'a', parent: -1 },
      { blob: 'b', parent: -1 },
    ],
    records: [
      {
        digest: 'd',
        results: [
          { layer: 1, createdAt: '2025-01-01T01:00:00+01:00' },
          { layer: 0, createdAt: '2025-01-01T00:00:00Z' },
        ],
        chains: [],
        inputs: [],
      },
    ],
  });
  t.deepEqual(blobs(graph.newestResult('d')), ['b']);
});

test('allResults lists every result and chained result with its layers', (t) => {
  const results = CacheGraph.from(shared).allResults();
  t.deepEqual(
    results.map((r) => [r.record, r.chained, blobs(r)?.join(' ')]),
    [
      [0, false, 'sha256:base-a'],
      [1, false, 'sha256:base-b'],
      [2, false, 'sha256:base-a sha256:run-a'],
      [3, false, 'sha256:base-b sha256:run-b'],
      [3, true, 'sha256:base-b sha256:run-b'],
    ],
  );
});

test('reachableFrom goes down the inputs, never up, and takes the layers results load', (t) => {
  const graph = CacheGraph.from(shared);
  t.deepEqual(graph.reachableFrom([3]), { records: [1, 3], layers: [1, 3] });
  t.deepEqual(graph.reachableFrom(['sha256:run']), { records: [0, 1, 2, 3], layers: [0, 1, 2, 3] });
  t.deepEqual(graph.reachableFrom(['sha256:A']), { records: [0], layers: [0] });
  t.deepEqual(graph.reachableFrom([hex(1), 42]), { records: [], layers: [] });
});

test('subset re-indexes what a key needs into a valid config', async (t) => {
  const graph = CacheGraph.from(shared);
  const subset = graph.subset([3]);
  t.deepEqual(subset, {
    layers: [
      { blob: 'sha256:base-b', parent: -1 },
      { blob: 'sha256:run-b', parent: 0 },
    ],
    records: [
      {
        ...(shared.records[1] as CacheRecord),
        results: [{ layer: 0, createdAt: '2025-01-01T00:00:00Z' }],
      },
      {
        ...(shared.records[3] as CacheRecord),
        results: [{ layer: 1, createdAt: '2025-01-02T20:00:00Z' }],
        chains: [{ layers: [0, 1], createdAt: '2025-01-02T20:00:00.000000001Z' }],
        inputs: [[{ selector: 'sel', link: 0 }]],
      },
    ],
  });
  const reparsed = await parseCacheConfig(serializeCacheConfig(sortCacheConfig(subset)));
  t.deepEqual(
    blobs(CacheGraph.from(reparsed.config).newestResult('sha256:run')),
    blobs(graph.newestResult(3)),
  );
  t.deepEqual(graph.subset([]), { layers: [], records: [] });
});

test('subset of simple.json keeps exactly the ancestry of a key', async (t) => {
  const graph = CacheGraph.from(await load('simple.json'));
  const keys = JSON.parse(await readFile(fixturePath('cache-keys.json'), 'utf8')) as CacheKeys;
  for (const hit of keys.hits) {
    const sub = CacheGraph.from(graph.subset([hit]));
    t.deepEqual(blobs(sub.newestResult(hit)), keys.chains[hit]);
    t.deepEqual(
      sub.config.records.map((r) => r.digest).sort(),
      graph
        .reachableFrom([hit])
        .records.map((i) => graph.config.records[i]?.digest)
        .sort(),
    );
  }
});

test('from() validates configs that did not come from the parser', (t) => {
  const error = t.throws(
    () =>
      CacheGraph.from({
        layers: [],
        records: [
          { digest: 'd', results: [{ layer: 0, createdAt: ZERO_TIME }], chains: [], inputs: [] },
        ],
      }),
    { instanceOf: CacheConfigError },
  );
  t.regex(error?.message ?? '', /record 0 \(d\): result 0 names layer 0, out of range/);
});

test('a parent loop introduced after validation is caught by the chain walk', (t) => {
  const layers: CacheLayer[] = [
    { blob: 'a', parent: -1 },
    { blob: 'b', parent: 0 },
  ];
  const graph = CacheGraph.from({
    layers,
    records: [
      { digest: 'd', results: [{ layer: 1, createdAt: ZERO_TIME }], chains: [], inputs: [] },
    ],
  });
  layers[0] = { blob: 'a', parent: 1 };
  t.throws(() => graph.newestResult('d'), {
    instanceOf: CacheConfigError,
    message: /broken parent chain/,
  });
});

// An exponential walk of these never ends: the suite's timeout is the only clock they need.
test('diamond-64 (2^64 paths through 128 records) loads and walks in linear time', async (t) => {
  const graph = CacheGraph.from(await load('diamond-64.json'));
  const linked = new Set(graph.config.records.flatMap((r) => r.inputs.flat().map((i) => i.link)));
  const tops = graph.config.records.map((_, i) => i).filter((i) => !linked.has(i));
  t.is(tops.length, 2);
  // From one top: everything but the other top (and the other top's own layer).
  t.deepEqual(
    [graph.reachableFrom([tops[0] as number])].map((r) => [r.records.length, r.layers.length]),
    [[127, 127]],
  );
  const reachable = graph.reachableFrom(tops);
  t.is(reachable.records.length, 128);
  t.is(reachable.layers.length, 128);
  t.is(graph.newestResult(tops[0] as number)?.layers.length, 64);
  t.is(graph.allResults().length, 128);
  t.is(graph.subset(tops).records.length, 128);
});

test('a 100k-record, 200k-link config loads and walks completely', (t) => {
  const n = 100_000;
  const layers: CacheLayer[] = Array.from({ length: 1000 }, (_, i) => ({
    blob: hex(i),
    parent: i % 50 === 0 ? -1 : i - 1,
  }));
  const records: CacheRecord[] = Array.from({ length: n }, (_, i) => ({
    digest: hex(1e7 + i),
    results: i % 3 === 0 ? [{ layer: i % 1000, createdAt: ZERO_TIME }] : [],
    chains: [],
    inputs: i < 2 ? [] : [[{ link: i - 1 }, { link: i - 2 }]],
  }));
  const graph = CacheGraph.from({ layers, records });
  const reachable = graph.reachableFrom([hex(1e7 + n - 1)]);
  t.is(reachable.records.length, n);
  t.is(reachable.layers.length, 1000);
  t.is(graph.allResults().length, Math.ceil(n / 3));
  t.is(graph.subset([n - 1]).records.length, n);
});

// ---- property: walks agree with a naive definition ----

const configs: fc.Arbitrary<CacheConfig> = fc
  .tuple(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 1, max: 12 }))
  .chain(([nl, nr]) =>
    fc.record({
      layers: fc.tuple(
        ...Array.from({ length: nl }, (_, i) =>
          fc.record({
            blob: fc.constantFrom('a', 'b', 'c', `l${i}`),
            parent: fc.integer({ min: -1, max: i - 1 }),
          }),
        ),
      ),
      records: fc.tuple(
        ...Array.from({ length: nr }, (_, i) =>
          fc.record({
            digest: fc.constantFrom('sha256:x', 'sha256:y', `sha256:r${i}`),
            results:
              nl === 0
                ? fc.constant([])
                : fc.array(
                    fc.record({ layer: fc.nat(nl - 1), createdAt: fc.constant(ZERO_TIME) }),
                    { maxLength: 2 },
                  ),
            chains: fc.constant([]),
            inputs:
              i === 0
                ? fc.constant([])
                : fc.array(
                    fc.array(fc.record({ link: fc.nat(i - 1) }), { minLength: 1, maxLength: 3 }),
                    {
                      maxLength: 2,
                    },
                  ),
          }),
        ),
      ),
    }),
  );

test('property: reachableFrom and subset agree with a naive recursive walk', (t) => {
  fc.assert(
    fc.property(configs, fc.array(fc.nat(11), { maxLength: 3 }), (config, starts) => {
      const graph = CacheGraph.from(config);
      const records = new Set<number>();
      const layers = new Set<number>();
      const visit = (i: number) => {
        const r = config.records[i];
        if (!r || records.has(i)) return;
        records.add(i);
        for (const res of r.results) {
          for (let l = res.layer; l !== -1; l = config.layers[l]?.parent ?? -1) layers.add(l);
        }
        for (const g of r.inputs) for (const input of g) visit(input.link);
      };
      for (const s of starts) visit(s);
      const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
      t.deepEqual(graph.reachableFrom(starts), {
        records: sorted(records),
        layers: sorted(layers),
      });
      const sub = CacheGraph.from(graph.subset(starts));
      t.deepEqual(
        sub.allResults().map((r) => [r.digest, blobs(r)]),
        graph
          .allResults()
          .filter((r) => records.has(r.record))
          .map((r) => [r.digest, blobs(r)]),
      );
    }),
  );
});
