import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import {
  CacheExportEmptyError,
  CacheImportCache,
  type CacheSource,
  copyCache,
  openCacheSource,
} from '../../src/cache/index.ts';
import { DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../../src/registry/index.ts';
import { SourceIndex } from '../../src/remote/sources.ts';
import { pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import { startRegistry, type TestRegistry } from '../helpers/registry.ts';
import {
  blobGets,
  cacheKeys,
  client,
  fixtureLayers,
  inlineImage,
  MANIFEST_PATH,
  tempDir,
} from './_support.ts';

const MANIFEST_FORM = 'sha256:adfddcd809f8b3cae26b67a6e9ca732948370f00452ff80780b5b13f54199289';
const INDEX_FORM = 'sha256:f156b16b27e8fdf0b06d67fed067d2d263b9014bf2f797d8352bf312922a8ce5';
const CONFIG_DIGEST = 'sha256:38e254e7accb35b833b28f541f3b90a1ba0774feb35cfdf8dadd482fccdd1b4f';
const BASE = 'sha256:357d8de9ff545851599802e63a13bfeabac6811882e9a84ded3eaffeb3cea762';
const CURL = 'sha256:56a8fa4ed6ef1b6ee6f37384babfc62a822d25788127b924dad4bb070317508d';
const COPY_STEP = 'sha256:0960b2c3e1bbe33c24e7b513be5f8ebab0f682557682a4c64c45153394fe0f42';
const MAKE = 'sha256:81631e0d2b7bd5d7ca537436f7d41f5a2576cf5e341b9116d272c257e57070ef';
const GIT = 'sha256:58fa979b32fbf1de718e3aaa6eec0ec0c93c4d5cc4387bedfdc8469231e42697';
const CONTEXT = 'sha256:85c10ebfa1ef5e842380eac301dd037cf9dc40cfcb053b3a5a3e0981767d7101';
const L0 = 'sha256:5a425d55d3c0858be69c6ad1ccfb5e6cdf4659e7ddb1d94d05917be826d59770';
const L1 = 'sha256:43594c95d1aa8083fb1630866d4e13225a63ea1ac1910343c683d184cb6c4de7';
const L2 = 'sha256:8de97dd1112a332e82ae41648dc271d0c83d35be68560d35fe9ee023d0374ddd';
const L3 = 'sha256:dfbd38e87d67de2535f57039444014bb0beea1e1484836e4ae11d70385d2f955';

/** Open a cache with its own caches, so nothing learnt by another test is reused. */
function open(t: import('ava').ExecutionContext, from: string): Promise<CacheSource> {
  return openCacheSource(from, {
    client: client(t),
    cache: new CacheImportCache(),
    sources: new SourceIndex(),
  });
}

const registryRef = (registry: TestRegistry, repo: string, tag = 'latest') =>
  `type=registry,ref=${registry.host}/${repo}:${tag}`;

for (const [fixture, options, digest] of [
  ['cache-manifest', '', MANIFEST_FORM],
  ['cache-index', ',image-manifest=false', INDEX_FORM],
] as const) {
  test(`a same-registry copy of ${fixture} mounts every blob and GETs none`, async (t) => {
    const registry = await startRegistry(t);
    await pushFixture(registry, fixture, 'src/cache');
    const c = client(t);
    const mark = await registry.mark();
    const result = await copyCache(
      registryRef(registry, 'src/cache'),
      `${registryRef(registry, 'dst/cache', 'main')},mode=max${options}`,
      { client: c, cache: new CacheImportCache(), sources: new SourceIndex() },
    );

    t.is(result.digest, digest);
    t.deepEqual(result.blobs, {
      mounted: 6,
      skipped: 0,
      uploaded: 0,
      bytesUploaded: 0,
      bytesDownloaded: 0,
    });
    t.like(result.destinations[0], { status: 'exported', rebuilt: false, mode: 'max' });
    // A copy as is needs the manifest only: not even the cache config is read.
    t.deepEqual(await blobGets(registry, mark), []);
    const copied = await open(t, registryRef(registry, 'dst/cache', 'main'));
    t.is(copied.remote.digest, digest);
  });
}

test('registry to local to registry keeps the digests of both forms', async (t) => {
  const registry = await startRegistry(t);
  const c = client(t);
  for (const [fixture, options, digest] of [
    ['cache-manifest', '', MANIFEST_FORM],
    ['cache-index', ',image-manifest=false', INDEX_FORM],
  ] as const) {
    await pushFixture(registry, fixture, `src/${fixture}`);
    const dir = path.join(await tempDir(t), 'store');
    const down = await copyCache(
      registryRef(registry, `src/${fixture}`),
      `type=local,dest=${dir},mode=max${options}`,
      { client: c, cache: new CacheImportCache(), sources: new SourceIndex() },
    );
    t.is(down.digest, digest);
    t.is(down.blobs.uploaded, 6);

    const up = await copyCache(
      `type=local,src=${dir}`,
      `${registryRef(registry, `back/${fixture}`)},mode=max${options}`,
      { client: c, cache: new CacheImportCache(), sources: new SourceIndex() },
    );
    t.is(up.digest, digest);
    t.is(up.blobs.uploaded + up.blobs.skipped + up.blobs.mounted, 6);
    t.is((await open(t, registryRef(registry, `back/${fixture}`))).remote.digest, digest);
  }
});

test('a copy to another registry streams the blobs and keeps the digest', async (t) => {
  const [a, b] = await Promise.all([startRegistry(t), startRegistry(t)]);
  await pushFixture(a, 'cache-manifest', 'team/cache');
  const result = await copyCache(
    registryRef(a, 'team/cache'),
    `${registryRef(b, 'mirror/cache')},mode=max`,
    { client: client(t), cache: new CacheImportCache(), sources: new SourceIndex() },
  );
  const sizes = [
    CONFIG_DIGEST,
    L0,
    L1,
    L2,
    L3,
    'sha256:8f4dbf738bc7efdf83f69c4c37837149078d4479b81d9cc2d3edca84bbc6b334',
  ];
  const total = (await Promise.all(sizes.map((d) => readFixtureBlob('cache-manifest', d)))).reduce(
    (sum, bytes) => sum + bytes.length,
    0,
  );
  t.is(result.digest, MANIFEST_FORM);
  t.like(result.blobs, { uploaded: 6, mounted: 0, bytesUploaded: total, bytesDownloaded: total });
  t.is((await open(t, registryRef(b, 'mirror/cache'))).remote.digest, MANIFEST_FORM);
});

test('several destinations share one read of the source; a later one mounts from an earlier one', async (t) => {
  const [a, b] = await Promise.all([startRegistry(t), startRegistry(t)]);
  await pushFixture(a, 'cache-manifest', 'team/cache');
  const dir = path.join(await tempDir(t), 'store');
  const mark = await a.mark();
  const result = await copyCache(
    registryRef(a, 'team/cache'),
    [
      `${registryRef(b, 'one/cache')},mode=max`,
      `${registryRef(b, 'two/cache')},mode=max`,
      `type=local,dest=${dir},mode=max`,
    ],
    { client: client(t), cache: new CacheImportCache(), sources: new SourceIndex() },
  );

  t.deepEqual(
    result.destinations.map((d) =>
      d.status === 'exported' ? [d.digest, d.blobs.uploaded, d.blobs.mounted] : d,
    ),
    [
      [MANIFEST_FORM, 6, 0],
      [MANIFEST_FORM, 0, 6],
      [MANIFEST_FORM, 6, 0],
    ],
  );
  t.is((await a.requests({ method: 'GET', path: MANIFEST_PATH, since: mark })).length, 1);
  t.is((await open(t, `type=local,src=${dir}`)).remote.digest, MANIFEST_FORM);
});

test('mode=min keeps the records the keys reach and their layer chains', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'cache-manifest', 'src/cache');
  const mark = await registry.mark();
  const result = await copyCache(
    registryRef(registry, 'src/cache'),
    registryRef(registry, 'min/cache'),
    { client: client(t), cache: new CacheImportCache(), sources: new SourceIndex(), keys: [CURL] },
  );
  t.like(result.destinations[0], { status: 'exported', mode: 'min', rebuilt: true });
  // Layers mounted; the new config (built in memory) is the one upload.
  t.is((await blobGets(registry, mark)).length, 1); // the source's config, to open it
  const copied = await open(t, registryRef(registry, 'min/cache'));
  t.like(result.blobs, {
    mounted: 2,
    uploaded: 1,
    bytesUploaded: copied.configDescriptor?.size,
  });
  t.deepEqual(
    copied.config.records.map((r) => r.digest),
    [BASE, CURL],
  );
  t.deepEqual(
    copied.config.layers.map((l) => [l.blob, l.parent]),
    [
      [L1, 1],
      [L0, -1],
    ],
  );
  t.deepEqual(
    copied.layers.map((l) => l.digest),
    [L1, L0],
  );
  t.deepEqual(
    copied.graph.newestResult(CURL)?.layers.map((l) => l.blob),
    [L0, L1],
  );
  t.false(copied.graph.has(MAKE));
});

