import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { serializeCacheConfig } from '../../src/cache/config-write.ts';
import {
  CacheExportEmptyError,
  CacheImportCache,
  type CacheSource,
  copyCache,
  openCacheSource,
} from '../../src/cache/index.ts';
import { mergeCacheConfigs } from '../../src/cache/merge.ts';
import type { CopyEvent } from '../../src/copy/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { DOCKER_MANIFEST_LIST, OCI_INDEX } from '../../src/oci/index.ts';
import { CredentialStore, RegistryClient } from '../../src/registry/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import {
  type SharedRegistry,
  sharedRegistry,
  startRegistry,
  type WatchedRegistry,
} from '../helpers/registry.ts';
import { buildCaches, layerBlobs, pushCache } from './_builds.ts';
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
/** The fixture cache as a Docker manifest list (`oci-mediatypes=false`), same config. */
const DOCKER_LIST_FORM = 'sha256:04a9f1f721f3c9bddcb4024758c321c0488065ceaeba083c830a7f577ad21ea4';
/** The inline fixture cache made standalone with every record (`image-manifest=true`). */
const INLINE_STANDALONE = 'sha256:5c27c4e28aed4015241ed7e82d488743f204e42a7a3c1de21a3dda05d2847389';
/** The inline fixture cache made standalone with the newest result's records (`mode=min`). */
const INLINE_MIN = 'sha256:7f12c4384697ce0ece38371d63626aa65b2a98589ed510983bf86bee4a0e3422';
const ALICE = 'alice-secret-pw';
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
/** Every blob the fixture cache manifest lists: config and layers. */
const CACHE_BLOBS = [
  CONFIG_DIGEST,
  L0,
  L1,
  L2,
  L3,
  'sha256:8f4dbf738bc7efdf83f69c4c37837149078d4479b81d9cc2d3edca84bbc6b334',
];
const UPLOAD_PUT = /\/blobs\/uploads\/.+/;
/** The registry of every test but the Harbor one; each test has repositories of its own. */
const shared = sharedRegistry(test);

/** Size of a fixture cache blob. */
async function blobSize(digest: string): Promise<number> {
  return (await readFixtureBlob('cache-manifest', digest)).length;
}

/** Total size of the fixture cache's blobs. */
async function cacheBytes(): Promise<number> {
  const sizes = await Promise.all(CACHE_BLOBS.map(blobSize));
  return sizes.reduce((sum, size) => sum + size, 0);
}

/** Digests of the blobs uploaded with a closing PUT since `since`. */
async function uploadedDigests(registry: WatchedRegistry, since: number): Promise<string[]> {
  const puts = await registry.requests({ method: 'PUT', path: UPLOAD_PUT, status: 201, since });
  return puts.map((put) => new URLSearchParams(put.query).get('digest') ?? '');
}

/** Open a cache with its own caches, so nothing learnt by another test is reused. */
function open(t: import('ava').ExecutionContext, from: string): Promise<CacheSource> {
  return openCacheSource(from, {
    client: client(t),
    cache: new CacheImportCache(),
    blobLocations: new BlobLocations(),
  });
}

const registryRef = (registry: SharedRegistry, repo: string, tag = 'latest') =>
  `type=registry,ref=${registry.host}/${repo}:${tag}`;

/** Bytes of the blob GETs a registry answered since `since`: what crossed the network. */
async function blobBytesServed(registry: WatchedRegistry, since: number): Promise<number> {
  return (await blobGets(registry, since)).reduce((sum, entry) => sum + entry.bytes, 0);
}

