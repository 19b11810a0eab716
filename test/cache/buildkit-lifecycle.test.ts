/**
 * Cache merge and prune, with a real BuildKit as the oracle: two builds exported with inline
 * cache are merged into one registry cache (index form: this BuildKit, v0.8, reads no other),
 * each build rebuilt from it after a wipe has every step CACHED; `prune --keep-last 1` keeps the
 * newer build fully CACHED and not the older one; a cache past BuildKit's 1 MiB config limit is
 * refused, and imported after `--max-config-size 1MiB`.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import test from 'ava';
import { cacheManifest } from '../../src/cache/export.ts';
import {
  CACHE_CONFIG_MEDIA_TYPE,
  type CacheConfig,
  type CacheRecord,
  serializeCacheConfig,
  sortCacheConfig,
} from '../../src/cache/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { type BuildResult, buildkitForTests } from '../helpers/buildkit.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import { contextRoot, ociferry, openInline, stepName, writeContext } from './_real-buildkit.ts';
import { BLOB_PATH, client } from './_support.ts';

const { buildkit } = await buildkitForTests(test);
const oracle = buildkit ? test.serial : test.skip;

const BUILD_A = {
  Dockerfile: 'FROM {{base}}\nRUN echo a1 > /a1\nRUN echo a2 > /a2\nCOPY a.txt /a.txt\n',
  'a.txt': 'build a\n',
};
const BUILD_B = {
  Dockerfile: 'FROM {{base}}\nRUN echo b1 > /b1\nRUN echo b2 > /b2\nCOPY b.txt /b.txt\n',
  'b.txt': 'build b\n',
};

let registry: TestRegistry;
let contexts: { dir: string; remove: () => Promise<void> };
let host: string;
const context: { a?: string; b?: string } = {};
if (buildkit) {
  test.before(async () => {
    registry = await startRegistry();
    host = registry.host;
    contexts = await contextRoot();
    const vars = { base: `${host}/base:1` };
    await buildkit.baseImage(vars.base);
    context.a = await writeContext(contexts.dir, BUILD_A, vars);
    context.b = await writeContext(contexts.dir, BUILD_B, vars);
    // A first, B later: B's results are the newer ones.
    await buildkit.build({ context: context.a, tag: `${host}/app:a` });
    await buildkit.push(`${host}/app:a`);
    await buildkit.build({ context: context.b, tag: `${host}/app:b` });
    await buildkit.push(`${host}/app:b`);
  });
  test.after.always(() => Promise.all([registry?.stop(), contexts?.remove()]));
}

/** Wipe the builder and build `which` with `--cache-from ref`. */
async function rebuild(which: 'a' | 'b', ref: string): Promise<BuildResult> {
  if (!buildkit) throw new Error('no BuildKit');
  await buildkit.wipe();
  return buildkit.build({ context: context[which] as string, cacheFrom: [ref] });
}

/** The steps after FROM, as `[k/n] INSTRUCTION: CACHED|runs`. */
function steps(build: BuildResult): string[] {
  return build.steps
    .filter((step) => step.index >= 2)
    .map((step) => `${stepName(step)}: ${step.cached ? 'CACHED' : 'runs'}`);
}

const allCached = (build: BuildResult) => steps(build).every((s) => s.endsWith('CACHED'));

