import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import type { CacheConfig } from '../../src/cache/config.ts';
import { serializeCacheConfig } from '../../src/cache/config-write.ts';
import {
  CacheImportCache,
  checkCache,
  copyCache,
  explainCache,
  listCache,
  openCacheSource,
  parseCacheExport,
  parseCacheImport,
  readServiceToken,
  type ServiceCache,
} from '../../src/cache/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import { ociferry } from '../cli/support/cli.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { type SharedRegistry, sharedRegistry } from '../helpers/registry.ts';
import { exportBuild, key, sharedService, stopShared } from '../service/_support.ts';
import {
  blobGets,
  cacheKeys,
  client,
  fixtureLayers,
  pushCustomCache,
  tempDir,
  uploadBytes,
} from './_support.ts';

const registryRef = (registry: SharedRegistry, repo: string) =>
  `type=registry,ref=${registry.host}/${repo}:latest`;

let services = 0;

test.after.always(stopShared);
/** The file's registry; each test writes to repositories of its own. */
const shared = sharedRegistry(test);

/**
 * The file's service in-process, the request log of the test's namespaces, and its
 * `--from`/`--to` value with a token variable.
 */
async function service(t: ExecutionContext) {
  const started = await sharedService(t, 'pglite');
  if (!started) throw new Error('no service');
  const variable = `OCIFERRY_TEST_TOKEN_${process.pid}_${services++}`;
  process.env[variable] = started.tokens.a;
  t.teardown(() => {
    delete process.env[variable];
  });
  const csv = `type=service,url=${started.server.url},token-env=${variable}`;
  /** Requests of one kind since the log had `since` lines. */
  const count = (path: RegExp, since = 0) =>
    started
      .requests()
      .slice(since)
      .filter((line) => path.test(line.path)).length;
  return { ...started, csv, variable, count };
}

const DOWNLOAD_URL = /^\/v1\/layer-download-url$/;
const BLOB = /^\/v1\/blobs\//;

test('type=service parses url and token-env; the token never shows, a missing variable is a coded error', (t) => {
  const parsed = parseCacheImport('type=service,url=http://127.0.0.1:7450,token-env=MY_TOKEN');
  t.deepEqual(parsed, { type: 'service', url: 'http://127.0.0.1:7450', tokenEnv: 'MY_TOKEN' });
  const exported = parseCacheExport('type=service,url=https://cache.example,token-env=T,mode=max');
  t.like(exported, { type: 'service', url: 'https://cache.example', tokenEnv: 'T', mode: 'max' });
  const unset = t.throws(() => readServiceToken(parsed as ServiceCache, { OTHER: 'x' }));
  t.is((unset as { code?: string }).code, 'CACHE_OPTIONS_INVALID');
  t.regex(unset?.message ?? '', /MY_TOKEN is not set/);
  for (const bad of [
    'type=service,url=http://h',
    'type=service,token-env=T',
    'type=service,url=ftp://h,token-env=T',
    'type=service,url=http://user:pw@h,token-env=T',
    'type=service,url=http://h,token-env=T,token=x',
    'type=service,url=http://h,token-env=T,ref=h/r',
  ]) {
    t.throws(() => parseCacheImport(bad), { code: 'CACHE_OPTIONS_INVALID' }, bad);
  }
  t.throws(() => parseCacheExport('type=service,url=http://h,token-env=T,image-manifest=true'), {
    code: 'CACHE_OPTIONS_INVALID',
  });
});

test('a registry cache copied to the service: check, explain and ls against it mint no URL; back to a registry, one URL per layer', async (t) => {
  const [registry, svc] = await Promise.all([shared(t), service(t)]);
  // Pushed as the CLI test pushes it: two pushes of one fixture at once are one.
  await pushFixture(await shared(), 'cache-manifest', 'team/cache');
  const keys = await cacheKeys();
  const layers = await fixtureLayers();
  const c = client(t);
  const options = () => ({
    client: c,
    cache: new CacheImportCache(),
    blobLocations: new BlobLocations(),
  });

  const up = await copyCache(registryRef(registry, 'team/cache'), svc.csv, options());
  t.like(up.destinations[0], { status: 'exported', target: `type=service,url=${svc.server.url}` });
  const layerBytes = layers.reduce((sum, layer) => sum + layer.size, 0);
  t.like(up.blobs, { uploaded: layers.length, bytesUploaded: layerBytes });
  t.is(svc.count(/^\/v1\/layer-upload-url$/), layers.length);
  t.is(svc.count(/^\/v1\/records$/), 1);
  t.is(svc.count(/^\/v1\/layers$/), 1);

  // The service holds the cache: hits and misses as in the registry, and no URL minted.
  const since = svc.requests().length;
  const checked = await checkCache(svc.csv, [...keys.hits, ...keys.misses], options());
  t.deepEqual(checked.hits.map((hit) => hit.key).sort(), [...keys.hits].sort());
  t.deepEqual(checked.misses, keys.misses);
  for (const hit of checked.hits) {
    t.deepEqual(
      hit.chain.map((blob) => [blob.digest, blob.exists]),
      (keys.chains[hit.key] ?? []).map((digest) => [digest, true]),
    );
  }
  t.is(checked.layerBytesDownloaded, 0);
  const listing = await listCache(svc.csv, options());
  t.is(listing.layers, layers.length);
  const explained = await explainCache(registryRef(registry, 'team/cache'), svc.csv, options());
  t.like(explained, { finalCached: true, warnings: [] });
  t.is(explained.cached, explained.total);
  t.is(svc.count(DOWNLOAD_URL, since), 0, 'no download URL minted');
  t.is(svc.count(BLOB, since), 0, 'no blob transfer');

  // Exporting it again asks for nothing.
  const again = await copyCache(registryRef(registry, 'team/cache'), svc.csv, options());
  t.like(again.blobs, { uploaded: 0, bytesUploaded: 0 });

  // Back to a registry: each layer through exactly one minted URL.
  const before = svc.requests().length;
  const down = await copyCache(svc.csv, registryRef(registry, 'back/cache'), options());
  t.like(down.destinations[0], { status: 'exported' });
  t.is(svc.count(DOWNLOAD_URL, before), layers.length);
  t.is(svc.count(BLOB, before), layers.length);
  const back = await openCacheSource(registryRef(registry, 'back/cache'), options());
  t.deepEqual([...back.blobs.keys()].sort(), layers.map((layer) => layer.digest).sort());
  const mark = await registry.mark();
  const rechecked = await checkCache(registryRef(registry, 'back/cache'), keys.hits, options());
  t.deepEqual(rechecked.misses, []);
  const read = (await blobGets(registry, mark)).map((entry) => entry.path.split('/').pop());
  t.deepEqual(read, [back.configDescriptor?.digest], 'the config, no layer');
});

