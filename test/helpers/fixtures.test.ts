import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { buildFixtures, MediaType } from '../../fixtures/generate.ts';
import { digestBytes } from '../../src/digest/index.ts';
import {
  FIXTURES,
  type FixtureDescriptor,
  fixtureGraph,
  fixturePath,
  fixtureRoot,
  isManifestType,
  pushFixture,
  readFixtureBlob,
} from './fixtures.ts';
import { type AuthMode, startRegistry } from './registry.ts';
import { IMPORT_TYPESCRIPT } from './typescript.ts';

const execFileAsync = promisify(execFile);
const GENERATOR = path.resolve(import.meta.dirname, '../../fixtures/generate.ts');
const LAYOUTS = [
  'oci-image',
  'docker-image',
  'docker-image-arm64',
  'multi-platform',
  'layers-40',
  'cache-manifest',
  'cache-index',
];

interface ImageManifest {
  mediaType: string;
  config: FixtureDescriptor;
  layers: FixtureDescriptor[];
}
interface ImageIndex {
  mediaType: string;
  manifests: (FixtureDescriptor & { platform?: Record<string, string> })[];
}
interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  rootfs: { type: string; diff_ids: string[] };
  history: unknown[];
  'moby.buildkit.cache.v0'?: string;
}
interface WireCacheConfig {
  layers: { blob: string; parent?: number }[];
  records: {
    digest: string;
    layers?: { layer: number; createdAt: string }[];
    inputs?: { selector?: string; link: number }[][];
  }[];
}
interface CacheKeys {
  hits: string[];
  misses: string[];
  withoutResult: string[];
  chains: Record<string, string[]>;
}

async function json<T>(name: string, digest: string): Promise<T> {
  return JSON.parse((await readFixtureBlob(name, digest)).toString('utf8')) as T;
}

async function fixtureJson<T>(rel: string): Promise<T> {
  return JSON.parse(await readFile(fixturePath(rel), 'utf8')) as T;
}

/** Entry names of an uncompressed tar. */
function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    names.push(header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, ''));
    const size = Number.parseInt(header.subarray(124, 136).toString('ascii').trim() || '0', 8);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/** Follow `parent` links (absent = 0) from a layer index to the root; blobs bottom-up. */
function chainOf(config: WireCacheConfig, index: number): string[] {
  const chain: string[] = [];
  for (let i = index, steps = 0; i !== -1; steps++) {
    const l = config.layers[i];
    if (!l || steps > config.layers.length) throw new Error(`bad layer chain at ${i}`);
    chain.unshift(l.blob);
    i = l.parent ?? 0;
  }
  return chain;
}

function assertSortedLikeBuildKit(t: ExecutionContext, config: WireCacheConfig): void {
  const blobs = config.layers.map((l) => l.blob);
  t.deepEqual(blobs, [...blobs].sort(), 'layers sorted by blob');
  const digests = config.records.map((r) => r.digest);
  t.deepEqual(digests, [...digests].sort(), 'records sorted by digest');
  for (const r of config.records) {
    for (const group of r.inputs ?? []) {
      const links = group.map((i) => i.link);
      t.deepEqual(
        links,
        [...links].sort((a, b) => a - b),
        'inputs sorted by link',
      );
    }
  }
}

// --- generator ---------------------------------------------------------------------------------

test('generate --check accepts the checked-in fixtures', async (t) => {
  const { stdout } = await execFileAsync(process.execPath, [
    IMPORT_TYPESCRIPT,
    GENERATOR,
    '--check',
  ]);
  t.regex(stdout, /up to date/);
});

test('generate --check exits 1 when a fixture file differs', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-fixtures-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const copy = path.join(dir, 'data');
  await cp(FIXTURES, copy, { recursive: true });
  await writeFile(path.join(copy, 'cacheconfig', 'simple.json'), '{}');
  const error = await t.throwsAsync(
    execFileAsync(process.execPath, [IMPORT_TYPESCRIPT, GENERATOR, '--check', '--out', copy]),
  );
  t.is((error as { code?: number }).code, 1);
  t.regex((error as { stderr?: string }).stderr ?? '', /differs: cacheconfig\/simple\.json/);
});

