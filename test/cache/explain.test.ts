import test from 'ava';
import { type CacheExplanation, CacheImportCache, explainCache } from '../../src/cache/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { writeConfigCaches, writeSampleImages } from './_buildkit.ts';

/** Each step as `createdBy (or digest prefix): code`, in build order. */
const outline = (result: CacheExplanation) =>
  result.steps.map((step) => {
    const name = step.createdBy?.replace(/ # buildkit$/, '') ?? step.digest.slice(0, 19);
    return `${name}: ${step.code}`;
  });

const explain = async (dir: string, build: string, from: string | string[]) =>
  explainCache(
    `type=local,src=${dir},tag=${build}`,
    (Array.isArray(from) ? from : [from]).map((tag) => `type=local,src=${dir},tag=${tag}`),
    { cache: new CacheImportCache() },
  );

// Every expectation below is what Docker Engine 20.10's BuildKit printed (CACHED or not) when it
// rebuilt the --build sample with --cache-from the --from sample, builder cache wiped.

test('a changed file: its COPY and every step after it run, the steps before are cached', async (t) => {
  const dir = await writeSampleImages(t, ['content-v1', 'content-v2']);
  const result = await explain(dir, 'content-v2', 'content-v1');
  t.deepEqual(outline(result), [
    'COPY a.txt /a.txt: skipped',
    'RUN /bin/sh -c echo one > /one: loaded',
    'COPY c.txt /c.txt: content-changed',
    'RUN /bin/sh -c cat /c.txt > /d: parent-runs',
  ]);
  t.like(result, { cached: 2, total: 4, finalCached: false, layerBytesDownloaded: 0 });
  t.deepEqual(
    result.steps.map((step) => step.cached),
    [true, true, false, false],
  );
  // The changed COPY keeps its record digest: a digest-only lookup would call it a hit.
  const copy = result.steps[2];
  t.regex(copy?.reason ?? '', /^input 1: it comes from sha256:eb8868ac/);
  t.is(copy?.digest, 'sha256:e3fb98d4ff237b7dfe12d309130c542888358bff9093e895e4ab1b1fb0797c63');
});

test('the same change further down a longer chain', async (t) => {
  const dir = await writeSampleImages(t, ['chain-v1', 'chain-v2']);
  const result = await explain(dir, 'chain-v2', 'chain-v1');
  t.deepEqual(outline(result), [
    'COPY a.txt /a.txt: skipped',
    'RUN /bin/sh -c echo one > /one: skipped',
    'COPY b.txt /b.txt: loaded',
    'COPY c.txt /c.txt: content-changed',
    'RUN /bin/sh -c cat /a.txt /b.txt /c.txt > /all: parent-runs',
  ]);
  t.regex(
    result.steps[4]?.reason ?? '',
    /^input 0: its parent sha256:e3fb98d4\S+ is not in the caches and runs$/,
  );
});

test('a build against its own cache is cached from the final step down', async (t) => {
  const dir = await writeSampleImages(t, ['chain-v1']);
  const result = await explain(dir, 'chain-v1', 'chain-v1');
  t.like(result, { cached: 5, total: 5, finalCached: true });
  t.deepEqual(
    result.steps.map((step) => step.code),
    ['skipped', 'skipped', 'skipped', 'skipped', 'loaded'],
  );
  t.like(result.steps[4], {
    source: `type=local,src=${dir},tag=chain-v1`,
    layer: result.steps[4]?.layer,
    createdBy: 'RUN /bin/sh -c cat /a.txt /b.txt /c.txt > /all # buildkit',
  });
});

test('steps without result are cached when a later step is loaded', async (t) => {
  // fromcache-v1c was built with --cache-from: only its last two steps have results.
  const dir = await writeSampleImages(t, ['fromcache-v1c']);
  const result = await explain(dir, 'fromcache-v1c', 'fromcache-v1c');
  t.deepEqual(outline(result), [
    'COPY a.txt /a.txt: skipped',
    'RUN /bin/sh -c echo one > /one: skipped',
    'COPY c.txt /c.txt: skipped',
    'RUN /bin/sh -c cat /c.txt > /d: loaded',
  ]);
});

test('...but run when a step after them changed and needs them', async (t) => {
  const dir = await writeSampleImages(t, ['fromcache-v1c', 'fromcache-v2']);
  const result = await explain(dir, 'fromcache-v2', 'fromcache-v1c');
  t.deepEqual(outline(result), [
    'COPY a.txt /a.txt: no-result',
    'RUN /bin/sh -c echo one > /one: no-result',
    'COPY c.txt /c.txt: content-changed',
    'RUN /bin/sh -c cat /c.txt > /d: parent-runs',
  ]);
  t.like(result, { cached: 0, finalCached: false });
});

test('multi-stage: COPY --from is served through its content key when the stage ran', async (t) => {
  // stage-v2 changed the builder's RUN; the file COPY --from takes is the same.
  const dir = await writeSampleImages(t, ['stage-v1', 'stage-v2']);
  const result = await explain(dir, 'stage-v2', 'stage-v1');
  t.deepEqual(outline(result), [
    'COPY y.txt /y.txt: skipped',
    'sha256:9121bc455631: no-result',
    'sha256:a38c85034798: no-record',
    'COPY /built /built: loaded',
    'RUN /bin/sh -c cat /built /y.txt > /final: loaded',
  ]);
  t.like(result, { cached: 3, total: 5, finalCached: true });
});

test('multi-stage: a change under every final-stage step caches nothing', async (t) => {
  const dir = await writeSampleImages(t, ['multistage-v1', 'multistage-v2']);
  const result = await explain(dir, 'multistage-v2', 'multistage-v1');
  t.is(result.cached, 0);
  t.is(result.total, 5);
  t.deepEqual(
    result.steps.map((step) => step.code),
    ['content-changed', 'no-result', 'no-result', 'parent-runs', 'parent-runs'],
  );
});

test('multi-stage: the builder stage is skipped when the final stage is loaded', async (t) => {
  const dir = await writeSampleImages(t, ['multistage-v1', 'multistage-v1-builder']);
  const result = await explain(dir, 'multistage-v1', 'multistage-v1');
  t.like(result, { cached: 5, total: 5, finalCached: true });
  // The builder's steps have the digests of a --target builder build.
  const builder = await explain(dir, 'multistage-v1-builder', 'multistage-v1-builder');
  const builderDigests = builder.steps.map((step) => step.digest);
  t.deepEqual(
    result.steps.filter((step) => builderDigests.includes(step.digest)).map((s) => s.code),
    ['skipped', 'skipped'],
  );
});

test('a result whose blob is missing is not loaded; the step before it is', async (t) => {
  const dir = await writeSampleImages(t, ['chain-v1'], { missing: { 'chain-v1': [5] } });
  const result = await explain(dir, 'chain-v1', 'chain-v1');
  t.deepEqual(
    result.steps.map((step) => step.code),
    ['skipped', 'skipped', 'skipped', 'loaded', 'blobs-missing'],
  );
  t.is(result.steps[4]?.missingBlobs?.length, 1);
  t.false(result.finalCached);
});

test('a --from that does not exist is skipped with a warning', async (t) => {
  const dir = await writeSampleImages(t, ['chain-v1']);
  const result = await explain(dir, 'chain-v1', ['nope', 'chain-v1']);
  t.is(result.cached, 5);
  t.is(result.from.length, 1);
  t.regex(result.warnings[0] ?? '', /no tag nope/);
});

test('a build thousands of steps deep is explained without deep recursion', async (t) => {
  const depth = 3000;
  // Every layer is the same blob on top of another: the chain is deep, the layout small.
  const bytes = Buffer.from('a layer\n');
  const blob = digestBytes(bytes);
  const layers = Array.from({ length: depth }, (_, i) => ({ blob, parent: i - 1 }));
  const hex = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
  // Record 0: base, record 1: content of the first step's files, then step i links from i-1
  // (and, for a COPY --from shape, from the content key of its parent's files).
  const chain = (content: number) => ({
    layers,
    records: [
      { digest: hex(1), results: [], chains: [], inputs: [] },
      { digest: hex(content), results: [], chains: [], inputs: [] },
      ...Array.from({ length: depth }, (_, i) => ({
        digest: hex(100 + i),
        results: [{ layer: i, createdAt: '2026-01-01T00:00:00Z' }],
        chains: [],
        inputs:
          i === 0
            ? [[{ link: 0 }], [{ link: 1 }]]
            : [[{ link: 1 + i, selector: hex(7) }, { link: 1 }]],
      })),
    ],
  });
  const dir = await writeConfigCaches(t, { v1: chain(2), v2: chain(3) }, new Map([[blob, bytes]]));
  const cache = new CacheImportCache();
  // Deep enough that its config passes BuildKit's 1 MiB import cap: counted in anyway here.
  const reader = { cache, readsImageManifest: true, readsOversizedConfigs: true };
  const same = await explainCache(
    `type=local,src=${dir},tag=v1`,
    `type=local,src=${dir},tag=v1`,
    reader,
  );
  t.like(same, { total: depth, cached: depth, finalCached: true });
  const changed = await explainCache(
    `type=local,src=${dir},tag=v2`,
    `type=local,src=${dir},tag=v1`,
    reader,
  );
  t.like(changed, { total: depth, cached: 0, finalCached: false });
  t.is(changed.steps[0]?.code, 'content-changed');
});

test('a cache in image-manifest form is left out unless the BuildKit reads that form', async (t) => {
  const bytes = Buffer.from('a layer\n');
  const blob = digestBytes(bytes);
  const hex = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
  const config = {
    layers: [{ blob, parent: -1 }],
    records: [
      { digest: hex(1), results: [], chains: [], inputs: [] },
      {
        digest: hex(2),
        results: [{ layer: 0, createdAt: '2026-01-01T00:00:00Z' }],
        chains: [],
        inputs: [[{ link: 0 }]],
      },
    ],
  };
  const dir = await writeConfigCaches(t, { c: config }, new Map([[blob, bytes]]));
  const ref = `type=local,src=${dir},tag=c`;
  const cache = new CacheImportCache();
  const old = await explainCache(ref, ref, { cache });
  t.like(old, { cached: 0, total: 1, from: [] });
  t.regex(old.warnings[0] ?? '', /image-manifest form, which BuildKit before v0\.12/);
  t.is(old.steps[0]?.code, 'no-record');
  const recent = await explainCache(ref, ref, { cache, readsImageManifest: true });
  t.like(recent, { cached: 1, total: 1, warnings: [] });
});
