import test from 'ava';
import fc from 'fast-check';
import { type CacheConfig, validateCacheConfig } from '../../src/cache/config.ts';
import { mergeCacheConfigs } from '../../src/cache/merge.ts';
import { arbitraryConfig, at, config, describe, hex } from './_configs.ts';

/** Validate a plain copy, so the merge's own "valid by construction" mark is not trusted. */
const valid = (merged: CacheConfig) => validateCacheConfig(structuredClone(merged));

// A build: base (key 1, layer A) -> RUN (key 2, layer A>B) -> COPY (key 3, inputs RUN + context 4).
const buildOne = config(
  [
    [0xa, -1],
    [0xb, 0],
    [0xc, 1],
  ],
  [
    { key: 1, results: [[0, 10]] },
    { key: 2, results: [[1, 11]], inputs: [[0]] },
    { key: 4 },
    { key: 3, results: [[2, 12]], inputs: [[1], [2]] },
  ],
);

test('the same build exported twice merges into one record per step, newest result first', (t) => {
  // The same keys and links, listed in another order, with a newer result for the RUN step.
  const again = config(
    [
      [0xb, 1],
      [0xa, -1],
      [0xd, 1],
    ],
    [
      { key: 4 },
      { key: 2, results: [[2, 30]], inputs: [[2]] },
      { key: 1, results: [[1, 20]] },
      { key: 3, inputs: [[1], [0]] },
    ],
  );
  const merged = mergeCacheConfigs([buildOne, again]);
  valid(merged.config);
  t.like(merged.stats, { recordsIn: 8, records: 4, resultsIn: 5, results: 4, layers: 4 });
  t.deepEqual(describe(merged.config), [
    `001() [000a@${at(20)}]`,
    `002(001()) [000a>000b@${at(11)} 000a>000d@${at(30)}]`,
    `003(002(001());004()) [000a>000b>000c@${at(12)}]`,
    '004() []',
  ]);
  const run = merged.config.records.find((r) => r.digest === hex(2));
  t.deepEqual(
    run?.results.map((r) => r.createdAt),
    [at(30), at(11)],
  );
});

test('records with one key but other links, inputs or selectors stay apart', (t) => {
  const other = config(
    [[0xe, -1]],
    [
      { key: 9, results: [[0, 40]] },
      { key: 2, results: [[0, 41]], inputs: [[0]] }, // RUN on another base
      { key: 1, results: [[0, 42]] }, // same base key, other layer: same record
      { key: 2, results: [[0, 43]], inputs: [[[2, 'sha256:sel']]] }, // same base, a selector
      { key: 2, results: [[0, 44]], inputs: [[2], [2]] }, // two inputs
    ],
  );
  const merged = mergeCacheConfigs([buildOne, other]);
  valid(merged.config);
  t.deepEqual(describe(merged.config), [
    `001() [000a@${at(10)} 000e@${at(42)}]`,
    `002(001()) [000a>000b@${at(11)}]`,
    `002(001();001()) [000e@${at(44)}]`,
    `002(009()) [000e@${at(41)}]`,
    `002(sha256:sel001()) [000e@${at(43)}]`,
    `003(002(001());004()) [000a>000b>000c@${at(12)}]`,
    '004() []',
    `009() [000e@${at(40)}]`,
  ]);
});

test('alternatives of an input are a set: order and repeats do not split a record', (t) => {
  const a = config([], [{ key: 1 }, { key: 2 }, { key: 3, inputs: [[0, 1]] }]);
  const b = config([], [{ key: 2 }, { key: 1 }, { key: 3, inputs: [[0, 1, 0]] }]);
  t.is(mergeCacheConfigs([a, b]).config.records.length, 3);
});

test('layers are one per blob and parent chain; a blob on two chains is two layers', (t) => {
  const a = config(
    [
      [1, -1],
      [2, 0],
    ],
    [{ key: 1, results: [[1, 1]] }],
  );
  const b = config(
    [
      [3, -1],
      [2, 0],
      [1, -1],
      [2, 2],
    ],
    [
      { key: 1, results: [[3, 2]] },
      { key: 5, results: [[1, 3]] },
    ],
  );
  const merged = mergeCacheConfigs([a, b]);
  t.deepEqual(
    merged.config.layers.map((l) => [l.blob, l.parent]),
    [
      [hex(1), -1],
      [hex(2), 0],
      [hex(3), -1],
      [hex(2), 2],
    ],
  );
  // The same chain in both sources is one result, at its newest time.
  t.deepEqual(merged.config.records[0]?.results, [{ layer: 1, createdAt: at(2) }]);
  t.like(merged.stats, { layersIn: 6, layers: 4 });
});

test('layers no result loads are left out', (t) => {
  const merged = mergeCacheConfigs([config([[1, -1]], [{ key: 1 }])]);
  t.deepEqual(merged.config.layers, []);
});

test('a 64-level diamond (2^64 paths) merges with its copy in one pass', (t) => {
  const records: Parameters<typeof config>[1][number][] = [{ key: 0, results: [[0, 0]] }];
  for (let level = 1; level <= 64; level++) {
    const below = records.length - 1;
    records.push({ key: 2 * level, inputs: [[below]] });
    records.push({ key: 2 * level + 1, inputs: [[below]] });
    records.push({ key: 1000 + level, inputs: [[records.length - 2, records.length - 1]] });
  }
  const diamond = config([[1, -1]], records);
  const merged = mergeCacheConfigs([diamond, diamond]);
  t.is(merged.config.records.length, diamond.records.length);
});

test('merging is commutative and idempotent, and its output is valid', (t) => {
  fc.assert(
    fc.property(arbitraryConfig(), arbitraryConfig(), (a, b) => {
      const ab = mergeCacheConfigs([a, b]).config;
      valid(ab);
      const ba = mergeCacheConfigs([b, a]).config;
      const abb = mergeCacheConfigs([ab, b]).config;
      const once = describe(ab).join('\n');
      return once === describe(ba).join('\n') && once === describe(abb).join('\n');
    }),
    { numRuns: 300 },
  );
  t.pass();
});
