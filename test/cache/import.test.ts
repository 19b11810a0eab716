import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import {
  CACHE_CONFIG_MEDIA_TYPE,
  CacheConfigError,
  CacheImportCache,
  CacheNotFoundError,
  failedImportWarning,
  isFailedImport,
  NotACacheError,
  openCacheSource,
} from '../../src/cache/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/index.ts';
import { fixturePath, fixtureRoot, pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import { refusedHost } from '../helpers/free-port.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import {
  BLOB_PATH,
  blobGets,
  cacheKeys,
  client,
  fixtureLayers,
  inlineImage,
  pushCustomCache,
  tempDir,
} from './_support.ts';

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);
const CONFIG_DIGEST = 'sha256:38e254e7accb35b833b28f541f3b90a1ba0774feb35cfdf8dadd482fccdd1b4f';

test('a registry cache in image-manifest form is opened from its manifest and config alone', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'cache-manifest', 'manifest-form/app');
  const mark = await registry.mark();
  const source = await openCacheSource(
    `type=registry,ref=${registry.host}/manifest-form/app:latest`,
    {
      client: client(t),
      cache: new CacheImportCache(),
    },
  );

  t.is(source.format, 'image-manifest');
  t.is(source.remote.digest, pushed.digest);
  t.is(source.configDescriptor?.digest, CONFIG_DIGEST);
  t.is(source.name, `type=registry,ref=${registry.host}/manifest-form/app:latest`);
  t.is(source.layers.length, 5);
  const keys = await cacheKeys();
  for (const key of keys.hits) t.true(source.graph.has(key), key);
  for (const key of keys.misses) t.false(source.graph.has(key), key);

  const requests = await registry.requests({ since: mark });
  t.deepEqual(
    requests.map((r) => `${r.method} ${r.path}`),
    [
      'GET /v2/',
      'GET /v2/manifest-form/app/manifests/latest',
      `GET /v2/manifest-form/app/blobs/${CONFIG_DIGEST}`,
    ],
  );
});

test('the index form is read through its last entry, the cache config', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-index', 'index-form/index');
  const mark = await registry.mark();
  const source = await openCacheSource(`${registry.host}/index-form/index`, {
    client: client(t),
    cache: new CacheImportCache(),
  });

  t.is(source.format, 'index');
  t.is(source.remote.mediaType, OCI_INDEX);
  t.is(source.configDescriptor?.digest, CONFIG_DIGEST);
  t.deepEqual(
    source.layers.map((l) => l.digest),
    (await fixtureLayers()).map((l) => l.digest),
  );
  t.deepEqual(
    (await blobGets(registry, mark)).map((r) => r.path),
    [`/v2/index-form/index/blobs/${CONFIG_DIGEST}`],
  );
});

test('reopening an unchanged cache costs one manifest request', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'reopen/app');
  const c = client(t);
  const cache = new CacheImportCache();
  const ref = `type=registry,ref=${registry.host}/reopen/app:latest`;
  const first = await openCacheSource(ref, { client: c, cache });
  const mark = await registry.mark();
  const second = await openCacheSource(ref, { client: c, cache });

  t.is(second.config, first.config);
  const requests = await registry.requests({ since: mark });
  t.deepEqual(
    requests.map((r) => `${r.method} ${r.path}`),
    ['GET /v2/reopen/app/manifests/latest'],
  );
});

test('configs kept in cacheDir survive a new client and a new in-memory cache', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'kept/app');
  const cacheDir = await tempDir(t);
  const ref = `type=registry,ref=${registry.host}/kept/app:latest`;
  await openCacheSource(ref, { client: client(t), cache: new CacheImportCache(), cacheDir });
  const kept = path.join(cacheDir, 'blobs', 'sha256', CONFIG_DIGEST.slice('sha256:'.length));
  t.true((await readFile(kept)).equals(await readFixtureBlob('cache-manifest', CONFIG_DIGEST)));

  const mark = await registry.mark();
  const again = await openCacheSource(ref, {
    client: client(t),
    cache: new CacheImportCache(),
    cacheDir,
  });
  t.is(again.configDescriptor?.digest, CONFIG_DIGEST);
  t.true(again.graph.has((await cacheKeys()).hits[0] as string));
  t.deepEqual(await blobGets(registry, mark), []);
});