test('mode=min without keys keeps what the record with the newest result reaches', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'cache-manifest', 'src/cache');
  await copyCache(registryRef(registry, 'src/cache'), registryRef(registry, 'min/cache'), {
    client: client(t),
    cache: new CacheImportCache(),
    sources: new SourceIndex(),
  });
  const copied = await open(t, registryRef(registry, 'min/cache'));
  t.deepEqual(
    copied.config.records.map((r) => r.digest).sort(),
    [COPY_STEP, BASE, CURL, MAKE, CONTEXT].sort(),
  );
  t.deepEqual(copied.layers.map((l) => l.digest).sort(), [L0, L1, L2, L3].sort());
  const keys = await cacheKeys();
  t.deepEqual(
    copied.graph.newestResult(MAKE)?.layers.map((l) => l.blob),
    keys.chains[MAKE],
  );
  t.false(copied.graph.has(GIT));
});

test('mode=min over every final step rewrites the cache byte for byte as BuildKit wrote it', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'cache-manifest', 'src/cache');
  const result = await copyCache(
    registryRef(registry, 'src/cache'),
    [
      registryRef(registry, 'min/cache'),
      `${registryRef(registry, 'min/index')},image-manifest=false`,
    ],
    {
      client: client(t),
      cache: new CacheImportCache(),
      sources: new SourceIndex(),
      keys: [MAKE, GIT],
    },
  );
  t.deepEqual(
    result.destinations.map((d) => d.status === 'exported' && [d.digest, d.rebuilt]),
    [
      [MANIFEST_FORM, true],
      [INDEX_FORM, true],
    ],
  );
});