for (const [fixture, format, digest] of [
  ['cache-manifest', 'image-manifest', MANIFEST_FORM],
  ['cache-index', 'index', INDEX_FORM],
] as const) {
  test(`a same-registry copy of ${fixture} as is mounts every blob and GETs none`, async (t) => {
    const registry = await shared(t);
    await pushFixture(registry, fixture, `${fixture}/src`);
    const c = client(t);
    const mark = await registry.mark();
    const result = await copyCache(
      registryRef(registry, `${fixture}/src`),
      [
        registryRef(registry, `${fixture}/dst`, 'main'),
        // Neither mode=max (every record) nor compression (new blobs only) changes anything.
        `${registryRef(registry, `${fixture}/max`)},mode=max,compression=zstd`,
      ],
      { client: c, cache: new CacheImportCache(), blobLocations: new BlobLocations() },
    );

    t.is(result.digest, digest);
    t.is(result.sourceFormat, format);
    t.deepEqual(result.blobs, {
      mounted: 12,
      skipped: 0,
      uploaded: 0,
      bytesUploaded: 0,
      bytesDownloaded: 0,
    });
    for (const destination of result.destinations) {
      t.like(destination, { status: 'exported', digest, rebuilt: false, mode: 'max', format });
      t.false('converted' in destination);
    }
    // A copy as is needs the manifest only: not even the cache config is read.
    t.deepEqual(await blobGets(registry, mark), []);
    for (const repo of [`${fixture}/dst:main`, `${fixture}/max:latest`]) {
      const [name = '', tag] = repo.split(':');
      t.is((await open(t, registryRef(registry, name, tag))).remote.digest, digest);
    }
  });
}

test('registry to local to registry as is keeps the digests of both forms', async (t) => {
  const registry = await shared(t);
  const c = client(t);
  for (const [fixture, digest] of [
    ['cache-manifest', MANIFEST_FORM],
    ['cache-index', INDEX_FORM],
  ] as const) {
    await pushFixture(registry, fixture, `round-trip/src-${fixture}`);
    const dir = path.join(await tempDir(t), 'store');
    const mark = await registry.mark();
    const down = await copyCache(
      registryRef(registry, `round-trip/src-${fixture}`),
      `type=local,dest=${dir}`,
      { client: c, cache: new CacheImportCache(), blobLocations: new BlobLocations() },
    );
    t.is(down.digest, digest);
    t.like(down.blobs, { uploaded: 6, bytesDownloaded: await cacheBytes() });
    t.is(down.blobs.bytesDownloaded, await blobBytesServed(registry, mark));

    const up = await copyCache(
      `type=local,src=${dir}`,
      registryRef(registry, `round-trip/back-${fixture}`),
      {
        client: c,
        cache: new CacheImportCache(),
        blobLocations: new BlobLocations(),
      },
    );
    t.is(up.digest, digest);
    t.is(up.blobs.uploaded, 6);
    t.is(up.blobs.bytesDownloaded, 0, 'read from disk: nothing crossed the network inbound');
    t.is(
      (await open(t, registryRef(registry, `round-trip/back-${fixture}`))).remote.digest,
      digest,
    );
  }
});

test('a copy to another registry streams the blobs and keeps the digest', async (t) => {
  const [a, b] = await Promise.all([shared(t), shared(t)]);
  await pushFixture(a, 'cache-manifest', 'another/src');
  const mark = await a.mark();
  const result = await copyCache(registryRef(a, 'another/src'), registryRef(b, 'another/mirror'), {
    client: client(t),
    cache: new CacheImportCache(),
    blobLocations: new BlobLocations(),
  });
  const total = await cacheBytes();
  t.is(result.digest, MANIFEST_FORM);
  t.like(result.blobs, { uploaded: 6, mounted: 0, bytesUploaded: total, bytesDownloaded: total });
  t.is(result.blobs.bytesDownloaded, await blobBytesServed(a, mark));
  t.is((await open(t, registryRef(b, 'another/mirror'))).remote.digest, MANIFEST_FORM);
});

