import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { CacheImportCache, copyCache, openCacheSource } from '../../src/cache/index.ts';
import { fixturePath, fixtureRoot, readFixtureBlob } from '../helpers/fixtures.ts';
import { cacheKeys, fixtureCopy, tempDir } from './_support.ts';

const MANIFEST_FORM = 'sha256:adfddcd809f8b3cae26b67a6e9ca732948370f00452ff80780b5b13f54199289';
const CURL = 'sha256:56a8fa4ed6ef1b6ee6f37384babfc62a822d25788127b924dad4bb070317508d';
const FIXTURE = fixturePath('cache-manifest');

/** `index.json` exactly as BuildKit's `ociindex.Put(desc, Tag(tag))` writes it for these entries. */
function buildkitIndex(
  entries: ReadonlyArray<{ digest: string; size: number; tag: string }>,
): string {
  const manifests = entries.map(
    (e) =>
      `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"${e.digest}","size":${e.size},"annotations":{"org.opencontainers.image.ref.name":"${e.tag}"}}`,
  );
  return `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[${manifests.join(',')}]}`;
}

async function blobFiles(dir: string): Promise<string[]> {
  return (await readdir(path.join(dir, 'blobs', 'sha256'))).sort();
}

test('an export to a local store writes the files BuildKit writes', async (t) => {
  const dest = path.join(await tempDir(t), 'cache');
  const result = await copyCache(`type=local,src=${FIXTURE}`, `type=local,dest=${dest},mode=max`, {
    cache: new CacheImportCache(),
  });
  t.is(result.digest, MANIFEST_FORM);

  t.is(await readFile(path.join(dest, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
  t.is(
    await readFile(path.join(dest, 'index.json'), 'utf8'),
    buildkitIndex([{ digest: MANIFEST_FORM, size: 1858, tag: 'latest' }]),
  );
  // The fixture store, written the way BuildKit writes one, has the same index.json.
  t.is(
    await readFile(path.join(dest, 'index.json'), 'utf8'),
    await readFile(path.join(FIXTURE, 'index.json'), 'utf8'),
  );
  t.deepEqual(await blobFiles(dest), await blobFiles(FIXTURE));
  t.deepEqual((await readdir(dest)).sort(), ['blobs', 'index.json', 'oci-layout']);
  for (const file of await blobFiles(dest)) {
    const digest = `sha256:${file}`;
    t.true(
      (await readFile(path.join(dest, 'blobs', 'sha256', file))).equals(
        await readFixtureBlob('cache-manifest', digest),
      ),
    );
  }

  // And it imports: the store is a cache again.
  const reopened = await openCacheSource(`type=local,src=${dest}`, {
    cache: new CacheImportCache(),
  });
  const keys = await cacheKeys();
  for (const key of keys.hits) t.true(reopened.graph.newestResult(key) !== undefined, key);
});

test('re-exporting a tag replaces its entry; another tag adds one', async (t) => {
  const dest = path.join(await tempDir(t), 'cache');
  const cache = new CacheImportCache();
  await copyCache(`type=local,src=${FIXTURE}`, `type=local,dest=${dest},mode=max`, { cache });
  const min = await copyCache(`type=local,src=${FIXTURE}`, `type=local,dest=${dest}`, {
    cache,
    keys: [CURL],
  });
  t.not(min.digest, MANIFEST_FORM);
  t.is(
    await readFile(path.join(dest, 'index.json'), 'utf8'),
    buildkitIndex([{ digest: min.digest, size: min.size, tag: 'latest' }]),
  );

  await copyCache(`type=local,src=${FIXTURE}`, `type=local,dest=${dest},tag=full,mode=max`, {
    cache,
  });
  t.is(
    await readFile(path.join(dest, 'index.json'), 'utf8'),
    buildkitIndex([
      { digest: min.digest, size: min.size, tag: 'latest' },
      { digest: MANIFEST_FORM, size: 1858, tag: 'full' },
    ]),
  );
  const full = await openCacheSource(`type=local,src=${dest},tag=full`, { cache });
  t.is(full.remote.digest, MANIFEST_FORM);
});

test('reset=true deletes the blobs no index.json entry references any more', async (t) => {
  const dest = path.join(await tempDir(t), 'cache');
  const cache = new CacheImportCache();
  await copyCache(`type=local,src=${FIXTURE}`, `type=local,dest=${dest},mode=max`, { cache });
  const min = await copyCache(`type=local,src=${FIXTURE}`, `type=local,dest=${dest}`, {
    cache,
    keys: [CURL],
  });
  t.is((await blobFiles(dest)).length, 9); // the old cache's 7 blobs, a new config and manifest

  await copyCache(`type=local,src=${FIXTURE}`, `type=local,dest=${dest},reset=true`, {
    cache,
    keys: [CURL],
  });
  const source = await openCacheSource(`type=local,src=${dest}`, { cache });
  t.is(source.remote.digest, min.digest);
  const kept = [
    source.remote.digest,
    source.configDescriptor?.digest,
    ...source.layers.map((l) => l.digest),
  ].map((digest) => digest?.slice('sha256:'.length));
  t.deepEqual(await blobFiles(dest), kept.sort());
});

test('a tag is looked up as io.containerd.image.name first, then ref.name, as ociindex.Get', async (t) => {
  const dir = await fixtureCopy(t, 'cache-manifest');
  const indexRoot = await fixtureRoot('cache-index', 'latest');
  const bytes = await readFixtureBlob('cache-index', indexRoot.digest);
  await writeFile(
    path.join(dir, 'blobs', 'sha256', indexRoot.digest.slice('sha256:'.length)),
    bytes,
  );
  const manifestRoot = await fixtureRoot('cache-manifest', 'latest');
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...manifestRoot, annotations: { 'org.opencontainers.image.ref.name': 'main' } },
      { ...indexRoot, annotations: { 'io.containerd.image.name': 'main' } },
    ],
  };
  await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));

  const source = await openCacheSource(`type=local,src=${dir},tag=main`, {
    cache: new CacheImportCache(),
  });
  t.is(source.remote.digest, indexRoot.digest);
  t.is(source.format, 'index');
});