test('export formats: index and Docker list wrappers around the same config', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'cache-manifest', 'src/cache');
  const c = client(t);
  const result = await copyCache(
    registryRef(registry, 'src/cache'),
    [
      `${registryRef(registry, 'as/index')},mode=max,image-manifest=false`,
      `${registryRef(registry, 'as/docker')},mode=max,oci-mediatypes=false`,
    ],
    { client: c, cache: new CacheImportCache(), sources: new SourceIndex() },
  );
  t.like(result.destinations[0], { digest: INDEX_FORM, mediaType: OCI_INDEX });
  t.like(result.destinations[1], { mediaType: DOCKER_MANIFEST_LIST, rebuilt: true });

  const docker = await open(t, registryRef(registry, 'as/docker'));
  t.is(docker.format, 'manifest-list');
  t.is(docker.configDescriptor?.digest, CONFIG_DIGEST);
  t.true(
    docker.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'),
  );

  // Back to the default wrapper: layer types are OCI again and the digest is the original one.
  const back = await copyCache(docker, `${registryRef(registry, 'as/oci')},mode=max`, {
    client: c,
  });
  t.is(back.digest, MANIFEST_FORM);
  t.is(back.mediaType, OCI_MANIFEST);
});

test('ignore-error turns a failed export into a warning and the next destination is written', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'cache-manifest', 'src/cache');
  const dir = await tempDir(t);
  const file = path.join(dir, 'not-a-dir');
  await writeFile(file, 'x');
  const options = { client: client(t), cache: new CacheImportCache() };

  const result = await copyCache(
    registryRef(registry, 'src/cache'),
    [
      `type=local,dest=${file},mode=max,ignore-error=true`,
      `${registryRef(registry, 'forced/cache')},mode=max,force-compression=true,ignore-error=true`,
      `${registryRef(registry, 'ok/cache')},mode=max`,
    ],
    options,
  );
  t.deepEqual(
    result.destinations.map((d) => d.status),
    ['failed', 'failed', 'exported'],
  );
  t.like(result.destinations[1], { code: 'INVALID_CACHE_OPTIONS' });
  t.is(result.warnings.length, 2);
  t.regex(result.warnings[0] ?? '', /not-a-dir.*ignore-error=true/);
  t.is(result.digest, MANIFEST_FORM);

  await t.throwsAsync(
    copyCache(
      registryRef(registry, 'src/cache'),
      `${registryRef(registry, 'forced/cache')},force-compression=true`,
      options,
    ),
    { code: 'INVALID_CACHE_OPTIONS' },
  );
});

