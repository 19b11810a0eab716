import { createHash } from 'node:crypto';
import test from 'ava';
import type { CacheConfig, CacheInput } from '../../src/cache/config.ts';
import { CacheGraph } from '../../src/cache/graph.ts';
import {
  CacheImportCache,
  type CacheKey,
  CacheKeyStore,
  checkCache,
  contentKey,
  lookupCacheKeys,
  openCacheSource,
  operationKey,
  recordDigest,
  recordKeys,
} from '../../src/cache/index.ts';
import { writeSampleImages } from './_buildkit.ts';

const hex = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const TIME = '2026-01-01T00:00:00Z';

/** A record of a hand-made config: digest number, input groups, optional result layer. */
interface Rec {
  d: number;
  in?: Array<Array<[number, string?]>>;
  layer?: number;
}

/** A config over `layers` blobs (a chain, parent i-1) and records. */
function config(records: Rec[], layers = 4): CacheConfig {
  return {
    layers: Array.from({ length: layers }, (_, i) => ({ blob: hex(1000 + i), parent: i - 1 })),
    records: records.map((r) => ({
      digest: hex(r.d),
      results: r.layer === undefined ? [] : [{ layer: r.layer, createdAt: TIME }],
      chains: [],
      inputs: (r.in ?? []).map((group) =>
        group.map(([link, selector]): CacheInput => (selector ? { link, selector } : { link })),
      ),
    })),
  };
}

const store = (...configs: CacheConfig[]) =>
  new CacheKeyStore(configs.map((c, i) => ({ name: `cache${i}`, graph: CacheGraph.from(c) })));

const key = (digest: number, inputs: Array<Array<[CacheKey, string?]>> = []): CacheKey => ({
  digest: hex(digest),
  inputs: inputs.map((group) =>
    group.map(([k, selector]) => (selector ? { key: k, selector } : { key: k })),
  ),
});

// base (1) -> COPY a (10, content 2) -> RUN (11) -> COPY b (12, content 3)
const CACHED = config([
  { d: 1 },
  { d: 2 },
  { d: 3 },
  { d: 10, in: [[[0]], [[1]]], layer: 1 },
  { d: 11, in: [[[3]]], layer: 2 },
  { d: 12, in: [[[4]], [[2]]], layer: 3 },
]);

test('record digests are the sha256 of "<operation>@<output>", as BuildKit writes them', (t) => {
  const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
  t.is(recordDigest(hex(5)), sha(`${hex(5)}@0`));
  t.is(recordDigest(hex(5), 2), sha(`${hex(5)}@2`));
  t.is(contentKey(hex(7)).digest, sha(`${hex(7)}@-1`));
  t.true(recordDigest('random:abc').startsWith('random:'));
  const op = operationKey({ digest: hex(5), inputs: [[{ key: contentKey(hex(7)) }]] });
  t.is(op.digest, sha(`${hex(5)}@0`));
  t.is(op.inputs[0]?.[0]?.key.digest, sha(`${hex(7)}@-1`));
});

test('a key matches when every input links from a matching key to its digest', (t) => {
  const s = store(CACHED);
  const base = key(1);
  const copyA = key(10, [[[base]], [[key(2)]]]);
  const run = key(11, [[[copyA]]]);
  const copyB = key(12, [[[run]], [[key(3)]]]);
  t.deepEqual(
    s.match(copyB).map((item) => item.record),
    [5],
  );
  t.is(s.match(copyB)[0]?.result?.layers.length, 4);
});

test('a step whose content changed keeps its digest but does not match', (t) => {
  const s = store(CACHED);
  const copyA = key(10, [[[key(1)]], [[key(2)]]]);
  const run = key(11, [[[copyA]]]);
  // COPY b reads other files: its content key (4) is not in the cache.
  const copyB = key(12, [[[run]], [[key(4)]]]);
  t.deepEqual(s.match(copyB), []);
  t.is(s.withDigest(hex(12)).length, 1, 'a digest-only lookup would say hit');
  t.is(s.matchInput(copyB, 0).length, 1);
  t.is(s.matchInput(copyB, 1).length, 0);
});