test('the CLI reads the token from token-env and never prints it; an unset variable is a usage error', async (t) => {
  const [registry, svc] = await Promise.all([shared(), service(t)]);
  await pushFixture(registry, 'cache-manifest', 'team/cache');
  const keys = await cacheKeys();
  const env = { ...process.env, [svc.variable]: svc.tokens.a };
  const copied = await ociferry(
    ['cache', 'copy', '--from', registryRef(registry, 'team/cache'), '--to', svc.csv],
    { env },
  );
  t.is(copied.code, 0, copied.stderr);
  const layers = (await fixtureLayers()).length;
  t.regex(
    copied.stderr,
    new RegExp(
      `exported to type=service,url=${svc.server.url}: ${layers} layers uploaded, 0 already there`,
    ),
  );
  const ok = await ociferry(['cache', 'check', '--json', '--from', svc.csv, keys.hits[0] ?? ''], {
    env,
  });
  t.is(ok.code, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), { misses: [], layerBytesDownloaded: 0 });
  for (const run of [copied, ok]) t.false(`${run.stdout}${run.stderr}`.includes(svc.tokens.a));

  const wrong = await ociferry(['cache', 'ls', svc.csv], {
    env: { ...process.env, [svc.variable]: 'not-a-token' },
  });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /UNAUTHORIZED|token/i);
  t.false(wrong.stderr.includes('not-a-token'));

  const unsetEnv = { ...process.env };
  delete unsetEnv[svc.variable];
  const unset = await ociferry(['cache', 'check', '--from', svc.csv, keys.hits[0] ?? ''], {
    env: unsetEnv,
  });
  t.is(unset.code, 2);
  t.regex(unset.stderr, new RegExp(`${svc.variable} is not set`));
});

test('unlazy of a service cache into a layout mints exactly one URL per blob it needs, and none once they are there', async (t) => {
  const svc = await service(t);
  const built = await exportBuild(svc.client(), ['base', 'deps', 'app']);
  const store = await LayoutStore.open(await tempDir(t));
  // One layer already in the layout: not needed, so no URL for it.
  const [present, ...needed] = built.layers;
  if (!present) throw new Error('no layer');
  await store.writeBlob(present, () => Readable.from([present.bytes]));
  const source = await openCacheSource(svc.csv, { cache: new CacheImportCache() });
  t.deepEqual(
    source.layers.map((layer) => layer.digest).sort(),
    built.layers.map((layer) => layer.digest).sort(),
  );
  const since = svc.requests().length;
  await source.remote.unlazy(store, { tag: 'cache' });
  t.is(svc.count(DOWNLOAD_URL, since), needed.length);
  t.is(svc.count(BLOB, since), needed.length);
  for (const layer of built.layers) t.true(await store.has(layer.digest), layer.digest);

  const again = svc.requests().length;
  await source.remote.unlazy(store, { tag: 'cache' });
  t.is(svc.count(DOWNLOAD_URL, again), 0);
});

test('an export of more results than one request carries goes in batches, and every result arrives', async (t) => {
  const [registry, svc] = await Promise.all([shared(), service(t)]);
  const c = client(t);
  const count = 150;
  const layers = await Promise.all(
    Array.from({ length: count }, async (_, i) => ({
      ...(await uploadBytes(c, registry, 'many/cache', Buffer.from(`layer ${i}\n`))),
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    })),
  );
  const keys = layers.map((_, i) => key(`step ${i}`));
  const config: CacheConfig = {
    layers: layers.map((layer) => ({ blob: layer.digest, parent: -1 })),
    records: keys.map((digest, i) => ({
      digest,
      results: [{ layer: i, createdAt: '2026-12-03T09:00:00Z' }],
      chains: [],
      inputs: [],
    })),
  };
  await pushCustomCache(c, registry, 'many/cache', 'latest', serializeCacheConfig(config), layers);
  const options = () => ({
    client: c,
    cache: new CacheImportCache(),
    blobLocations: new BlobLocations(),
  });
  const up = await copyCache(registryRef(registry, 'many/cache'), svc.csv, options());
  t.like(up.blobs, { uploaded: count });
  t.is(svc.count(/^\/v1\/records$/), 1);
  t.is(svc.count(/^\/v1\/layers$/), 2, '100 results per request');
  const checked = await checkCache(svc.csv, keys, options());
  t.is(checked.hits.length, count);
});