test('several destinations share one read of the source; a later one mounts from an earlier one', async (t) => {
  const [a, b] = await Promise.all([shared(t), shared(t)]);
  await pushFixture(a, 'cache-manifest', 'share/src');
  const dir = path.join(await tempDir(t), 'store');
  const [markA, markB] = await Promise.all([a.mark(), b.mark()]);
  const result = await copyCache(
    registryRef(a, 'share/src'),
    [
      registryRef(b, 'share/one'),
      `${registryRef(b, 'share/two')},mode=max`,
      `type=local,dest=${dir}`,
    ],
    { client: client(t), cache: new CacheImportCache(), blobLocations: new BlobLocations() },
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
  t.is((await a.requests({ method: 'GET', path: MANIFEST_PATH, since: markA })).length, 1);
  // One read of each blob fed share/one on b and the local store; share/two mounted from share/one.
  t.is((await blobGets(a, markA)).length, 6);
  const mounts = await b.requests({
    method: 'POST',
    path: /\/share\/two\/blobs\/uploads\/$/,
    since: markB,
  });
  t.deepEqual(
    mounts.map((m) => [m.status, new URLSearchParams(m.query).get('from')]),
    CACHE_BLOBS.map(() => [201, 'share/one']),
  );
  t.deepEqual((await uploadedDigests(b, markB)).sort(), [...CACHE_BLOBS].sort());
  t.is((await open(t, `type=local,src=${dir}`)).remote.digest, MANIFEST_FORM);
});

test('two registries and a local store are written from one read of each blob', async (t) => {
  const [a, b, c] = await Promise.all([shared(t), shared(t), shared(t)]);
  await pushFixture(a, 'cache-manifest', 'two-registries/src');
  const dir = path.join(await tempDir(t), 'store');
  const events: CopyEvent[] = [];
  const mark = await a.mark();
  const result = await copyCache(
    registryRef(a, 'two-registries/src'),
    [
      `${registryRef(b, 'two-registries/one')},mode=max`,
      `${registryRef(c, 'two-registries/two')},mode=max`,
      `type=local,dest=${dir},mode=max`,
    ],
    {
      client: client(t),
      cache: new CacheImportCache(),
      blobLocations: new BlobLocations(),
      onEvent: (e) => events.push(e),
    },
  );

  const gets = await blobGets(a, mark);
  t.deepEqual(gets.map((g) => g.path.split('/').pop()).sort(), [...CACHE_BLOBS].sort());
  const total = await cacheBytes();
  t.deepEqual(
    result.destinations.map((d) =>
      d.status === 'exported' ? [d.digest, d.blobs.uploaded, d.blobs.bytesUploaded] : d,
    ),
    [
      [MANIFEST_FORM, 6, total],
      [MANIFEST_FORM, 6, total],
      [MANIFEST_FORM, 6, total],
    ],
  );
  // Each read counts once, at the first destination it fed.
  t.deepEqual(
    result.destinations.map((d) => d.status === 'exported' && d.blobs.bytesDownloaded),
    [total, 0, 0],
  );
  t.like(result.blobs, { uploaded: 18, bytesUploaded: 3 * total, bytesDownloaded: total });
  const done = events.filter((e) => e.type === 'blob-done');
  t.deepEqual(
    [...new Set(done.map((e) => e.target))].sort(),
    [`${b.host}/two-registries/one`, `${c.host}/two-registries/two`, `oci:${dir}`].sort(),
  );
  t.is(done.length, 18);
  for (const ref of [registryRef(b, 'two-registries/one'), registryRef(c, 'two-registries/two')]) {
    t.is((await open(t, ref)).remote.digest, MANIFEST_FORM);
  }
  t.is((await open(t, `type=local,src=${dir}`)).remote.digest, MANIFEST_FORM);
});

test('a destination whose upload is refused once retries with a read of its own; the others are unaffected', async (t) => {
  const [a, b, c] = await Promise.all([shared(t), shared(t), shared(t)]);
  await pushFixture(a, 'cache-manifest', 'retry/src');
  const refused = { method: 'PUT', path: UPLOAD_PUT, times: 1, action: { status: 503 } };
  const proxy = await startFaultProxy(t, b.url, [refused]);
  const dir = path.join(await tempDir(t), 'store');
  const [markA, markC] = await Promise.all([a.mark(), c.mark()]);
  const result = await copyCache(
    registryRef(a, 'retry/src'),
    [
      `type=registry,ref=${proxy.host}/retry/one:latest,mode=max`,
      `${registryRef(c, 'retry/two')},mode=max`,
      `type=local,dest=${dir},mode=max`,
    ],
    { client: client(t), cache: new CacheImportCache(), blobLocations: new BlobLocations() },
  );

  t.is(proxy.hits(refused), 1);
  t.deepEqual(
    result.destinations.map((d) => d.status === 'exported' && [d.digest, d.blobs.uploaded]),
    [
      [MANIFEST_FORM, 6],
      [MANIFEST_FORM, 6],
      [MANIFEST_FORM, 6],
    ],
  );
  // Six shared reads, plus one for the retried upload.
  const gets = (await blobGets(a, markA)).map((g) => g.path.split('/').pop() ?? '');
  t.is(gets.length, 7);
  t.deepEqual([...new Set(gets)].sort(), [...CACHE_BLOBS].sort());
  const retried = gets.find((digest, i) => gets.indexOf(digest) !== i) ?? '';
  const total = await cacheBytes();
  t.deepEqual(
    result.destinations.map((d) => d.status === 'exported' && d.blobs.bytesDownloaded),
    [total + (await blobSize(retried)), 0, 0],
  );
  t.deepEqual((await uploadedDigests(c, markC)).sort(), [...CACHE_BLOBS].sort());
  for (const ref of [registryRef(b, 'retry/one'), registryRef(c, 'retry/two')]) {
    t.is((await open(t, ref)).remote.digest, MANIFEST_FORM);
  }
  t.is((await open(t, `type=local,src=${dir}`)).remote.digest, MANIFEST_FORM);
});

test('a corrupted byte in the shared read fails every destination and stores it nowhere', async (t) => {
  const [a, b, c] = await Promise.all([shared(t), shared(t), shared(t)]);
  await pushFixture(a, 'cache-manifest', 'corrupt/src');
  const corrupt = { method: 'GET', path: new RegExp(`/blobs/${L0}$`), action: { flipByteAt: 5 } };
  const proxy = await startFaultProxy(t, a.url, [corrupt]);
  const dir = path.join(await tempDir(t), 'store');
  const c0 = client(t);
  await t.throwsAsync(
    copyCache(
      `type=registry,ref=${proxy.host}/corrupt/src:latest`,
      [
        `${registryRef(b, 'corrupt/one')},mode=max`,
        `${registryRef(c, 'corrupt/two')},mode=max`,
        `type=local,dest=${dir},mode=max`,
      ],
      { client: c0, cache: new CacheImportCache(), blobLocations: new BlobLocations() },
    ),
    { code: 'DIGEST_MISMATCH' },
  );
  t.is(proxy.hits(corrupt), 1, 'the bad bytes were read once, for every destination');
  for (const [registry, repo] of [
    [b, 'corrupt/one'],
    [c, 'corrupt/two'],
  ] as const) {
    const repository = c0.repository(registry.host, repo);
    t.is(await repository.headManifest('latest'), undefined);
    t.is(await repository.headBlob(L0), undefined);
  }
  const store = await LayoutStore.open(dir);
  t.false(await store.has(L0));
  t.deepEqual(await store.tags(), []);
});

test('keys select the records they reach and their layer chains (mode=min)', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'keys/src');
  const mark = await registry.mark();
  const cache = new CacheImportCache();
  const result = await copyCache(
    registryRef(registry, 'keys/src'),
    registryRef(registry, 'keys/min'),
    { client: client(t), cache, blobLocations: new BlobLocations(), keys: [CURL] },
  );
  t.like(result.destinations[0], {
    status: 'exported',
    mode: 'min',
    format: 'image-manifest',
    rebuilt: true,
    converted: { mode: 'min' },
  });
  // Layers mounted; the new config (built in memory) is the one upload.
  const gets = await blobGets(registry, mark);
  t.deepEqual(
    gets.map((g) => g.path.split('/').pop()),
    [CONFIG_DIGEST],
    "the source's config, to select from it",
  );
  t.is(result.blobs.bytesDownloaded, await blobBytesServed(registry, mark));
  const copied = await open(t, registryRef(registry, 'keys/min'));
  t.like(result.blobs, {
    mounted: 2,
    uploaded: 1,
    bytesUploaded: copied.configDescriptor?.size,
    // The config fetched, not the config written: only what crossed the network.
    bytesDownloaded: await blobSize(CONFIG_DIGEST),
  });
  t.not(copied.configDescriptor?.size, await blobSize(CONFIG_DIGEST));
  t.like(result.destinations[0], { blobs: { bytesDownloaded: await blobSize(CONFIG_DIGEST) } });

  // The config parsed already: selecting again downloads nothing.
  const again = await copyCache(
    registryRef(registry, 'keys/src'),
    registryRef(registry, 'keys/again'),
    { client: client(t), cache, blobLocations: new BlobLocations(), keys: [CURL] },
  );
  t.like(again.blobs, { uploaded: 1, bytesDownloaded: 0 });
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
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'min-no-keys/src');
  await copyCache(
    registryRef(registry, 'min-no-keys/src'),
    `${registryRef(registry, 'min-no-keys/min')},mode=min`,
    {
      client: client(t),
      cache: new CacheImportCache(),
      blobLocations: new BlobLocations(),
    },
  );
  const copied = await open(t, registryRef(registry, 'min-no-keys/min'));
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
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'min-all/src');
  const result = await copyCache(
    registryRef(registry, 'min-all/src'),
    [
      registryRef(registry, 'min-all/manifest'),
      `${registryRef(registry, 'min-all/index')},image-manifest=false`,
    ],
    {
      client: client(t),
      cache: new CacheImportCache(),
      blobLocations: new BlobLocations(),
      keys: [MAKE, GIT],
    },
  );
  t.deepEqual(
    result.destinations.map((d) => d.status === 'exported' && [d.digest, d.converted]),
    [
      [MANIFEST_FORM, { mode: 'min' }],
      [INDEX_FORM, { mode: 'min', form: 'index' }],
    ],
  );
});