test('mode=min that selects no result is CACHE_EMPTY, unknown keys are warned about', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'cache-manifest', 'src/cache');
  const options = { client: client(t), cache: new CacheImportCache() };
  await t.throwsAsync(
    copyCache(registryRef(registry, 'src/cache'), registryRef(registry, 'min/cache'), {
      ...options,
      keys: [CONTEXT],
    }),
    { instanceOf: CacheExportEmptyError, code: 'CACHE_EMPTY' },
  );
  const unknown = `sha256:${'1'.repeat(64)}`;
  const result = await copyCache(
    registryRef(registry, 'src/cache'),
    registryRef(registry, 'min/cache'),
    { ...options, keys: [unknown, GIT] },
  );
  t.deepEqual(result.warnings, [
    `key ${unknown} is not in type=registry,ref=${registry.host}/src/cache:latest; nothing kept for it`,
  ]);
  t.is((await open(t, registryRef(registry, 'min/cache'))).config.records.length, 2);
});

test('an inline cache copies as a regular cache config over the image layers', async (t) => {
  const registry = await startRegistry(t);
  const dir = await inlineImage(t);
  const result = await copyCache(
    `type=local,src=${dir},tag=app`,
    `${registryRef(registry, 'from/inline')},mode=max`,
    { client: client(t), cache: new CacheImportCache() },
  );
  t.like(result.destinations[0], { status: 'exported', rebuilt: true, format: 'image-manifest' });

  const copied = await open(t, registryRef(registry, 'from/inline'));
  t.is(copied.format, 'image-manifest');
  t.true(copied.config.layers.every((l) => l.annotations === undefined));
  t.deepEqual(
    copied.layers.map((l) => l.annotations?.['containerd.io/uncompressed']),
    (await fixtureLayers())
      .filter((l) => [L0, L1, L2, L3].includes(l.digest))
      .map((l) => l.annotations?.['containerd.io/uncompressed']),
  );
  const keys = await cacheKeys();
  t.deepEqual(
    copied.graph.newestResult(MAKE)?.layers.map((l) => l.blob),
    keys.chains[MAKE],
  );
});
