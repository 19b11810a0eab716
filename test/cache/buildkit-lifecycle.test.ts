/**
 * Cache merge and prune with a real BuildKit as the oracle. Two builds sharing their first steps
 * (A, then B, each on a wiped builder, as on two CI runners) are exported with inline caches and
 * merged into one registry cache in index form (Docker 20.10's BuildKit reads no image-manifest
 * form); each rebuilt from it after a wipe has every step CACHED. `prune --keep-last 1` keeps B
 * whole and, of A, only the shared steps B's build needs. A cache whose config passes BuildKit's
 * 1 MiB import limit is refused whole, and after `prune --max-config-size 1MiB` (which drops the
 * oldest results; `copy --max-config-size` writes the same config) BuildKit caches exactly the
 * steps whose results were kept.
 */
import { createHash } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { goTimeMillis } from '../../src/cache/go-time.ts';
import {
  type CacheConfig,
  type CacheRecord,
  serializeCacheConfig,
  sortCacheConfig,
} from '../../src/cache/index.ts';
import type { RemoteImage } from '../../src/remote/remote-image.ts';
import { type BuildResult, buildkitForTests } from '../helpers/buildkit.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { contextRoot, ociferry, openInline, stepName, writeContext } from './_real-buildkit.ts';
import { BLOB_PATH, client, pushCustomCache } from './_support.ts';

// Before any test is declared: ava starts the file on the tick after the first declaration.
const { buildkit } = await buildkitForTests(test);
const oracle = buildkit ? test.serial : test.skip;

/** BuildKit's import limit for a cache config (`1 << 20`, hard-coded in its importer). */
const MIB = 1024 * 1024;
/** The steps both builds start with. */
const SHARED_STEPS = ['[2/5] COPY shared.txt /shared.txt', '[3/5] RUN cat /shared.txt > /s'];
type Build = 'a' | 'b';

function buildFiles(build: Build): Record<string, string> {
  return {
    Dockerfile: [
      'FROM {{base}}',
      'COPY shared.txt /shared.txt',
      'RUN cat /shared.txt > /s',
      `RUN echo ${build} > /flavor`,
      `COPY ${build}.txt /${build}.txt`,
      '',
    ].join('\n'),
    'shared.txt': 'shared\n',
    [`${build}.txt`]: `${build}\n`,
  };
}

/** Every step of a build after FROM, as BuildKit names them. */
function allSteps(build: Build): string[] {
  return [
    ...SHARED_STEPS,
    `[4/5] RUN echo ${build} > /flavor`,
    `[5/5] COPY ${build}.txt /${build}.txt`,
  ];
}

let registry: TestRegistry;
let contexts: { dir: string; remove: () => Promise<void> };
let host: string;
const context: Partial<Record<Build, string>> = {};
/** The inline-cache images of A (built first) and B. */
const image = (build: Build) => `${host}/app:${build}`;

if (buildkit) {
  test.before(async (t) => {
    registry = await startRegistry();
    host = registry.host;
    contexts = await contextRoot();
    const vars = { base: `${host}/base:1` };
    await buildkit.baseImage(vars.base);
    for (const build of ['a', 'b'] as const) {
      context[build] = await writeContext(contexts.dir, buildFiles(build), vars);
      await buildkit.wipe();
      const built = await buildkit.build({ context: context[build], tag: image(build) });
      t.deepEqual(cachedSteps(built), [], `build ${build} ran every step`);
      await buildkit.push(image(build));
    }
  });
  test.after.always(() => Promise.all([registry?.stop(), contexts?.remove()]));
}

/** The CACHED steps after FROM, in Dockerfile order (BuildKit prints them as they finish). */
function cachedSteps(build: BuildResult): string[] {
  return build.steps
    .filter((step) => step.index >= 2 && step.cached)
    .sort((a, b) => a.index - b.index)
    .map(stepName);
}

/** Wipe the builder, build `build` with `--cache-from ref` and give its CACHED steps. */
async function rebuild(t: ExecutionContext, build: Build, ref: string): Promise<string[]> {
  return cachedSteps(await rebuilt(t, build, ref));
}

/** Wipe the builder and build `build` with `--cache-from ref`. */
async function rebuilt(t: ExecutionContext, build: Build, ref: string): Promise<BuildResult> {
  if (!buildkit) throw new Error('no BuildKit');
  await buildkit.wipe();
  const built = await buildkit.build({ context: context[build] as string, cacheFrom: [ref] });
  const steps = built.steps.filter((step) => step.index >= 2).sort((a, b) => a.index - b.index);
  t.deepEqual(steps.map(stepName), allSteps(build));
  return built;
}

/** The error BuildKit printed under its `importing cache manifest from REF` vertex, if any. */
function importError(build: BuildResult): string | undefined {
  const vertex = build.vertices.find((v) => v.name.startsWith('importing cache manifest from '));
  if (vertex === undefined) throw new Error('BuildKit imported no cache');
  return vertex.error;
}