test('a parent that changed breaks every step after it', (t) => {
  const s = store(CACHED);
  const copyA = key(10, [[[key(1)]], [[key(9)]]]);
  const run = key(11, [[[copyA]]]);
  t.deepEqual(s.match(copyA), []);
  t.deepEqual(s.match(run), []);
});

test('selectors must be equal', (t) => {
  const s = store(config([{ d: 1 }, { d: 20, in: [[[0, hex(77)]]], layer: 0 }]));
  t.is(s.match(key(20, [[[key(1), hex(77)]]])).length, 1);
  t.is(s.match(key(20, [[[key(1), hex(78)]]])).length, 0);
  t.is(s.match(key(20, [[[key(1)]]])).length, 0);
  t.deepEqual(s.selectorsFrom(s.match(key(1))[0]!, 0, hex(20)), [hex(77)]);
});

test('any key of an input group may match (definition key or content key)', (t) => {
  // A COPY --from: input 1 links from the stage's step (selector) and from a content key.
  const s = store(
    config([
      { d: 1 },
      { d: 2 },
      { d: 30, in: [[[0]]] },
      { d: 31, in: [[[0]], [[2, hex(5)], [1]]], layer: 0 },
    ]),
  );
  const stage = key(30, [[[key(1)]]]);
  const changedStage = key(30, [[[key(9)]]]);
  t.is(s.match(key(31, [[[key(1)]], [[stage, hex(5)]]])).length, 1);
  t.is(s.match(key(31, [[[key(1)]], [[changedStage, hex(5)], [key(2)]]])).length, 1);
  t.is(s.match(key(31, [[[key(1)]], [[changedStage, hex(5)], [key(3)]]])).length, 0);
});

test('all inputs must reach the same record', (t) => {
  // Two records with digest 40: one from (1, 2), one from (3, 4).
  const s = store(
    config([
      { d: 1 },
      { d: 2 },
      { d: 3 },
      { d: 4 },
      { d: 40, in: [[[0]], [[1]]], layer: 0 },
      { d: 40, in: [[[2]], [[3]]], layer: 1 },
    ]),
  );
  t.is(s.match(key(40, [[[key(1)]], [[key(2)]]]))[0]?.record, 4);
  t.is(s.match(key(40, [[[key(3)]], [[key(4)]]]))[0]?.record, 5);
  t.deepEqual(s.match(key(40, [[[key(1)]], [[key(4)]]])), []);
  t.is(s.matchInput(key(40, [[[key(1)]], [[key(4)]]]), 0).length, 1);
});

test('a record with inputs never matches a key without inputs', (t) => {
  const s = store(CACHED);
  t.deepEqual(s.match(key(10)), []);
  t.is(s.match(key(1)).length, 1);
});

test('several caches are searched side by side; links never cross from one to another', (t) => {
  const a = config([{ d: 1 }, { d: 2 }, { d: 10, in: [[[0]], [[1]]], layer: 1 }]);
  const b = config([{ d: 1 }, { d: 5 }, { d: 50, in: [[[1]]], layer: 2 }]);
  const s = store(a, b);
  const copyA = key(10, [[[key(1)]], [[key(2)]]]);
  t.deepEqual(
    s.match(copyA).map((item) => item.source.name),
    ['cache0'],
  );
  t.is(s.match(key(1)).length, 2);
  // Step 50 links from 5 in b: 5 is only in b, the match is b's.
  t.deepEqual(
    s.match(key(50, [[[key(5)]]])).map((item) => item.source.name),
    ['cache1'],
  );
  // A record of a (10) and a link only in b: no match.
  const c = config([{ d: 99 }, { d: 10, in: [[[0]]] }, { d: 60, in: [[[1]]], layer: 0 }]);
  const s2 = store(a, c);
  t.deepEqual(s2.match(key(60, [[[copyA]]])), []);
});