test("form keys convert only what they name; the rest of the form is the source's", async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'forms/src');
  const c = client(t);
  const options = { client: c, cache: new CacheImportCache(), blobLocations: new BlobLocations() };
  const mark = await registry.mark();
  const result = await copyCache(
    registryRef(registry, 'forms/src'),
    [
      `${registryRef(registry, 'forms/as-index')},image-manifest=false`,
      `${registryRef(registry, 'forms/as-docker')},mode=max,oci-mediatypes=false`,
    ],
    options,
  );
  t.like(result.destinations[0], {
    digest: INDEX_FORM,
    mediaType: OCI_INDEX,
    format: 'index',
    mode: 'max',
    converted: { form: 'index' },
  });
  t.like(result.destinations[1], {
    digest: DOCKER_LIST_FORM,
    mediaType: DOCKER_MANIFEST_LIST,
    format: 'manifest-list',
    converted: { form: 'manifest-list' },
  });
  // A new wrapper around the same config: the manifest is all that is read, the config kept.
  t.deepEqual(await blobGets(registry, mark), []);

  const docker = await open(t, registryRef(registry, 'forms/as-docker'));
  t.is(docker.format, 'manifest-list');
  t.is(docker.configDescriptor?.digest, CONFIG_DIGEST);
  t.true(
    docker.layers.every((l) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'),
  );

  // From the Docker list: as is, OCI media types only (an index), or the image-manifest form.
  const back = await copyCache(
    registryRef(registry, 'forms/as-docker'),
    [
      registryRef(registry, 'forms/back-docker'),
      `${registryRef(registry, 'forms/back-index')},oci-mediatypes=true`,
      `${registryRef(registry, 'forms/back-oci')},image-manifest=true`,
    ],
    options,
  );
  t.is(back.sourceFormat, 'manifest-list');
  t.deepEqual(
    back.destinations.map((d) => d.status === 'exported' && [d.digest, d.format, d.converted]),
    [
      [DOCKER_LIST_FORM, 'manifest-list', undefined],
      [INDEX_FORM, 'index', { form: 'index' }],
      [MANIFEST_FORM, 'image-manifest', { form: 'image-manifest' }],
    ],
  );
});