test('building the fixtures twice gives identical bytes', (t) => {
  const a = buildFixtures();
  const b = buildFixtures();
  t.deepEqual([...a.keys()], [...b.keys()]);
  for (const [file, data] of a) t.true(data.equals(b.get(file) ?? Buffer.alloc(0)), file);
});

test('all fixtures together stay under 1 MB', async (t) => {
  let total = 0;
  for (const file of await allFiles(FIXTURES)) total += (await stat(file)).size;
  t.true(total < 1024 * 1024, `${total} bytes`);
});

// --- layouts -------------------------------------------------------------------------------------

for (const name of LAYOUTS) {
  test(`${name}: every referenced blob exists with its digest and size, none unreferenced`, async (t) => {
    const layout = await readFile(path.join(fixturePath(name), 'oci-layout'), 'utf8');
    t.deepEqual(JSON.parse(layout), { imageLayoutVersion: '1.0.0' });
    const root = await fixtureRoot(name);
    t.truthy(root.annotations?.['org.opencontainers.image.ref.name']);
    const { blobs, manifests } = await fixtureGraph(name, root);
    const referenced = new Set<string>();
    for (const desc of [...blobs, ...manifests]) {
      const data = await readFixtureBlob(name, desc.digest);
      t.is(digestBytes(data), desc.digest);
      t.is(data.length, desc.size, desc.digest);
      referenced.add(desc.digest);
    }
    const stored = (await allFiles(path.join(fixturePath(name), 'blobs'))).map(
      (f) => `sha256:${path.basename(f)}`,
    );
    t.deepEqual(stored.sort(), [...referenced].sort());
    t.is(manifests.at(-1)?.digest, root.digest, 'root comes last');
  });
}

for (const name of [
  'oci-image',
  'docker-image',
  'docker-image-arm64',
  'multi-platform',
  'layers-40',
]) {
  test(`${name}: config diff_ids are the sha256 of each uncompressed layer`, async (t) => {
    const { manifests } = await fixtureGraph(name, await fixtureRoot(name));
    const images = manifests.filter((m) => !m.mediaType.includes('index'));
    t.true(images.length > 0);
    for (const m of images) {
      const manifest = await json<ImageManifest>(name, m.digest);
      t.is(manifest.mediaType, m.mediaType);
      const config = await json<ImageConfig>(name, manifest.config.digest);
      const diffIds = await Promise.all(
        manifest.layers.map(async (l) =>
          digestBytes(gunzipSync(await readFixtureBlob(name, l.digest))),
        ),
      );
      t.deepEqual(config.rootfs, { type: 'layers', diff_ids: diffIds });
      t.is(config.history.length, manifest.layers.length);
      t.is(config.os, 'linux');
    }
  });
}

test('oci-image is one linux/amd64 OCI image of 3 gzip layers, one with a whiteout', async (t) => {
  const root = await fixtureRoot('oci-image', 'v1');
  t.is(root.mediaType, MediaType.ociManifest);
  const manifest = await json<ImageManifest>('oci-image', root.digest);
  t.is(manifest.config.mediaType, MediaType.ociConfig);
  t.deepEqual(
    manifest.layers.map((l) => l.mediaType),
    [MediaType.ociLayer, MediaType.ociLayer, MediaType.ociLayer],
  );
  const config = await json<ImageConfig>('oci-image', manifest.config.digest);
  t.is(config.architecture, 'amd64');
  const names = await Promise.all(
    manifest.layers.map(async (l) =>
      tarNames(gunzipSync(await readFixtureBlob('oci-image', l.digest))),
    ),
  );
  t.deepEqual(
    names.map((n) => n.some((x) => path.basename(x).startsWith('.wh.'))),
    [false, false, true],
  );
  t.true(names[1]?.includes('tmp/scratch.txt'));
  t.true(names[2]?.includes('tmp/.wh.scratch.txt'));
});