test('cacheDir stays within its budget: the configs used longest ago go first', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'budget/app');
  const cacheDir = await tempDir(t);
  const blobs = path.join(cacheDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const hour = 3600;
  const now = Date.now() / 1000;
  const filler = async (name: string, ageSeconds: number) => {
    const file = path.join(blobs, name.repeat(64));
    await writeFile(file, Buffer.alloc(800));
    await utimes(file, now - ageSeconds, now - ageSeconds);
    return file;
  };
  const oldest = await filler('a', 72 * hour);
  const older = await filler('b', 48 * hour);
  const recent = await filler('c', hour);
  const configSize = (await readFixtureBlob('cache-manifest', CONFIG_DIGEST)).length;
  const ref = `type=registry,ref=${registry.host}/budget/app:latest`;
  await openCacheSource(ref, {
    client: client(t),
    cache: new CacheImportCache(),
    cacheDir,
    cacheDirMaxBytes: configSize + 900,
  });
  const left = await readdir(blobs);
  const kept = CONFIG_DIGEST.slice('sha256:'.length);
  t.deepEqual(left.sort(), [kept, path.basename(recent)].sort());
  t.false(left.includes(path.basename(oldest)) || left.includes(path.basename(older)));

  // A config read from the disk counts as used now.
  await utimes(path.join(blobs, kept), now - 96 * hour, now - 96 * hour);
  await openCacheSource(ref, { client: client(t), cache: new CacheImportCache(), cacheDir });
  t.true((await stat(path.join(blobs, kept))).mtimeMs > (now - hour) * 1000);
});

test('a cacheDir that cannot be used is skipped, not an error', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'unusable-dir/app');
  const file = path.join(await tempDir(t), 'a-file');
  await writeFile(file, 'not a directory');
  const source = await openCacheSource(`type=registry,ref=${registry.host}/unusable-dir/app`, {
    client: client(t),
    cache: new CacheImportCache(),
    cacheDir: file,
  });
  t.is(source.config.records.length, 6);
  t.is(await readFile(file, 'utf8'), 'not a directory');
});

test('a damaged config in cacheDir is dropped and read from the source again', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'cache-manifest', 'damaged/app');
  const cacheDir = await tempDir(t);
  const ref = `type=registry,ref=${registry.host}/damaged/app:latest`;
  await openCacheSource(ref, { client: client(t), cache: new CacheImportCache(), cacheDir });
  const kept = path.join(cacheDir, 'blobs', 'sha256', CONFIG_DIGEST.slice('sha256:'.length));
  await writeFile(kept, '{"layers":[],"records":[]}');

  const mark = await registry.mark();
  const source = await openCacheSource(ref, {
    client: client(t),
    cache: new CacheImportCache(),
    cacheDir,
  });
  t.is(source.config.records.length, 6);
  t.is((await blobGets(registry, mark)).length, 1);
  t.true((await readFile(kept)).equals(await readFixtureBlob('cache-manifest', CONFIG_DIGEST)));
});

test('a malformed config from a registry is a clear error naming the config and the source', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'malformed/bad');
  const c = client(t);
  const looping = await readFile(fixturePath('cacheconfig/loop-records.json'));
  await pushCustomCache(c, registry, 'malformed/bad', 'loop', looping, await fixtureLayers());

  const error = await t.throwsAsync(
    openCacheSource(`type=registry,ref=${registry.host}/malformed/bad:loop`, {
      client: c,
      cache: new CacheImportCache(),
    }),
    { instanceOf: CacheConfigError },
  );
  t.is(error.code, 'CACHE_CONFIG_INVALID');
  t.true(error.message.includes(digestBytes(looping)), error.message);
  t.true(error.message.includes(`${registry.host}/malformed/bad:loop`), error.message);
  t.regex(error.message, /looping records/);

  const truncated = await readFile(fixturePath('cacheconfig/truncated.json'));
  await pushCustomCache(
    c,
    registry,
    'malformed/bad',
    'truncated',
    truncated,
    await fixtureLayers(),
  );
  const cut = await t.throwsAsync(
    openCacheSource(`type=registry,ref=${registry.host}/malformed/bad:truncated`, {
      client: c,
      cache: new CacheImportCache(),
    }),
    { instanceOf: CacheConfigError },
  );
  t.regex(cut.message, /ends early/);
});

