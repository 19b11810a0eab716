import test from 'ava';
import fc from 'fast-check';
import { type CacheConfig, validateCacheConfig } from '../../src/cache/config.ts';
import { serializeCacheConfig } from '../../src/cache/config-write.ts';
import { CacheImportCache, openCacheSource } from '../../src/cache/index.ts';
import { mergeCacheConfigs } from '../../src/cache/merge.ts';
import { mergeCaches } from '../../src/cache/merge-caches.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import { startRegistry } from '../helpers/registry.ts';
import { buildCaches, layerBlobs, pushCache } from './_builds.ts';
import { arbitraryConfig, at, config, describe, hex } from './_configs.ts';
import { blobGets, client } from './_support.ts';

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
  // Sorted as BuildKit sorts: by blob, then parent.
  const { layers } = merged.config;
  t.deepEqual(
    layers.map((l) => [l.blob, l.parent === -1 ? -1 : layers[l.parent]?.blob]),
    [
      [hex(1), -1],
      [hex(2), hex(1)],
      [hex(2), hex(3)],
      [hex(3), -1],
    ],
  );
  // The same chain in both sources is one result, at its newest time.
  t.deepEqual(describe(merged.config), [
    `001() [0001>0002@${at(2)}]`,
    `005() [0003>0002@${at(3)}]`,
  ]);
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

// ---- Against the registry ----

/** Options that share nothing with other tests: a client, a config cache, blob locations. */
function isolated(t: import('ava').ExecutionContext) {
  return { client: client(t), cache: new CacheImportCache(), blobLocations: new BlobLocations() };
}

test('two caches on one registry merge with mounts only: no layer is read', async (t) => {
  const registry = await startRegistry(t);
  const blobs = layerBlobs();
  const { a, b } = buildCaches(blobs);
  const c = client(t);
  await pushCache(c, registry, 'src/a', 'cache', a, blobs);
  await pushCache(c, registry, 'src/b', 'cache', b, blobs);
  const mark = await registry.mark();

  const result = await mergeCaches(
    [
      `type=registry,ref=${registry.host}/src/a:cache`,
      `type=registry,ref=${registry.host}/src/b:cache`,
    ],
    `type=registry,ref=${registry.host}/dst/app:cache`,
    isolated(t),
  );

  // L0..L4 mounted from the sources' repositories, the new config uploaded.
  t.like(result.blobs, { mounted: 5, uploaded: 1, bytesDownloaded: 0 });
  t.like(result.merged, { recordsIn: 6, records: 5, resultsIn: 6, results: 5, layers: 5 });
  t.like(result.destinations[0], { status: 'exported', format: 'image-manifest' });
  // The registry served the two configs and not one layer.
  const gets = await blobGets(registry, mark);
  const configs = [serializeCacheConfig(a), serializeCacheConfig(b)].map((bytes) =>
    digestBytes(bytes),
  );
  t.deepEqual(gets.map((get) => get.path.split('/').pop()).sort(), configs.sort());

  const merged = await openCacheSource(
    `type=registry,ref=${registry.host}/dst/app:cache`,
    isolated(t),
  );
  t.is(merged.remote.digest, result.digest);
  t.deepEqual(describe(merged.config), describe(mergeCacheConfigs([a, b]).config));
  t.is(merged.configDescriptor?.size, result.configSize);
});

test('a source on another registry is streamed, blobs known on the target registry mounted', async (t) => {
  const [one, two] = await Promise.all([startRegistry(t), startRegistry(t)]);
  const blobs = layerBlobs();
  const { a, b } = buildCaches(blobs);
  const c = client(t);
  await pushCache(c, one, 'src/a', 'cache', a, blobs);
  await pushCache(c, two, 'src/b', 'cache', b, blobs);
  const [markOne, markTwo] = await Promise.all([one.mark(), two.mark()]);

  const result = await mergeCaches(
    [`type=registry,ref=${one.host}/src/a:cache`, `type=registry,ref=${two.host}/src/b:cache`],
    `type=registry,ref=${two.host}/dst/app:cache`,
    isolated(t),
  );

  // L0, L3, L4 are in src/b on the target's registry; L1 and L2 come from the other one.
  t.like(result.blobs, { mounted: 3, uploaded: 3 });
  const layerGets = (await blobGets(one, markOne)).map((get) => get.path.split('/').pop());
  t.deepEqual(
    layerGets.filter((digest) => digest !== digestBytes(serializeCacheConfig(a))).sort(),
    [blobs[1]?.descriptor.digest, blobs[2]?.descriptor.digest].sort(),
  );
  t.is((await blobGets(two, markTwo)).length, 1); // b's config
});

test('maxConfigSize drops the oldest results of the merge and says so', async (t) => {
  const registry = await startRegistry(t);
  const blobs = layerBlobs();
  const { a, b } = buildCaches(blobs);
  const c = client(t);
  await pushCache(c, registry, 'src/a', 'cache', a, blobs);
  await pushCache(c, registry, 'src/b', 'cache', b, blobs);
  const from = [
    `type=registry,ref=${registry.host}/src/a:cache`,
    `type=registry,ref=${registry.host}/src/b:cache`,
  ];
  const to = `type=registry,ref=${registry.host}/dst/app:cache`;
  const full = await mergeCaches(from, to, isolated(t));
  t.is(full.dropped, undefined);

  const limited = await mergeCaches(from, to, {
    ...isolated(t),
    maxConfigSize: full.configSize - 1,
  });
  t.true(limited.configSize < full.configSize);
  // The oldest result (RUN A at minute 11) goes; RUN A's record stays, COPY A links through it.
  t.like(limited.dropped, { results: 1, records: 0 });
  const written = await openCacheSource(to, isolated(t));
  t.is(written.configDescriptor?.size, limited.configSize);
  t.false(describe(written.config).some((line) => line.includes(at(11))));
  t.true(describe(written.config).some((line) => line.includes(at(12))));
});

test('a digest that looks like links does not pass for another record', (t) => {
  const merged = mergeCacheConfigs([
    {
      layers: [],
      records: [
        { digest: 'x', results: [], chains: [], inputs: [] },
        { digest: 'y|0,', results: [], chains: [], inputs: [] },
        { digest: 'y', results: [], chains: [], inputs: [[{ link: 0 }]] },
      ],
    },
  ]);
  t.is(merged.config.records.length, 3);
});