test('docker-image and docker-image-arm64 use Docker schema2 media types and share no layer', async (t) => {
  const layers: string[][] = [];
  for (const [name, arch] of [
    ['docker-image', 'amd64'],
    ['docker-image-arm64', 'arm64'],
  ] as const) {
    const root = await fixtureRoot(name, 'v1');
    t.is(root.mediaType, MediaType.dockerManifest);
    const manifest = await json<ImageManifest>(name, root.digest);
    t.is(manifest.config.mediaType, MediaType.dockerConfig);
    t.deepEqual(
      manifest.layers.map((l) => l.mediaType),
      [MediaType.dockerLayer, MediaType.dockerLayer],
    );
    t.is((await json<ImageConfig>(name, manifest.config.digest)).architecture, arch);
    layers.push(manifest.layers.map((l) => l.digest));
  }
  t.false(layers[0]?.some((d) => layers[1]?.includes(d)));
});

test('multi-platform is an OCI index of amd64 and arm64/v8 sharing exactly one layer', async (t) => {
  const root = await fixtureRoot('multi-platform', 'v1');
  t.is(root.mediaType, MediaType.ociIndex);
  const index = await json<ImageIndex>('multi-platform', root.digest);
  t.deepEqual(
    index.manifests.map((m) => m.platform),
    [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ],
  );
  const layerSets: string[][] = [];
  for (const entry of index.manifests) {
    const manifest = await json<ImageManifest>('multi-platform', entry.digest);
    const config = await json<ImageConfig>('multi-platform', manifest.config.digest);
    t.is<string | undefined, string | undefined>(config.architecture, entry.platform?.architecture);
    t.is(config.variant, entry.platform?.variant);
    layerSets.push(manifest.layers.map((l) => l.digest));
  }
  const [amd, arm] = layerSets;
  t.is(amd?.length, 2);
  t.is(arm?.length, 2);
  t.deepEqual(
    amd?.filter((d) => arm?.includes(d)),
    [amd?.[1]],
  );
});

test('layers-40 has 40 distinct small gzip layers', async (t) => {
  const manifest = await json<ImageManifest>('layers-40', (await fixtureRoot('layers-40')).digest);
  t.is(manifest.layers.length, 40);
  t.is(new Set(manifest.layers.map((l) => l.digest)).size, 40);
  for (const l of manifest.layers) t.true(l.size >= 200 && l.size <= 5000, `${l.size}`);
});

// --- BuildKit cache ------------------------------------------------------------------------------

test('cache-manifest and cache-index wrap the same cache config and layer descriptors', async (t) => {
  const simple = await readFile(fixturePath('cacheconfig/simple.json'));
  const config = JSON.parse(simple.toString('utf8')) as WireCacheConfig;

  const root = await fixtureRoot('cache-manifest', 'latest');
  t.is(root.mediaType, MediaType.ociManifest);
  const manifest = await json<ImageManifest>('cache-manifest', root.digest);
  t.is(manifest.config.mediaType, MediaType.cacheConfig);
  t.true((await readFixtureBlob('cache-manifest', manifest.config.digest)).equals(simple));

  const indexRoot = await fixtureRoot('cache-index', 'latest');
  t.is(indexRoot.mediaType, MediaType.ociIndex);
  const index = await json<ImageIndex>('cache-index', indexRoot.digest);
  t.deepEqual(index.manifests.at(-1), manifest.config);
  t.deepEqual(index.manifests.slice(0, -1), manifest.layers);

  t.deepEqual(
    manifest.layers.map((l) => l.digest),
    config.layers.map((l) => l.blob),
    'layers in cache config order',
  );
  for (const l of manifest.layers) {
    t.is(l.mediaType, MediaType.ociLayer);
    const diffId = digestBytes(gunzipSync(await readFixtureBlob('cache-manifest', l.digest)));
    t.is(l.annotations?.['containerd.io/uncompressed'], diffId);
    t.regex(
      l.annotations?.['buildkit/createdat'] ?? '',
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/,
    );
  }
});

