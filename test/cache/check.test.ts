import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import {
  CacheImportCache,
  checkCache,
  openCacheSource,
  parseCacheConfig,
  serializeCacheConfig,
} from '../../src/cache/index.ts';
import { fixturePath, pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import {
  blobGets,
  cacheKeys,
  client,
  fixtureCopy,
  fixtureLayers,
  pushCustomCache,
} from './_support.ts';

const CONFIG_DIGEST = 'sha256:38e254e7accb35b833b28f541f3b90a1ba0774feb35cfdf8dadd482fccdd1b4f';
const MAKE = 'sha256:81631e0d2b7bd5d7ca537436f7d41f5a2576cf5e341b9116d272c257e57070ef';
const GIT = 'sha256:58fa979b32fbf1de718e3aaa6eec0ec0c93c4d5cc4387bedfdc8469231e42697';
const TOP_LAYER = 'sha256:dfbd38e87d67de2535f57039444014bb0beea1e1484836e4ae11d70385d2f955';

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

test('a check reports the fixture hits and misses and downloads no layer', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'hits/app');
  const keys = await cacheKeys();
  const c = client(t);
  const mark = await registry.mark();
  const before = c.requestCount;
  const asked = [...keys.hits, ...keys.misses, ...keys.withoutResult];
  const result = await checkCache(`type=registry,ref=${registry.host}/hits/app`, asked, {
    client: c,
    cache: new CacheImportCache(),
  });

  t.deepEqual(
    result.hits.map((hit) => hit.key),
    keys.hits,
  );
  t.deepEqual(result.misses, [...keys.misses, ...keys.withoutResult]);
  t.is(result.layerBytesDownloaded, 0);
  t.deepEqual(result.warnings, []);
  t.is(result.requests, c.requestCount - before);
  const layers = new Map((await fixtureLayers()).map((l) => [l.digest, l]));
  for (const hit of result.hits) {
    t.is(hit.source, `type=registry,ref=${registry.host}/hits/app:latest`);
    t.deepEqual(
      hit.chain.map((blob) => blob.digest),
      keys.chains[hit.key],
    );
    for (const blob of hit.chain) {
      const listed = layers.get(blob.digest);
      t.deepEqual(blob, {
        digest: blob.digest,
        size: listed?.size,
        mediaType: listed?.mediaType,
        diffID: listed?.annotations?.['containerd.io/uncompressed'],
        exists: true,
      });
    }
  }
  t.is(result.hits.find((hit) => hit.key === MAKE)?.createdAt, '2025-01-02T03:05:00.000123456Z');

  // Server side: the only blob GET is the cache config; layers were only HEADed.
  t.deepEqual(
    (await blobGets(registry, mark)).map((r) => r.path),
    [`/v2/hits/app/blobs/${CONFIG_DIGEST}`],
  );
  const heads = await registry.requests({ method: 'HEAD', since: mark });
  t.is(heads.length, 5);
});

test('keys match case-insensitively and a non-digest key is refused', async (t) => {
  const source = await openCacheSource(`type=local,src=${fixturePath('cache-manifest')}`, {
    cache: new CacheImportCache(),
  });
  const result = await checkCache(source, [MAKE.toUpperCase().replace('SHA256', 'sha256')]);
  t.is(result.hits.length, 1);
  await t.throwsAsync(checkCache(source, ['not-a-key']), { code: 'DIGEST_INVALID' });
});

test('a repeated check costs one manifest request and no blob request', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'repeat/app');
  const keys = await cacheKeys();
  const c = client(t);
  const cache = new CacheImportCache();
  const from = `type=registry,ref=${registry.host}/repeat/app`;
  const first = await checkCache(from, keys.hits, { client: c, cache });
  const mark = await registry.mark();
  const second = await checkCache(from, keys.hits, { client: c, cache });

  t.deepEqual(second.hits, first.hits);
  t.is(second.requests, 1);
  const requests = await registry.requests({ since: mark });
  t.deepEqual(
    requests.map((r) => `${r.method} ${r.path}`),
    ['GET /v2/repeat/app/manifests/latest'],
  );
});