test('ignore-error turns a failed export into a warning and the next destination is written', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'ignore/src');
  const dir = await tempDir(t);
  const file = path.join(dir, 'not-a-dir');
  await writeFile(file, 'x');
  const options = { client: client(t), cache: new CacheImportCache() };

  const result = await copyCache(
    registryRef(registry, 'ignore/src'),
    [
      `type=local,dest=${file},mode=max,ignore-error=true`,
      `${registryRef(registry, 'ignore/forced')},mode=max,force-compression=true,ignore-error=true`,
      `${registryRef(registry, 'ignore/ok')},mode=max`,
    ],
    options,
  );
  t.deepEqual(
    result.destinations.map((d) => d.status),
    ['failed', 'failed', 'exported'],
  );
  t.like(result.destinations[1], { code: 'CACHE_OPTIONS_INVALID' });
  t.is(result.warnings.length, 2);
  t.regex(result.warnings[0] ?? '', /not-a-dir.*ignore-error=true/);
  t.is(result.digest, MANIFEST_FORM);

  await t.throwsAsync(
    copyCache(
      registryRef(registry, 'ignore/src'),
      `${registryRef(registry, 'ignore/forced')},force-compression=true`,
      options,
    ),
    { code: 'CACHE_OPTIONS_INVALID' },
  );
});