test('simple.json is written as Go json.Marshal does: compact, struct key order, omitempty', async (t) => {
  const text = await readFile(fixturePath('cacheconfig/simple.json'), 'utf8');
  const config = JSON.parse(text) as WireCacheConfig;
  t.false(/\s/.test(text));
  t.false(text.includes('"parent":0'));
  t.true(text.startsWith('{"layers":[{"blob":"sha256:'));
  for (const r of config.records) {
    const keys = Object.keys(r);
    t.deepEqual(
      keys,
      ['layers', 'digest', 'inputs'].filter((k) => keys.includes(k)),
    );
    for (const res of r.layers ?? []) t.deepEqual(Object.keys(res), ['layer', 'createdAt']);
    for (const group of r.inputs ?? []) t.true(group.length > 0);
  }
  assertSortedLikeBuildKit(t, config);
  t.true(
    config.layers.some((l) => l.parent === undefined),
    'a layer with parent 0 omits it',
  );
  t.true(config.layers.some((l) => l.parent === -1));
  t.true(config.records.length >= 4 && config.records.length <= 6);
  t.true(
    config.records.some(
      (r) => (r.inputs?.length ?? 0) === 2 && r.inputs?.some((g) => g.some((i) => i.selector)),
    ),
  );
  t.true(text.includes('.5Z"') && text.includes('.000123456Z"'), 'fractions as Go trims them');
});

test('cache-keys.json agrees with the cache config', async (t) => {
  const config = await fixtureJson<WireCacheConfig>('cacheconfig/simple.json');
  const keys = await fixtureJson<CacheKeys>('cache-keys.json');
  const byDigest = new Map(config.records.map((r) => [r.digest, r]));
  t.deepEqual([...keys.hits, ...keys.withoutResult].sort(), [...byDigest.keys()].sort());
  for (const miss of keys.misses) t.false(byDigest.has(miss));
  t.deepEqual(Object.keys(keys.chains).sort(), [...keys.hits].sort());
  for (const key of keys.hits) {
    const result = byDigest.get(key)?.layers?.[0];
    t.truthy(result, key);
    t.deepEqual(chainOf(config, result?.layer ?? -1), keys.chains[key]);
  }
  for (const key of keys.withoutResult) t.is(byDigest.get(key)?.layers, undefined);
  const layerBlobs = new Set(config.layers.map((l) => l.blob));
  t.false(
    config.records.some((r) => layerBlobs.has(r.digest)),
    'keys are not blob digests',
  );
});

test('diamond-64.json has 64 levels of 2 records each linking both records below', async (t) => {
  const config = await fixtureJson<WireCacheConfig>('cacheconfig/diamond-64.json');
  t.is(config.records.length, 128);
  t.is(config.layers.length, 128);
  assertSortedLikeBuildKit(t, config);
  const roots = config.records.filter((r) => !r.inputs);
  t.is(roots.length, 2);
  // Walk level by level from the roots: each level is the set of records linking the previous one.
  let level = new Set(roots.map((r) => config.records.indexOf(r)));
  for (let depth = 1; depth < 64; depth++) {
    const next = config.records
      .map((r, i) => ({ r, i }))
      .filter(({ r }) => r.inputs?.[0]?.some((inp) => level.has(inp.link)));
    t.is(next.length, 2, `level ${depth}`);
    for (const { r } of next) {
      t.is(r.inputs?.length, 1);
      t.deepEqual(
        r.inputs?.[0]?.map((i) => i.link),
        [...level].sort((a, b) => a - b),
      );
    }
    level = new Set(next.map(({ i }) => i));
  }
  const chainLengths = config.records.map(
    (r) => chainOf(config, r.layers?.[0]?.layer ?? -1).length,
  );
  t.is(Math.max(...chainLengths), 64);
});