/** What `cache merge`, `cache prune` and `cache copy` print with `--json` (the parts read here). */
interface LifecycleJson {
  mediaType: string;
  blobs: { mounted: number; uploaded: number; bytesDownloaded: number };
  configSize: number;
  merged?: { recordsIn: number; records: number };
  builds?: { found: number; kept: number };
  dropped?: { records: number; results: number };
  droppedForConfigSize?: number;
  destinations?: { converted: { droppedForConfigSize?: number } | null }[];
}

/** `ociferry cache ARGS… --json`, parsed. */
async function cacheJson(args: readonly string[]): Promise<LifecycleJson> {
  return JSON.parse((await ociferry(['cache', ...args, '--json'])).stdout) as LifecycleJson;
}

/** `cache merge` of `from` (refs) into `to`, in index form. */
function merge(from: readonly string[], to: string): Promise<LifecycleJson> {
  const sources = from.flatMap((ref) => ['--from', `type=registry,ref=${ref}`]);
  return cacheJson(['merge', ...sources, '--to', `type=registry,ref=${to},image-manifest=false`]);
}

/** What the registry saw since `mark`: blob GETs, mounts, uploads (digests, in order). */
async function traffic(since: number) {
  const gets = await registry.requests({ method: 'GET', path: BLOB_PATH, since });
  const posts = await registry.requests({ method: 'POST', path: /\/blobs\/uploads\/$/, since });
  const puts = await registry.requests({ method: 'PUT', path: /\/blobs\/uploads\/.+/, since });
  const mounted = posts.filter((post) => post.query.includes('mount='));
  return {
    gets: gets.map((entry) => entry.path.split('/').at(-1) as string),
    mounts: mounted.map((post) =>
      decodeURIComponent(/(?:^|&)mount=([^&]+)/.exec(post.query)?.[1] as string),
    ),
    mountStatuses: [...new Set(mounted.map((post) => post.status))],
    uploads: puts.length,
  };
}

/** The layers of the inline-cache images, and the digests of their image configs. */
async function imageBlobs(t: ExecutionContext) {
  const layers = new Set<string>();
  const configs = new Set<string>();
  for (const build of ['a', 'b'] as const) {
    const source = await openInline(image(build), client(t));
    for (const layer of source.layers) layers.add(layer.digest);
    configs.add((source.remote as RemoteImage).manifest.config.digest);
  }
  return { layers, configs };
}

oracle(
  'two builds merged into one cache are both fully CACHED from it, no layer read',
  async (t) => {
    const merged = `${host}/cache/merged:1`;
    const { layers, configs } = await imageBlobs(t);
    const mark = await registry.mark();
    const result = await merge([image('a'), image('b')], merged);
    t.is(result.mediaType, 'application/vnd.oci.image.index.v1+json');
    // The shared steps' records (and the base and content records) are one record each.
    const counts = result.merged ?? { records: 0, recordsIn: 0 };
    t.true(counts.records < counts.recordsIn, JSON.stringify(counts));

    // On one registry: only the image configs (the inline caches) are read, every layer is mounted,
    // the merged config is the one upload.
    const seen = await traffic(mark);
    t.deepEqual(
      seen.gets.filter((digest) => !configs.has(digest)),
      [],
      'no blob GET but the image configs',
    );
    t.deepEqual([...new Set(seen.mounts)].sort(), [...layers].sort());
    t.deepEqual(seen.mountStatuses, [201]);
    t.is(seen.uploads, 1);
    t.like(result.blobs, { mounted: layers.size, uploaded: 1, bytesDownloaded: 0 });

    t.deepEqual(await rebuild(t, 'a', merged), allSteps('a'), 'A from the merged cache');
    t.deepEqual(await rebuild(t, 'b', merged), allSteps('b'), 'B from the merged cache');
  },
);

oracle(
  'prune --keep-last 1 in place keeps the newer build whole, of the older only what it shares',
  async (t) => {
    const ref = `${host}/cache/pruned:1`;
    await merge([image('a'), image('b')], ref);
    const { layers } = await imageBlobs(t);
    const mark = await registry.mark();
    const result = await cacheJson([
      'prune',
      '--from',
      `type=registry,ref=${ref}`,
      '--to',
      `type=registry,ref=${ref}`,
      '--keep-last',
      '1',
    ]);
    // B is the newer build; A's own steps (RUN echo a, COPY a.txt) lose their results.
    t.like(result, { builds: { found: 2, kept: 1 }, dropped: { results: 2 } });
    const seen = await traffic(mark);
    t.deepEqual(
      seen.gets.filter((digest) => layers.has(digest)),
      [],
      'no layer read',
    );
    // Nothing uploaded but the config: blobs already there are skipped, or mounted (201, nothing
    // read) when this process saw them in another repository.
    t.deepEqual(
      seen.mountStatuses.filter((status) => status !== 201),
      [],
    );
    t.is(seen.uploads, 1, 'the pruned config is the one upload');

    t.deepEqual(await rebuild(t, 'b', ref), allSteps('b'), 'B, the newer build, after keep-last 1');
    t.deepEqual(await rebuild(t, 'a', ref), SHARED_STEPS, 'A, the older build, after keep-last 1');
  },
);