test('mode=min that selects no result is CACHE_EMPTY, unknown keys are warned about', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'empty/src');
  const options = { client: client(t), cache: new CacheImportCache() };
  await t.throwsAsync(
    copyCache(registryRef(registry, 'empty/src'), registryRef(registry, 'empty/min'), {
      ...options,
      keys: [CONTEXT],
    }),
    { instanceOf: CacheExportEmptyError, code: 'CACHE_EMPTY' },
  );
  const unknown = `sha256:${'1'.repeat(64)}`;
  const result = await copyCache(
    registryRef(registry, 'empty/src'),
    registryRef(registry, 'empty/min'),
    { ...options, keys: [unknown, GIT] },
  );
  t.deepEqual(result.warnings, [
    `key ${unknown} is not in type=registry,ref=${registry.host}/empty/src:latest; nothing kept for it`,
  ]);
  t.is((await open(t, registryRef(registry, 'empty/min'))).config.records.length, 2);
});

test('an inline cache is copied as its image, to a registry and to a local store', async (t) => {
  const [a, b] = await Promise.all([shared(t), shared(t)]);
  const dir = await inlineImage(t);
  const options = () => ({ client: client(t), cache: new CacheImportCache() });
  const image = await open(t, `type=local,src=${dir},tag=app`);
  const index = await open(t, `type=local,src=${dir},tag=index`);

  const up = await copyCache(
    `type=local,src=${dir},tag=app`,
    [registryRef(a, 'inline-a/app'), `${registryRef(a, 'inline-a/max')},mode=max`],
    options(),
  );
  t.is(up.sourceFormat, 'inline');
  for (const destination of up.destinations) {
    t.like(destination, { digest: image.remote.digest, format: 'inline', rebuilt: false });
    t.false('converted' in destination);
  }
  t.is(up.blobs.bytesDownloaded, 0);
  const indexUp = await copyCache(
    `type=local,src=${dir},tag=index`,
    registryRef(a, 'inline-a/index'),
    options(),
  );
  t.is(indexUp.digest, index.remote.digest);

  // Across registries: the image config is read once to see it is a cache, then the image
  // streams; bytesDownloaded is what the source registry served.
  const mark = await a.mark();
  const across = await copyCache(registryRef(a, 'inline-a/app'), registryRef(b, 'inline-b/app'), {
    ...options(),
    blobLocations: new BlobLocations(),
  });
  t.is(across.digest, image.remote.digest);
  const configDigest = image.remote.kind === 'image' ? image.remote.manifest.config.digest : '';
  const gets = (await blobGets(a, mark)).map((g) => g.path.split('/').pop());
  t.is(gets.filter((digest) => digest === configDigest).length, 2);
  t.is(gets.length, 6, 'the image config twice, each layer once');
  t.is(across.blobs.bytesDownloaded, await blobBytesServed(a, mark));

  const local = path.join(await tempDir(t), 'store');
  const down = await copyCache(
    registryRef(b, 'inline-b/app'),
    `type=local,dest=${local}`,
    options(),
  );
  t.like(down.destinations[0], { digest: image.remote.digest, format: 'inline' });
  const reopened = await open(t, `type=local,src=${local}`);
  t.is(reopened.format, 'inline');
  t.is(reopened.remote.digest, image.remote.digest);
});