test('legacy-keys.json is simple.json spelled with createdat and explicit parent 0', async (t) => {
  const text = await readFile(fixturePath('cacheconfig/legacy-keys.json'), 'utf8');
  t.true(text.includes('"createdat"'));
  t.false(text.includes('"createdAt"'));
  t.regex(text, /"parent": 0\b/);
  const legacy = JSON.parse(text) as {
    layers: { blob: string; parent: number }[];
    records: {
      digest: string;
      layers?: { createdat: string; layer: number }[];
      inputs?: unknown;
    }[];
  };
  const simple = await fixtureJson<WireCacheConfig>('cacheconfig/simple.json');
  t.deepEqual(
    legacy.layers,
    simple.layers.map((l) => ({ blob: l.blob, parent: l.parent ?? 0 })),
  );
  t.deepEqual(
    legacy.records.map((r) => ({
      digest: r.digest,
      layers: r.layers?.map((x) => ({ layer: x.layer, createdAt: x.createdat })),
      inputs: r.inputs,
    })),
    simple.records.map((r) => ({ digest: r.digest, layers: r.layers, inputs: r.inputs })),
  );
});

test('inline-config.json carries base64 cache records indexing the image layers', async (t) => {
  const text = await readFile(fixturePath('cacheconfig/inline-config.json'), 'utf8');
  const config = JSON.parse(text) as ImageConfig;
  t.deepEqual(Object.keys(config), [...Object.keys(config)].sort(), 'keys sorted like a Go map');
  const records = JSON.parse(
    Buffer.from(config['moby.buildkit.cache.v0'] ?? '', 'base64').toString('utf8'),
  ) as WireCacheConfig['records'];
  const keys = await fixtureJson<CacheKeys>('cache-keys.json');
  const simple = await fixtureJson<WireCacheConfig>('cacheconfig/simple.json');
  t.deepEqual(
    records.map((r) => r.digest),
    simple.records.map((r) => r.digest),
  );
  // The image is the longest chain; each record's layer index is its chain length - 1.
  const imageChain = Object.values(keys.chains).sort((a, b) => b.length - a.length)[0] ?? [];
  const layerDiffIds = new Map<string, string>();
  const manifest = await json<ImageManifest>(
    'cache-manifest',
    (await fixtureRoot('cache-manifest')).digest,
  );
  for (const l of manifest.layers)
    layerDiffIds.set(l.digest, l.annotations?.['containerd.io/uncompressed'] ?? '');
  t.deepEqual(
    config.rootfs.diff_ids,
    imageChain.map((d) => layerDiffIds.get(d)),
  );
  let withResults = 0;
  for (const r of records) {
    const chain = keys.chains[r.digest];
    const inImage = chain?.every((d, i) => imageChain[i] === d) ?? false;
    t.is(r.layers?.[0]?.layer, inImage ? (chain?.length ?? 0) - 1 : undefined, r.digest);
    if (inImage) withResults++;
  }
  t.is(withResults, imageChain.length);
});

test('malformed cache configs are malformed in the way their names say', async (t) => {
  const read = (name: string) => readFile(fixturePath(`cacheconfig/${name}`), 'utf8');
  const truncated = await read('truncated.json');
  t.throws(() => JSON.parse(truncated));
  t.true((await read('simple.json')).startsWith(truncated));

  const wrong = JSON.parse(await read('wrong-types.json')) as WireCacheConfig;
  t.is(typeof wrong.records[1]?.inputs?.[0]?.[0]?.link, 'string');

  const empty = JSON.parse(await read('empty-input-group.json')) as WireCacheConfig;
  t.true(empty.records.some((r) => r.inputs?.some((g) => g.length === 0)));

  const loopRecords = JSON.parse(await read('loop-records.json')) as WireCacheConfig;
  t.deepEqual(
    loopRecords.records.map((r) => r.inputs?.[0]?.[0]?.link),
    [1, 0],
  );
  const loopLayers = JSON.parse(await read('loop-layers.json')) as WireCacheConfig;
  t.throws(() => chainOf(loopLayers, 0), { message: /bad layer chain/ });

  const badIndex = JSON.parse(await read('bad-index.json')) as WireCacheConfig;
  const links = badIndex.records.flatMap((r) => r.inputs?.flat() ?? []).map((i) => i.link);
  t.true(links.some((l) => l >= badIndex.records.length));
  const badLayer = JSON.parse(await read('bad-layer-index.json')) as WireCacheConfig;
  t.true(badLayer.records.some((r) => (r.layers?.[0]?.layer ?? 0) >= badLayer.layers.length));
  const badParent = JSON.parse(await read('bad-parent-index.json')) as WireCacheConfig;
  t.true(badParent.layers.some((l) => (l.parent ?? 0) >= badParent.layers.length));
});