test('the keys of a config are its records with their links', (t) => {
  const graph = CacheGraph.from(CACHED);
  const keys = recordKeys(graph);
  const s = store(CACHED);
  keys.forEach((k, index) => {
    t.deepEqual(
      s.match(k).map((item) => item.record),
      [index],
    );
  });
  t.is(keys[5]?.inputs[0]?.[0]?.key, keys[4]);
});

test('a deep chain of keys matches without recursion', (t) => {
  const depth = 20_000;
  const records: Rec[] = [{ d: 1 }];
  for (let i = 1; i < depth; i++) records.push({ d: 10 + i, in: [[[i - 1]]] });
  const graph = CacheGraph.from(config(records, 1));
  const keys = recordKeys(graph);
  t.is(store(graph.config).match(keys[depth - 1]!).length, 1);
});

test('lookupCacheKeys: a build key whose files changed is no hit, though its digest has a result', async (t) => {
  const dir = await writeSampleImages(t, ['chain-v1', 'chain-v2'], {
    missing: { 'chain-v1': [3] },
  });
  const cache = new CacheImportCache();
  const from = `type=local,src=${dir},tag=chain-v1`;
  const build = await openCacheSource(`type=local,src=${dir},tag=chain-v2`, { cache });
  const keys = recordKeys(build.graph);
  const byInstruction = new Map(build.layers.map((layer, i) => [layer.digest, i]));
  const steps = build.config.records
    .map((_record, index) => ({
      index,
      layer: build.graph.newestResult(index)?.layers.at(-1)?.blob,
    }))
    .filter((step) => step.layer !== undefined)
    .sort((a, b) => (byInstruction.get(a.layer!) ?? 0) - (byInstruction.get(b.layer!) ?? 0));
  // Layers 1..5: COPY a, RUN echo, COPY b, COPY c, RUN cat.
  const asked = steps.map((step) => keys[step.index]!);
  const result = await lookupCacheKeys(asked, from, { cache });
  t.deepEqual(
    result.keys.map((found) => [found.matched, found.hit !== undefined]),
    [
      [1, true],
      [1, true],
      [1, false], // COPY b.txt: its layer is missing from chain-v1, so its result cannot load
      [0, false], // COPY c.txt: c.txt changed
      [0, false],
    ],
  );
  const run = result.keys[1]?.hit;
  t.is(run?.source, from);
  t.is(run?.chain.length, 3);
  t.true(run?.chain.every((blob) => blob.exists));
  t.is(result.layerBytesDownloaded, 0);
  // A digest-only check says COPY c.txt hits.
  const check = await checkCache(from, [asked[3]!.digest], { cache });
  t.is(check.hits.length, 1);
  t.is(check.lookup, 'record-digest');
});

test('the importer keeps the last result it parses: results first, then chains', (t) => {
  const base = config([{ d: 1 }, { d: 60, in: [[[0]]], layer: 1 }]);
  const [root, step] = base.records as [CacheConfig['records'][0], CacheConfig['records'][0]];
  const twoResults = {
    ...base,
    records: [
      root,
      {
        ...step,
        results: [
          { layer: 2, createdAt: '2026-02-01T00:00:00Z' },
          { layer: 1, createdAt: '2026-01-01T00:00:00Z' },
        ],
      },
    ],
  };
  t.is(store(twoResults).match(key(60, [[[key(1)]]]))[0]?.result?.layers.length, 2);
  const withChain = {
    ...base,
    records: [root, { ...step, chains: [{ layers: [3, 0], createdAt: TIME }] }],
  };
  const result = store(withChain).match(key(60, [[[key(1)]]]))[0]?.result;
  t.true(result?.chained);
  t.deepEqual(
    result?.layers.map((layer) => layer.blob),
    [hex(1003), hex(1000)],
  );
});