test('an inline cache with a form key or mode=min becomes a standalone cache', async (t) => {
  const registry = await shared();
  const dir = await inlineImage(t);
  const result = await copyCache(
    `type=local,src=${dir},tag=app`,
    [
      `${registryRef(registry, 'standalone/inline')},image-manifest=true`,
      `${registryRef(registry, 'standalone/min')},mode=min`,
    ],
    { client: client(t), cache: new CacheImportCache() },
  );
  t.deepEqual(
    result.destinations.map((d) => d.status === 'exported' && [d.digest, d.format, d.converted]),
    [
      [INLINE_STANDALONE, 'image-manifest', { form: 'image-manifest' }],
      [INLINE_MIN, 'image-manifest', { mode: 'min', form: 'image-manifest' }],
    ],
  );

  const copied = await open(t, registryRef(registry, 'standalone/inline'));
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

test('writing an index or Docker list to Harbor warns before anything is written', async (t) => {
  const [source, harbor] = await Promise.all([
    shared(),
    startRegistry(t, { auth: 'token', tokenService: 'harbor-registry' }),
  ]);
  await pushFixture(source, 'cache-manifest', 'harbor/src');
  const c = new RegistryClient({
    credentials: new CredentialStore({
      env: {},
      explicit: { [harbor.host]: { kind: 'basic', username: 'alice', password: ALICE } },
    }),
  });
  t.teardown(() => c.close());
  const heard: Array<[string, number]> = [];
  const result = await copyCache(
    registryRef(source, 'harbor/src'),
    [
      `type=registry,ref=${harbor.host}/team/index:latest,image-manifest=false`,
      `type=registry,ref=${harbor.host}/team/docker:latest,oci-mediatypes=false`,
      `type=registry,ref=${harbor.host}/team/manifest:latest`,
      `${registryRef(source, 'harbor/plain-index')},image-manifest=false`,
    ],
    {
      client: c,
      cache: new CacheImportCache(),
      onWarning: (warning) => heard.push([warning, harbor.tokenRequests.length]),
    },
  );
  t.deepEqual(
    result.warnings,
    heard.map(([warning]) => warning),
  );
  t.deepEqual(
    result.warnings.map((w) => w.replace(/ in .* form .*/, '')),
    [
      `type=registry,ref=${harbor.host}/team/index:latest is a Harbor registry, which refuses BuildKit caches`,
      `type=registry,ref=${harbor.host}/team/docker:latest is a Harbor registry, which refuses BuildKit caches`,
    ],
  );
  t.regex(result.warnings[0] ?? '', /OCI index form .*goharbor\/harbor#14774.*image-manifest=true/);
  // Told before the copy asked for a token: nothing was written yet.
  t.deepEqual(
    heard.map(([, tokens]) => tokens),
    [0, 0],
  );
  t.true(harbor.tokenRequests.length > 0);
});

test('maxConfigSize: a config that fits goes as it is, a bigger one loses its oldest results', async (t) => {
  const registry = await shared();
  const c = client(t);
  const blobs = layerBlobs();
  const { a, b } = buildCaches(blobs);
  const config = mergeCacheConfigs([a, b]).config;
  const digest = await pushCache(c, registry, 'max-config/src', 'latest', config, blobs);
  const size = serializeCacheConfig(config).length;
  const from = registryRef(registry, 'max-config/src');
  const options = { client: c, cache: new CacheImportCache(), blobLocations: new BlobLocations() };

  const fits = await copyCache(from, registryRef(registry, 'max-config/fits'), {
    ...options,
    maxConfigSize: size,
  });
  t.is(fits.digest, digest);
  t.like(fits.destinations[0], { status: 'exported', rebuilt: false });

  const smaller = await copyCache(from, registryRef(registry, 'max-config/smaller'), {
    ...options,
    maxConfigSize: size - 1,
  });
  t.like(smaller.destinations[0], {
    status: 'exported',
    rebuilt: true,
    format: 'image-manifest',
    converted: { droppedForConfigSize: 1 },
  });
  const written = await open(t, registryRef(registry, 'max-config/smaller'));
  t.true((written.configDescriptor?.size ?? Infinity) < size);
  // The oldest result (build A's RUN step) went; the rest is there.
  t.is(
    written.config.records.reduce((n, r) => n + r.results.length, 0),
    config.records.reduce((n, r) => n + r.results.length, 0) - 1,
  );
  // Nothing fits in 2 bytes: refused before anything is written.
  await t.throwsAsync(
    copyCache(from, registryRef(registry, 'max-config/none'), { ...options, maxConfigSize: 2 }),
    { code: 'CACHE_EMPTY' },
  );
});