// --- registry and skopeo -------------------------------------------------------------------------

async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('skopeo', args, {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: 60_000,
  });
  return stdout;
}

const PUSH_CASES: { name: string; auth: AuthMode }[] = [
  { name: 'oci-image', auth: 'none' },
  { name: 'docker-image', auth: 'basic' },
  { name: 'multi-platform', auth: 'token' },
];

for (const { name, auth } of PUSH_CASES) {
  test(`pushFixture puts ${name} into a registry (${auth} auth) and skopeo reads it back`, async (t) => {
    const registry = await startRegistry(t, { auth });
    const repo = `fixtures/${name}`;
    const pushed = await pushFixture(registry, name, repo, { dstTag: 'pushed' });
    const root = await fixtureRoot(name);
    t.is(pushed.digest, root.digest);
    t.is(pushed.mediaType, root.mediaType);
    t.is(pushed.manifests.at(-1), root.digest);
    t.false(pushed.blobs.some(isManifestType));

    const creds = auth === 'none' ? [] : ['--creds', `alice:${registry.users.alice?.password}`];
    const raw = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      ...creds,
      `docker://${registry.host}/${repo}:pushed`,
    ]);
    t.is(digestBytes(raw), pushed.digest);
    for (const digest of pushed.manifests) {
      const child = await skopeo([
        'inspect',
        '--raw',
        '--tls-verify=false',
        ...creds,
        `docker://${registry.host}/${repo}@${digest}`,
      ]);
      t.is(digestBytes(child), digest);
    }

    const puts = await registry.requests({ method: 'PUT', path: /\/manifests\// });
    t.is(puts.length, pushed.manifests.length + 1);
    const uploads = await registry.requests({
      method: 'PUT',
      path: /\/blobs\/uploads\//,
      status: 201,
    });
    t.is(uploads.length, pushed.blobs.length);
  });
}

for (const name of ['cache-manifest', 'cache-index']) {
  test(`pushFixture pushes ${name} with the cache layers and cacheconfig as blobs`, async (t) => {
    const registry = await startRegistry(t);
    const pushed = await pushFixture(registry, name, 'cache/app');
    t.deepEqual(pushed.manifests, [pushed.digest]);
    const simple = await readFile(fixturePath('cacheconfig/simple.json'));
    const config = JSON.parse(simple.toString('utf8')) as WireCacheConfig;
    t.deepEqual(
      [...pushed.blobs].sort(),
      [digestBytes(simple), ...config.layers.map((l) => l.blob)].sort(),
    );
    const raw = await skopeo([
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/cache/app:latest`,
    ]);
    t.is(digestBytes(raw), pushed.digest);
  });
}

test('skopeo reads the oci-image layout directly', async (t) => {
  const root = await fixtureRoot('oci-image', 'v1');
  const manifest = await json<ImageManifest>('oci-image', root.digest);
  const out = JSON.parse(await skopeo(['inspect', `oci:${fixturePath('oci-image')}:v1`])) as {
    Digest: string;
    Architecture: string;
    Os: string;
    Layers: string[];
  };
  t.is(out.Digest, root.digest);
  t.is(out.Architecture, 'amd64');
  t.is(out.Os, 'linux');
  t.deepEqual(
    out.Layers,
    manifest.layers.map((l) => l.digest),
  );
});