oracle(
  'a config past 1 MiB is refused by BuildKit; after --max-config-size 1MiB the kept results are CACHED',
  async (t) => {
    if (!buildkit) return t.fail();
    const c = client(t);
    // Results of many other builds, made between A's and B's: the config passes 1 MiB, and fitting
    // it in 1 MiB drops A's results (the oldest) and some of these, never B's.
    const [a, b] = await Promise.all([openInline(image('a'), c), openInline(image('b'), c)]);
    const between = new Date((newestResult(a.config) + oldestResult(b.config)) / 2);
    t.true(newestResult(a.config) < oldestResult(b.config), 'A was built before B');
    const base = a.layers[0];
    if (base === undefined) return t.fail('no base layer');
    await c.repository(host, 'synthetic').mountBlob(base.digest, 'base');
    const synthetic = serializeCacheConfig(syntheticConfig(base.digest, 8000, between));
    await pushCustomCache(c, registry, 'synthetic', 'cache', synthetic, [base]);

    const big = `${host}/cache/big:1`;
    const merged = await merge([image('a'), image('b'), `${host}/synthetic:cache`], big);
    t.true(merged.configSize > MIB, `config of ${merged.configSize} bytes`);
    const config = (await openInline(big, c)).configDescriptor;
    t.is(config?.size, merged.configSize);
    const refused = await rebuilt(t, 'b', big);
    t.deepEqual(cachedSteps(refused), [], 'B from a config past 1 MiB');
    // The build goes on without the cache; the importer's vertex says why (dockerd logs nothing).
    t.is(
      importError(refused),
      `ERROR: blob ${config?.digest} is too large (${merged.configSize} > ${MIB})`,
    );

    const fits = `${host}/cache/fits:1`;
    const pruned = await cacheJson([
      'prune',
      '--from',
      `type=registry,ref=${big}`,
      '--to',
      `type=registry,ref=${fits}`,
      '--max-config-size',
      '1MiB',
    ]);
    t.true(pruned.configSize <= MIB, `config of ${pruned.configSize} bytes`);
    // Only just under: BuildKit takes a config of nearly 1 MiB.
    t.true(pruned.configSize > MIB - 4096, `config of ${pruned.configSize} bytes`);
    const dropped = pruned.droppedForConfigSize ?? 0;
    t.true(dropped > 2, `${dropped} results dropped`);
    // `cache copy --max-config-size` writes the same config.
    const copied = `${host}/cache/fits-copy:1`;
    const copy = await cacheJson([
      'copy',
      '--from',
      `type=registry,ref=${big}`,
      '--to',
      `type=registry,ref=${copied}`,
      '--max-config-size',
      '1MiB',
    ]);
    t.is(copy.destinations?.[0]?.converted?.droppedForConfigSize, dropped);
    t.is(
      (await openInline(copied, c)).configDescriptor?.digest,
      (await openInline(fits, c)).configDescriptor?.digest,
    );

    const imported = await rebuilt(t, 'b', fits);
    t.is(importError(imported), undefined);
    t.deepEqual(cachedSteps(imported), allSteps('b'), 'B, all kept');
    t.deepEqual(await rebuild(t, 'a', fits), SHARED_STEPS, 'A, whose own results were dropped');
  },
);

function resultTimes(config: CacheConfig): number[] {
  return config.records.flatMap((record) => record.results.map((r) => goTimeMillis(r.createdAt)));
}

function newestResult(config: CacheConfig): number {
  return Math.max(...resultTimes(config));
}

function oldestResult(config: CacheConfig): number {
  return Math.min(...resultTimes(config));
}

/**
 * `count` records of other builds (chains of 50 steps), each with a result on `blob` created at
 * `at` plus its index in nanoseconds.
 */
function syntheticConfig(blob: string, count: number, at: Date): CacheConfig {
  const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
  const millis = at.toISOString().slice(0, 23);
  const records: CacheRecord[] = [];
  for (let i = 0; i < count; i++) {
    records.push({
      digest: sha(`synthetic-${i}`),
      results: [{ layer: 0, createdAt: `${millis}${String(i).padStart(6, '0')}Z` }],
      chains: [],
      inputs: i % 50 === 0 ? [] : [[{ link: i - 1 }]],
    });
  }
  return sortCacheConfig({ layers: [{ blob, parent: -1 }], records });
}