test('a 17 MiB config is refused with SIZE_EXCEEDED before it is requested', async (t) => {
  const registry = await shared(t);
  const c = client(t);
  const big = Buffer.alloc(17 * 1024 * 1024, 0x20);
  big.write('{"records":[');
  big.write(']}', big.length - 2);
  await pushFixture(registry, 'cache-manifest', 'too-big/big');
  await pushCustomCache(c, registry, 'too-big/big', 'latest', big, await fixtureLayers());

  const mark = await registry.mark();
  const error = await t.throwsAsync(
    openCacheSource(`type=registry,ref=${registry.host}/too-big/big`, {
      client: c,
      cache: new CacheImportCache(),
    }),
  );
  t.is((error as { code?: string }).code, 'SIZE_EXCEEDED');
  t.deepEqual(await blobGets(registry, mark), []);

  // The cap is configurable: the same config opens under a higher one.
  const source = await openCacheSource(`type=registry,ref=${registry.host}/too-big/big`, {
    client: c,
    cache: new CacheImportCache(),
    configSizeLimit: 32 * 1024 * 1024,
  });
  t.is(source.config.records.length, 0);
});

test('a local store opens by tag and by digest without writing to it', async (t) => {
  const dir = fixturePath('cache-manifest');
  const before = await snapshot(dir);
  const root = await fixtureRoot('cache-manifest', 'latest');

  const byTag = await openCacheSource(`type=local,src=${dir}`, { cache: new CacheImportCache() });
  t.is(byTag.format, 'image-manifest');
  t.is(byTag.remote.digest, root.digest);
  t.is(byTag.name, `type=local,src=${dir},tag=latest`);

  const byDigest = await openCacheSource(
    { type: 'local', src: dir, tag: 'latest', digest: root.digest },
    { cache: new CacheImportCache() },
  );
  t.is(byDigest.remote.mediaType, OCI_MANIFEST);
  t.is(byDigest.configDescriptor?.digest, CONFIG_DIGEST);
  t.deepEqual(await snapshot(dir), before);
});

test('a manifest stored by digest only (not in index.json) still opens', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const layers = await fixtureLayers();
  for (const layer of layers) {
    await store.writeBytes(layer, await readFixtureBlob('cache-manifest', layer.digest));
  }
  const config = await readFixtureBlob('cache-manifest', CONFIG_DIGEST);
  await store.writeBytes({ digest: CONFIG_DIGEST, size: config.length }, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: CONFIG_DIGEST, size: config.length },
      layers,
    }),
  );
  const digest = digestBytes(manifest);
  await store.writeBytes({ digest, size: manifest.length }, manifest);

  const source = await openCacheSource(`type=local,src=${dir},digest=${digest}`, {
    cache: new CacheImportCache(),
  });
  t.is(source.remote.mediaType, OCI_MANIFEST);
  t.is(source.config.records.length, 6);
});

test('missing caches are CACHE_NOT_FOUND: registry tag, repository, local dir, tag and digest', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'cache-manifest', 'missing/app');
  const c = client(t);
  const dir = fixturePath('cache-manifest');
  const missing = [
    `type=registry,ref=${registry.host}/missing/app:nope`,
    `type=registry,ref=${registry.host}/missing/none:latest`,
    `type=local,src=${path.join(dir, 'nope')}`,
    `type=local,src=${dir},tag=nope`,
    `type=local,src=${dir},digest=sha256:${'0'.repeat(64)}`,
  ];
  for (const csv of missing) {
    const error = await t.throwsAsync(openCacheSource(csv, { client: c }), {
      instanceOf: CacheNotFoundError,
    });
    t.is(error.code, 'CACHE_NOT_FOUND');
    t.true(error.message.startsWith('no cache at type='), error.message);
  }
});

test('an image without inline cache is NOT_A_CACHE', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'not-a-cache/plain-image');
  const error = await t.throwsAsync(
    openCacheSource(`${registry.host}/not-a-cache/plain-image:v1`, { client: client(t) }),
    { instanceOf: NotACacheError },
  );
  t.is(error.code, 'NOT_A_CACHE');
});