oracle(
  'two builds merged into one cache are both fully CACHED; keep-last 1 keeps the newer',
  async (t) => {
    if (!buildkit) return t.fail();
    const merged = `${host}/cache:merged`;
    const mark = await registry.mark();
    const run = await ociferry([
      'cache',
      'merge',
      '--json',
      '--from',
      `${host}/app:a`,
      '--from',
      `${host}/app:b`,
      '--to',
      `type=registry,ref=${merged},image-manifest=false`,
    ]);
    const result = JSON.parse(run.stdout);
    t.is(result.blobs.uploaded, 1, 'the merged config is the only upload');
    t.is(result.blobs.bytesDownloaded, 0);
    // Image configs (holding the inline caches) are read, not one layer.
    const layers = new Set<string>();
    for (const ref of [`${host}/app:a`, `${host}/app:b`]) {
      for (const layer of (await openInline(ref, client(t))).layers) layers.add(layer.digest);
    }
    const reads = await registry.requests({ method: 'GET', path: BLOB_PATH, since: mark });
    t.deepEqual(
      reads.filter((entry) => layers.has(entry.path.split('/').at(-1) as string)),
      [],
    );

    for (const which of ['a', 'b'] as const) {
      const build = await rebuild(which, merged);
      t.true(allCached(build), `build ${which} from the merged cache:\n${steps(build).join('\n')}`);
    }

    const pruned = await ociferry([
      'cache',
      'prune',
      '--json',
      '--from',
      `type=registry,ref=${merged}`,
      '--to',
      `type=registry,ref=${merged}`,
      '--keep-last',
      '1',
    ]);
    t.like(JSON.parse(pruned.stdout).builds, { found: 2, kept: 1 });
    const newer = await rebuild('b', merged);
    t.true(allCached(newer), `build b after keep-last 1:\n${steps(newer).join('\n')}`);
    const older = await rebuild('a', merged);
    t.deepEqual(
      steps(older).filter((s) => s.endsWith('CACHED')),
      [],
      `build a after keep-last 1:\n${steps(older).join('\n')}`,
    );
  },
);

oracle(
  'a cache past 1 MiB is refused by BuildKit, and imported after --max-config-size 1MiB',
  async (t) => {
    if (!buildkit) return t.fail();
    const c = client(t);
    // Old results of many other builds, over the base image's layer: the config passes 1 MiB.
    const base = (await openInline(`${host}/app:a`, c)).layers[0];
    if (!base) return t.fail('no base layer');
    await c.repository(host, 'synthetic').mountBlob(base.digest, 'app');
    const config = syntheticConfig(base.digest, 7000);
    const bytes = serializeCacheConfig(config);
    const configDescriptor = {
      mediaType: CACHE_CONFIG_MEDIA_TYPE,
      digest: digestBytes(bytes),
      size: bytes.length,
    };
    await c
      .repository(host, 'synthetic')
      .uploadBlob(configDescriptor, () => Readable.from([bytes]));
    const manifest = cacheManifest('index', configDescriptor, [base]);
    await c
      .repository(host, 'synthetic')
      .putManifest('cache', manifest.bytes, manifest.descriptor.mediaType);

    const big = `${host}/cache:big`;
    const merged = JSON.parse(
      (
        await ociferry([
          'cache',
          'merge',
          '--json',
          '--from',
          `${host}/app:a`,
          '--from',
          `${host}/app:b`,
          '--from',
          `${host}/synthetic:cache`,
          '--to',
          `type=registry,ref=${big},image-manifest=false`,
        ])
      ).stdout,
    );
    t.true(merged.configSize > 1024 * 1024, `config of ${merged.configSize} bytes`);
    const refused = await rebuild('a', big);
    t.deepEqual(
      steps(refused).filter((s) => s.endsWith('CACHED')),
      [],
      `build a from a ${merged.configSize}-byte config:\n${steps(refused).join('\n')}`,
    );

    const fits = `${host}/cache:fits`;
    const pruned = JSON.parse(
      (
        await ociferry([
          'cache',
          'prune',
          '--json',
          '--from',
          `type=registry,ref=${big}`,
          '--to',
          `type=registry,ref=${fits}`,
          '--max-config-size',
          '1MiB',
        ])
      ).stdout,
    );
    t.true(pruned.configSize <= 1024 * 1024);
    t.true(pruned.droppedForConfigSize > 0);
    for (const which of ['a', 'b'] as const) {
      const build = await rebuild(which, fits);
      t.true(allCached(build), `build ${which} from the 1 MiB cache:\n${steps(build).join('\n')}`);
    }
  },
);

/**
 * `count` records of other builds (chains of 50 steps over one base record), each with a result
 * on `blob` made in 2020: older than anything a test build makes, so dropped first.
 */
function syntheticConfig(blob: string, count: number): CacheConfig {
  const sha = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
  const records: CacheRecord[] = [];
  for (let i = 0; i < count; i++) {
    records.push({
      digest: sha(`synthetic-${i}`),
      results: [{ layer: 0, createdAt: new Date(Date.UTC(2020, 0, 1) + i * 1000).toISOString() }],
      chains: [],
      inputs: i % 50 === 0 ? [] : [[{ link: i - 1 }]],
    });
  }
  return sortCacheConfig({ layers: [{ blob, parent: -1 }], records });
}
