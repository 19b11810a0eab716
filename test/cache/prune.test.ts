import { readdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { type CacheConfig, validateCacheConfig } from '../../src/cache/config.ts';
import { serializeCacheConfig, sortCacheConfig } from '../../src/cache/config-write.ts';
import { withoutLayerAnnotations } from '../../src/cache/derived-source.ts';
import { CacheOptionsError } from '../../src/cache/errors.ts';
import { CacheImportCache, openCacheSource } from '../../src/cache/index.ts';
import { mergeCacheConfigs } from '../../src/cache/merge.ts';
import { pruneCacheConfig } from '../../src/cache/prune.ts';
import { pruneCache } from '../../src/cache/prune-cache.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import { startRegistry } from '../helpers/registry.ts';
import { buildCaches, layerBlobs, pushCache, writeLocalCache } from './_builds.ts';
import { arbitraryConfig, at, config, describe } from './_configs.ts';
import { blobGets, client, inlineImage, tempDir } from './_support.ts';

const MINUTE = 60_000;
/** Blob n is n KiB. */
const blobSize = (blob: string) => Number.parseInt(blob.slice(7), 16) * 1024;

// Two builds of one Dockerfile on one base (key 1, blob 1): build A at minutes 10-12, build B
// (a changed RUN) at minutes 20-22. Each: base -> RUN (key 2 / 12) -> COPY (key 3 / 13).
const buildA = config(
  [
    [1, -1],
    [2, 0],
    [3, 1],
  ],
  [
    { key: 1, results: [[0, 10]] },
    { key: 2, results: [[1, 11]], inputs: [[0]] },
    { key: 3, results: [[2, 12]], inputs: [[1]] },
  ],
);
const buildB = config(
  [
    [1, -1],
    [4, 0],
    [5, 1],
  ],
  [
    { key: 1, results: [[0, 20]] },
    { key: 12, results: [[1, 21]], inputs: [[0]] },
    { key: 13, results: [[2, 22]], inputs: [[1]] },
  ],
);
const both = mergeCacheConfigs([buildA, buildB]).config;

test('without limits only records no result needs are dropped', (t) => {
  const withStrays = config(
    [[1, -1]],
    [
      { key: 1, results: [[0, 1]] },
      { key: 2 }, // an input of the final step: needed
      { key: 3, results: [[0, 2]], inputs: [[1], [0]] },
      { key: 4 }, // only an input of a record without results: not needed
      { key: 5, inputs: [[3]] },
    ],
  );
  const pruned = pruneCacheConfig(withStrays);
  t.deepEqual(describe(pruned.config), [
    `001() [0001@${at(1)}]`,
    '002() []',
    `003(002();001()) [0001@${at(2)}]`,
  ]);
  t.like(pruned.dropped, { records: 2, results: 0, layers: 0 });
  t.is(pruned.configSize, undefined);
  t.is(pruned.builds, undefined);
});

test('keepLast 1 keeps the newest build and what it shares with older ones', (t) => {
  const pruned = pruneCacheConfig(both, { keepLast: 1, blobSize });
  t.deepEqual(describe(pruned.config), [
    `001() [0001@${at(20)}]`,
    `00c(001()) [0001>0004@${at(21)}]`,
    `00d(00c(001())) [0001>0004>0005@${at(22)}]`,
  ]);
  t.deepEqual(pruned.builds, { found: 2, kept: 1 });
  // Blobs 2 and 3 (build A's RUN and COPY) are referenced no more: 5 KiB.
  t.deepEqual(pruned.dropped, { records: 2, results: 2, layers: 2, bytes: 5 * 1024 });
  t.deepEqual(pruned.kept, { records: 3, results: 3, layers: 3, bytes: 10 * 1024 });
  t.is(pruneCacheConfig(both, { keepLast: 2 }).config.records.length, 5);
});

test('keepLast counts final records sharing an instant as one build', (t) => {
  // Two targets of one bake at minute 30 over build A.
  const bake = config(
    [
      [1, -1],
      [6, 0],
      [7, 0],
    ],
    [
      { key: 1, results: [[0, 28]] },
      { key: 20, results: [[1, 30]], inputs: [[0]] },
      { key: 21, results: [[2, 30]], inputs: [[0]] },
    ],
  );
  const pruned = pruneCacheConfig(mergeCacheConfigs([buildA, bake]).config, { keepLast: 1 });
  t.deepEqual(pruned.builds, { found: 2, kept: 1 });
  t.deepEqual(
    describe(pruned.config).map((line) => line.slice(0, 8)),
    ['001() [0', '014(001(', '015(001('],
  );
});

test('keepNewer drops older results but keeps the records newer ones link through', (t) => {
  const pruned = pruneCacheConfig(both, { keepNewer: 14 * MINUTE, now: Date.parse(at(27)) });
  // Results of minutes 20-22 are newer than minute 13: build B's (the base's result is B's).
  t.deepEqual(describe(pruned.config), [
    `001() [0001@${at(20)}]`,
    `00c(001()) [0001>0004@${at(21)}]`,
    `00d(00c(001())) [0001>0004>0005@${at(22)}]`,
  ]);
  const later = pruneCacheConfig(both, { keepNewer: 5 * MINUTE, now: Date.parse(at(27)) });
  // Only the COPY result (22) is new enough: its inputs stay as keys, without results.
  t.deepEqual(describe(later.config), [
    '001() []',
    '00c(001()) []',
    `00d(00c(001())) [0001>0004>0005@${at(22)}]`,
  ]);
  t.is(later.kept.results, 1);
});

test('maxSize keeps the newest results whose blobs fit, and older ones that add nothing', (t) => {
  // Newest first: COPY B (blobs 1+4+5 = 10 KiB), RUN B (no new blob), base (none), COPY A
  // (adds 2+3), RUN A (nothing more).
  const fits = pruneCacheConfig(both, { maxSize: 10 * 1024, blobSize });
  t.deepEqual(describe(fits.config), [
    `001() [0001@${at(20)}]`,
    `00c(001()) [0001>0004@${at(21)}]`,
    `00d(00c(001())) [0001>0004>0005@${at(22)}]`,
  ]);
  // 12 KiB would fit RUN A (blob 2) but not COPY A, which is newer: strictly by recency.
  t.deepEqual(pruneCacheConfig(both, { maxSize: 12 * 1024, blobSize }).kept, fits.kept);
  t.is(pruneCacheConfig(both, { maxSize: 15 * 1024, blobSize }).kept.results, 5);
  t.is(pruneCacheConfig(both, { maxSize: 9 * 1024, blobSize }).kept.results, 0);
});

test('maxConfigSize drops the oldest results, no more than needed', (t) => {
  const full = serializeCacheConfig(pruneCacheConfig(both).config).length;
  const fits = pruneCacheConfig(both, { maxConfigSize: full });
  t.is(fits.droppedForConfigSize, 0);
  t.is(fits.configSize, full);
  const smaller = pruneCacheConfig(both, { maxConfigSize: full - 1 });
  t.true((smaller.configSize as number) <= full - 1);
  t.is(smaller.configSize, serializeCacheConfig(smaller.config).length);
  // Dropping the oldest result (RUN A, minute 11) is enough.
  t.is(smaller.droppedForConfigSize, 1);
  t.false(describe(smaller.config).some((line) => line.includes(at(11))));
  // The largest prefix of newest results that fits, for every limit.
  let previous = 0;
  for (let limit = 2; limit <= full; limit++) {
    const pruned = pruneCacheConfig(both, { maxConfigSize: limit });
    t.true((pruned.configSize as number) <= limit);
    t.true(pruned.kept.results >= previous);
    previous = pruned.kept.results;
  }
  t.is(previous, 5);
});

test('pruned configs are valid, sized exactly and within every limit', (t) => {
  fc.assert(
    fc.property(
      arbitraryConfig(),
      fc.record({
        keepLast: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        keepNewer: fc.option(fc.integer({ min: 0, max: 60 * MINUTE }), { nil: undefined }),
        maxSize: fc.option(fc.integer({ min: 0, max: 8000 * 1024 }), { nil: undefined }),
        maxConfigSize: fc.option(fc.integer({ min: 2, max: 4000 }), { nil: undefined }),
      }),
      (input: CacheConfig, limits) => {
        const pruned = pruneCacheConfig(input, { ...limits, blobSize, now: Date.parse(at(40)) });
        validateCacheConfig(structuredClone(pruned.config));
        const bytes = serializeCacheConfig(pruned.config).length;
        const results = pruned.config.records.reduce(
          (n, r) => n + r.results.length + r.chains.length,
          0,
        );
        return (
          bytes === (pruned.configSize ?? bytes) &&
          bytes <= (limits.maxConfigSize ?? bytes) &&
          pruned.kept.bytes <= (limits.maxSize ?? pruned.kept.bytes) &&
          results === pruned.kept.results &&
          pruned.kept.results + pruned.dropped.results ===
            input.records.reduce((n, r) => n + r.results.length + r.chains.length, 0)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('limits must be whole numbers', (t) => {
  for (const options of [
    { keepLast: 0 },
    { maxSize: -1 },
    { keepNewer: 1.5 },
    { maxConfigSize: 1 },
  ]) {
    t.throws(() => pruneCacheConfig(both, options), { instanceOf: CacheOptionsError });
  }
});

// ---- Against the registry and local stores ----

const size = (blobs: ReturnType<typeof layerBlobs>, i: number) =>
  blobs[i]?.descriptor.size as number;
const chainOf = (blobs: ReturnType<typeof layerBlobs>, ...indexes: number[]) =>
  indexes.map((i) => blobs[i]?.descriptor.digest.slice(-4)).join('>');

/** Digests of the files in a store's blobs/sha256, sorted. */
async function blobFiles(dir: string): Promise<string[]> {
  const files = await readdir(path.join(dir, 'blobs', 'sha256'));
  return files.map((file) => `sha256:${file}`).sort();
}

function isolated(t: import('ava').ExecutionContext) {
  return { client: client(t), cache: new CacheImportCache(), blobLocations: new BlobLocations() };
}

/** Builds A and B merged, as one cache config. */
function bothBuilds(blobs: ReturnType<typeof layerBlobs>): CacheConfig {
  const { a, b } = buildCaches(blobs);
  return sortCacheConfig(mergeCacheConfigs([a, b]).config);
}

test('a registry cache pruned in place uploads its new config only and reads no layer', async (t) => {
  const registry = await startRegistry(t);
  const blobs = layerBlobs();
  const merged = bothBuilds(blobs);
  const c = client(t);
  await pushCache(c, registry, 'app', 'cache', merged, blobs);
  const ref = `type=registry,ref=${registry.host}/app:cache`;
  const mark = await registry.mark();

  const result = await pruneCache(ref, ref, { ...isolated(t), keepLast: 1 });

  t.deepEqual(result.builds, { found: 2, kept: 1 });
  t.deepEqual(result.dropped, {
    records: 2,
    results: 2,
    layers: 2,
    bytes: size(blobs, 1) + size(blobs, 2),
  });
  t.deepEqual(result.collected, []);
  // L0, L3, L4 are there already; the config is the one upload; only the old config was read.
  t.like(result.blobs, { uploaded: 1, mounted: 0, skipped: 3 });
  const gets = await blobGets(registry, mark);
  t.deepEqual(
    gets.map((get) => get.path.split('/').pop()),
    [digestBytes(serializeCacheConfig(merged))],
  );
  const pruned = await openCacheSource(ref, isolated(t));
  t.is(pruned.remote.digest, result.digest);
  t.deepEqual(describe(pruned.config), [
    `001() [${blobs[0]?.descriptor.digest.slice(-4)}@${at(20)}]`,
    `00c(001()) [${chainOf(blobs, 0, 3)}@${at(21)}]`,
    `00d(00c(001())) [${chainOf(blobs, 0, 3, 4)}@${at(22)}]`,
  ]);
  // The dropped blobs stay in the registry until its garbage collection.
  const kept = await c
    .repository(registry.host, 'app')
    .headBlob(blobs[1]?.descriptor.digest as string);
  t.is(kept?.size, size(blobs, 1));
});

test('a prune that keeps nothing is refused before anything is written', async (t) => {
  const registry = await startRegistry(t);
  const blobs = layerBlobs();
  const c = client(t);
  const digest = await pushCache(c, registry, 'app', 'cache', bothBuilds(blobs), blobs);
  const ref = `type=registry,ref=${registry.host}/app:cache`;
  const mark = await registry.mark();
  await t.throwsAsync(pruneCache(ref, ref, { ...isolated(t), maxSize: 100 }), {
    code: 'CACHE_EMPTY',
  });
  t.deepEqual(await registry.requests({ method: 'PUT', since: mark }), []);
  t.is((await openCacheSource(ref, isolated(t))).remote.digest, digest);
});

test('a local store pruned in place deletes the blobs nothing references any more', async (t) => {
  const dir = await tempDir(t);
  const blobs = layerBlobs();
  const merged = bothBuilds(blobs);
  const old = await writeLocalCache(dir, 'latest', merged, blobs);
  const before = await blobFiles(dir);

  // reset=true changes nothing: a pruned store is collected anyway, and the report says what went.
  const result = await pruneCache(`type=local,src=${dir}`, `type=local,dest=${dir},reset=true`, {
    ...isolated(t),
    keepLast: 1,
  });

  // Build A's layers, the old manifest and the old config are deleted, as reset=true would.
  const gone = [
    old.digest,
    digestBytes(serializeCacheConfig(merged)),
    blobs[1]?.descriptor.digest,
    blobs[2]?.descriptor.digest,
  ].sort();
  t.deepEqual(result.collected, [
    {
      target: `type=local,dest=${dir},tag=latest`,
      deleted: gone,
      bytesFreed: old.size + serializeCacheConfig(merged).length + size(blobs, 1) + size(blobs, 2),
    },
  ]);
  const pruned = await openCacheSource(`type=local,src=${dir}`, isolated(t));
  t.is(pruned.remote.digest, result.digest);
  t.deepEqual(
    await blobFiles(dir),
    [
      ...before.filter((digest) => !gone.includes(digest)),
      result.digest,
      pruned.configDescriptor?.digest,
    ].sort(),
  );
  t.is(describe(pruned.config).length, 3);
});

test('a local prune keeps the blobs another tag of the store references', async (t) => {
  const dir = await tempDir(t);
  const blobs = layerBlobs();
  const merged = bothBuilds(blobs);
  const old = await writeLocalCache(dir, 'latest', merged, blobs);
  await writeLocalCache(dir, 'build-a', buildCaches(blobs).a, blobs);

  const result = await pruneCache(`type=local,src=${dir}`, `type=local,dest=${dir}`, {
    ...isolated(t),
    keepLast: 1,
  });

  t.deepEqual(
    result.collected[0]?.deleted,
    [old.digest, digestBytes(serializeCacheConfig(merged))].sort(),
  );
  const files = await blobFiles(dir);
  t.true(files.includes(blobs[1]?.descriptor.digest as string));
  t.true(files.includes(blobs[2]?.descriptor.digest as string));
});

test('a registry cache pruned into a local store: what the limits keep, no layer of what they drop', async (t) => {
  const registry = await startRegistry(t);
  const blobs = layerBlobs();
  const c = client(t);
  await pushCache(c, registry, 'app', 'cache', bothBuilds(blobs), blobs);
  const dir = await tempDir(t);
  const mark = await registry.mark();
  const result = await pruneCache(
    `type=registry,ref=${registry.host}/app:cache`,
    `type=local,dest=${dir}`,
    {
      ...isolated(t),
      keepNewer: 10 * MINUTE,
      now: Date.parse(at(30)),
    },
  );
  t.like(result.kept, { results: 3, layers: 3 });
  const gets = (await blobGets(registry, mark)).map((get) => get.path.split('/').pop());
  for (const i of [1, 2]) t.false(gets.includes(blobs[i]?.descriptor.digest));
  for (const i of [0, 3, 4]) t.true(gets.includes(blobs[i]?.descriptor.digest));
  t.deepEqual(result.collected[0]?.deleted, []);
});

test('an inline cache is not pruned into the image that carries it', async (t) => {
  const dir = await inlineImage(t);
  const source = await openCacheSource(`type=local,src=${dir},tag=app`, isolated(t));
  const full = serializeCacheConfig(
    pruneCacheConfig(withoutLayerAnnotations(source.graph.config)).config,
  ).length;
  const maxConfigSize = full - 1;
  const error = await t.throwsAsync(
    pruneCache(`type=local,src=${dir},tag=app`, `type=local,dest=${dir},tag=app`, {
      ...isolated(t),
      maxConfigSize,
    }),
  );
  t.like(error, { code: 'CACHE_OPTIONS_INVALID' });
  t.regex(error?.message ?? '', /would replace the image/);
  // Elsewhere it is written, as a standalone cache.
  const result = await pruneCache(
    `type=local,src=${dir},tag=app`,
    `type=local,dest=${dir},tag=pruned`,
    { ...isolated(t), maxConfigSize },
  );
  t.like(result.destinations[0], { status: 'exported', format: 'image-manifest' });
  t.true(result.droppedForConfigSize > 0);
});