test('an inline cache is read from the image config as BuildKit reads it', async (t) => {
  const registry = await shared(t);
  const c = client(t);
  const dir = await inlineImage(t);
  const local = await openCacheSource(`type=local,src=${dir},tag=app`, {
    cache: new CacheImportCache(),
  });
  t.is(local.format, 'inline');
  t.is(local.configDescriptor, undefined);

  const keys = await cacheKeys();
  const expectInline = (source: typeof local) => {
    // The inline cache has the build's chain only: `apk add git` (58fa...) has no result.
    for (const key of keys.hits) {
      const result = source.graph.newestResult(key);
      if (key === 'sha256:58fa979b32fbf1de718e3aaa6eec0ec0c93c4d5cc4387bedfdc8469231e42697') {
        t.is(result, undefined);
        continue;
      }
      t.deepEqual(
        result?.layers.map((l) => l.blob),
        keys.chains[key],
        key,
      );
    }
    const byDigest = new Map(source.layers.map((l) => [l.digest, l]));
    for (const layer of source.layers) {
      t.regex(layer.annotations?.['containerd.io/uncompressed'] ?? '', /^sha256:/);
      t.truthy(layer.annotations?.['buildkit/createdat']);
    }
    t.is(
      byDigest.get('sha256:5a425d55d3c0858be69c6ad1ccfb5e6cdf4659e7ddb1d94d05917be826d59770')
        ?.annotations?.['containerd.io/uncompressed'],
      'sha256:b21853e872130561cc2cfd6ceb0c19e78a355c0c29bbbd37d062f1af9413ce61',
    );
  };
  expectInline(local);

  // The same image in a registry, behind an index: one image config read, no layer.
  const { copy } = await import('../../src/copy/index.ts');
  const { resolve } = await import('../../src/remote/resolve.ts');
  await copy(await resolve(`oci:${dir}:index`), `${registry.host}/inline/inline-app:latest`, {
    client: c,
  });
  const mark = await registry.mark();
  const cache = new CacheImportCache();
  const remote = await openCacheSource(`${registry.host}/inline/inline-app`, { client: c, cache });
  t.is(remote.format, 'inline');
  t.is(remote.remote.kind, 'index');
  expectInline(remote);
  const gets = await blobGets(registry, mark);
  t.is(gets.length, 1);
  t.regex(gets[0]?.path ?? '', BLOB_PATH);
  t.false(remote.layers.some((l) => gets[0]?.path.endsWith(l.digest)));

  // Opened again: the inline cache is kept by manifest digest, so only manifests are read.
  const again = await registry.mark();
  await openCacheSource(`${registry.host}/inline/inline-app`, { client: c, cache });
  t.deepEqual(await blobGets(registry, again), []);
});

/** Every file under `dir` with its size and modification time. */
async function snapshot(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  const lines = await Promise.all(
    entries.map(async (entry) => {
      const s = await stat(path.join(dir, entry));
      return `${entry} ${s.size} ${s.mtimeMs}`;
    }),
  );
  return lines.sort();
}

test('failed imports are those BuildKit skips: missing, not a cache, malformed, too big', async (t) => {
  const registry = await shared();
  const c = client(t);
  await pushFixture(registry, 'cache-manifest', 'failed/bad');
  await pushFixture(registry, 'oci-image', 'failed/plain-image');
  const looping = await readFile(fixturePath('cacheconfig/loop-records.json'));
  await pushCustomCache(c, registry, 'failed/bad', 'loop', looping, await fixtureLayers());
  const options = { client: c, cache: new CacheImportCache(), configSizeLimit: 1024 };
  const failing: Array<[string, RegExp]> = [
    [`type=registry,ref=${registry.host}/failed/none:latest`, /^no cache at .*; skipped$/],
    [`${registry.host}/failed/plain-image:v1`, /is not a BuildKit cache: .*; skipped$/],
    [
      `type=registry,ref=${registry.host}/failed/bad:loop`,
      /^invalid cache config: config sha256:\S+ of type=registry,.*\/failed\/bad:loop: .*\(looping records\); skipped$/,
    ],
    // The fixture's config is over the 1 KiB cap set here: the warning names the source.
    [
      `type=registry,ref=${registry.host}/failed/bad:latest`,
      /^type=registry,ref=.*\/failed\/bad:latest: cache config has \d+ bytes, more than the limit .*; skipped$/,
    ],
  ];
  for (const [source, warning] of failing) {
    const error = await t.throwsAsync(openCacheSource(source, options));
    t.true(isFailedImport(error), `${source}: ${error?.message}`);
    t.regex(failedImportWarning(source, error as Error), warning);
  }

  // Not reaching the source says nothing of the cache: not a failed import.
  const closed = await refusedHost();
  const unreachable = await t.throwsAsync(openCacheSource(`${closed}/failed/app:latest`, options));
  t.false(isFailedImport(unreachable), unreachable?.message);
  t.false(isFailedImport(new Error('plain')));
});