test('several sources: each key is looked up in all, the newest result wins', async (t) => {
  const registry = await shared();
  const c = client(t);
  await pushFixture(registry, 'cache-manifest', 'several/old');
  await pushFixture(registry, 'cache-manifest', 'several/new');
  // several/new:latest is the fixture config with the make step rebuilt later.
  const simple = await readFile(fixturePath('cacheconfig/simple.json'));
  const { config } = await parseCacheConfig(simple);
  const newer = serializeCacheConfig({
    ...config,
    records: config.records.map((record) =>
      record.digest === MAKE
        ? {
            ...record,
            results: record.results.map((r) => ({ ...r, createdAt: '2026-01-01T00:00:00Z' })),
          }
        : record,
    ),
  });
  await pushCustomCache(c, registry, 'several/new', 'latest', newer, await fixtureLayers());

  const old = `type=registry,ref=${registry.host}/several/old:latest`;
  const neu = `type=registry,ref=${registry.host}/several/new:latest`;
  const missing = `type=registry,ref=${registry.host}/several/gone:latest`;
  const result = await checkCache([old, missing, neu], [MAKE, GIT], {
    client: c,
    cache: new CacheImportCache(),
  });

  t.deepEqual(
    result.hits.map((hit) => [hit.key, hit.source, hit.createdAt]),
    [
      [MAKE, neu, '2026-01-01T00:00:00Z'],
      // Same result in both: the first source listed.
      [GIT, old, '2025-01-02T03:04:06.12345Z'],
    ],
  );
  t.deepEqual(result.misses, []);
  t.is(result.warnings.length, 1);
  t.regex(result.warnings[0] ?? '', /several\/gone:latest.*skipped/);
});

test('a blob gone from the source is reported as not existing', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'gone/app');
  const c = client(t);
  await c.repository(registry.host, 'gone/app').deleteBlob(TOP_LAYER);

  const result = await checkCache(`type=registry,ref=${registry.host}/gone/app`, [MAKE], {
    client: c,
    cache: new CacheImportCache(),
  });
  const chain = result.hits[0]?.chain ?? [];
  t.deepEqual(
    chain.map((blob) => [blob.digest, blob.exists]),
    (await cacheKeys()).chains[MAKE]?.map((digest) => [digest, digest !== TOP_LAYER]),
  );
});

test('a local source checks blobs on the filesystem', async (t) => {
  const dir = await fixtureCopy(t, 'cache-manifest');
  await rm(path.join(dir, 'blobs', 'sha256', TOP_LAYER.slice('sha256:'.length)));
  const result = await checkCache(`type=local,src=${dir}`, [MAKE, GIT], {
    cache: new CacheImportCache(),
  });
  t.deepEqual(
    result.hits.map((hit) => hit.chain.every((blob) => blob.exists)),
    [false, true],
  );
  t.false(result.hits[0]?.chain.at(-1)?.exists);
});

test('a result whose blob the manifest does not list is a miss, as BuildKit drops it', async (t) => {
  const registry = await shared();
  const c = client(t);
  await pushFixture(registry, 'cache-manifest', 'unlisted/partial');
  const simple = await readFile(fixturePath('cacheconfig/simple.json'));
  const layers = (await fixtureLayers()).filter((l) => l.digest !== TOP_LAYER);
  await pushCustomCache(c, registry, 'unlisted/partial', 'latest', simple, layers);

  const result = await checkCache(
    `type=registry,ref=${registry.host}/unlisted/partial`,
    [MAKE, GIT],
    {
      client: c,
      cache: new CacheImportCache(),
    },
  );
  t.deepEqual(
    result.hits.map((hit) => hit.key),
    [GIT],
  );
  t.deepEqual(result.misses, [MAKE]);
});
