import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { buildIndex, type CopyEvent, copy, copyToMany } from '../../src/copy/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import {
  DOCKER_MANIFEST_LIST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
} from '../../src/oci/index.ts';
import { CredentialStore, RegistryClient } from '../../src/registry/index.ts';
import { BlobLocations } from '../../src/remote/blob-locations.ts';
import { type Provider, remoteFromBytes } from '../../src/remote/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import {
  type SharedRegistry,
  sharedRegistry,
  startRegistry,
  type WatchedRegistry,
} from '../helpers/registry.ts';

const run = promisify(execFile);
const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;
const UPLOAD_PUT = /\/blobs\/uploads\/.+/;
const BLOB_PATH = /\/blobs\//;
/** The registry of every test but the one that needs token auth; each test has repositories of its own. */
const shared = sharedRegistry(test);

/** Mount POSTs (the mount is in the query string) seen since `mark`. */
async function mounts(registry: WatchedRegistry, since: number, status?: number) {
  const posts = await registry.requests({ method: 'POST', path: /\/blobs\/uploads\/$/, since });
  return posts.filter(
    (p) => p.query.includes('mount=') && (status === undefined || p.status === status),
  );
}

function client(t: ExecutionContext, registry?: SharedRegistry, user = 'alice'): RegistryClient {
  const explicit =
    registry && registry.auth !== 'none'
      ? {
          [registry.host]: {
            kind: 'basic' as const,
            username: user,
            password: registry.users[user]?.password ?? '',
          },
        }
      : {};
  const c = new RegistryClient({
    credentials: new CredentialStore({ explicit, env: {} }),
    retry: { baseDelayMs: 5 },
  });
  t.teardown(() => c.close());
  return c;
}

async function skopeoDigest(ref: string): Promise<string> {
  const { stdout } = await run('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--raw',
    `docker://${ref}`,
  ]);
  const { createHash } = await import('node:crypto');
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-copy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('same-registry copy of 40 layers mounts every blob and reads none', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'layers-40', 'mount40/src');
  const c = client(t);
  const source = await resolve(`${registry.host}/mount40/src:v1`, {
    client: c,
    blobLocations: new BlobLocations(),
  });
  const mark = await registry.mark();
  const result = await copy(source, `${registry.host}/mount40/dst:v1`, { client: c });

  t.deepEqual(result.blobs, {
    mounted: 41,
    skipped: 0,
    uploaded: 0,
    bytesUploaded: 0,
    bytesDownloaded: 0,
  });
  t.deepEqual(await registry.requests({ method: 'GET', path: BLOB_GET, since: mark }), []);
  t.is((await mounts(registry, mark, 201)).length, 41);
  // Mount first: no HEAD per blob before its mount.
  t.deepEqual(await registry.requests({ method: 'HEAD', path: BLOB_PATH, since: mark }), []);
  t.deepEqual(await registry.requests({ method: 'PUT', path: UPLOAD_PUT, since: mark }), []);
  t.is(result.digest, pushed.digest);
  t.is(await skopeoDigest(`${registry.host}/mount40/dst:v1`), pushed.digest);
});

test('a second copy to the same repository skips every blob', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'oci-image', 'skip/src');
  const c = client(t);
  const source = await resolve(`${registry.host}/skip/src:v1`, {
    client: c,
    blobLocations: new BlobLocations(),
  });
  await copy(source, `${registry.host}/skip/dst:v1`, { client: c });
  const mark = await registry.mark();
  const events: CopyEvent[] = [];
  const again = await copy(source, `${registry.host}/skip/dst:v2`, {
    client: c,
    onEvent: (event) => events.push(event),
  });
  t.is(again.blobs.skipped, 4);
  t.is(again.blobs.mounted + again.blobs.uploaded, 0);
  t.is(events.filter((event) => event.type === 'blob-skipped').length, 4);
  // The manifest found there stands for its blobs: one HEAD, no request per blob.
  t.deepEqual(await registry.requests({ path: BLOB_PATH, since: mark }), []);
  const heads = await registry.requests({ method: 'HEAD', since: mark });
  t.deepEqual(
    heads.map((request) => request.path),
    [`/v2/skip/dst/manifests/${again.digest}`],
  );
});

test('a refused mount of a blob the target holds cancels its upload session and sends nothing', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'oci-image', 'held/src');
  const c = client(t);
  const destination = c.repository(registry.host, 'held/dst');
  // The target holds every blob, but not the manifest (so the copy asks blob by blob).
  for (const digest of pushed.blobs) {
    t.true((await destination.mountBlob(digest, 'held/src')).mounted);
  }
  // A wrong belief: the blobs are said to be in a repository that does not have them.
  const blobLocations = new BlobLocations();
  for (const digest of pushed.blobs) blobLocations.add(digest, registry.host, 'held/gone');
  const source = await resolve('oci:fixtures/data/oci-image:v1', { client: c, blobLocations });
  const mark = await registry.mark();
  const result = await copy(source, `${registry.host}/held/dst:v1`, { client: c, blobLocations });

  t.like(result.blobs, { skipped: pushed.blobs.length, mounted: 0, uploaded: 0 });
  t.is((await mounts(registry, mark, 202)).length, pushed.blobs.length);
  const cancelled = await registry.requests({ method: 'DELETE', path: UPLOAD_PUT, since: mark });
  t.is(cancelled.length, pushed.blobs.length);
  t.deepEqual(await registry.requests({ method: 'PUT', path: UPLOAD_PUT, since: mark }), []);
  t.is(await skopeoDigest(`${registry.host}/held/dst:v1`), pushed.digest);
});

test('a refused mount of a missing blob uploads into the session the mount opened', async (t) => {
  const registry = await shared(t);
  const pushed = await pushFixture(registry, 'oci-image', 'missing/src');
  const c = client(t);
  const blobLocations = new BlobLocations();
  for (const digest of pushed.blobs) blobLocations.add(digest, registry.host, 'missing/gone');
  const source = await resolve('oci:fixtures/data/oci-image:v1', { client: c, blobLocations });
  const mark = await registry.mark();
  const result = await copy(source, `${registry.host}/missing/dst:v1`, {
    client: c,
    blobLocations,
  });

  t.like(result.blobs, { skipped: 0, mounted: 0, uploaded: pushed.blobs.length });
  const posts = await registry.requests({
    method: 'POST',
    path: /\/blobs\/uploads\/$/,
    since: mark,
  });
  t.is(posts.length, pushed.blobs.length);
  t.true(posts.every((post) => post.query.includes('mount=') && post.status === 202));
  const puts = await registry.requests({ method: 'PUT', path: UPLOAD_PUT, since: mark });
  t.is(puts.filter((put) => put.status === 201).length, pushed.blobs.length);
  t.is(await skopeoDigest(`${registry.host}/missing/dst:v1`), pushed.digest);
});

test('cross-registry copy of a two-platform index uploads the shared layer once', async (t) => {
  const from = await shared(t);
  const to = await shared(t);
  const pushed = await pushFixture(from, 'multi-platform', 'cross/multi');
  const c = client(t);
  const source = await resolve(`${from.host}/cross/multi:v1`, {
    client: c,
    blobLocations: new BlobLocations(),
  });
  const events: CopyEvent[] = [];
  const mark = await to.mark();
  const result = await copy(source, `${to.host}/cross/mirror:v1`, {
    client: c,
    onEvent: (e) => events.push(e),
  });
  t.is(result.digest, pushed.digest);
  t.is(result.mediaType, OCI_INDEX);
  // 2 configs + 2 own layers + 1 shared layer
  t.is(result.blobs.uploaded, 5);
  const uploads = await to.requests({ method: 'PUT', path: UPLOAD_PUT, since: mark });
  const digests = uploads.map((u) => decodeURIComponent(u.query).match(/digest=([^&]+)/)?.[1]);
  t.is(new Set(digests).size, digests.length, 'no blob uploaded twice');
  t.is(await skopeoDigest(`${to.host}/cross/mirror:v1`), pushed.digest);
  t.true(events.some((e) => e.type === 'manifest-pushed' && e.tag === 'v1'));
  t.is(events.at(-1)?.type, 'manifest-pushed', 'the tag comes last');
});

test('a destination without a tag copies by digest and creates no tag', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'oci-image', 'untagged/src');
  const c = client(t);
  const source = await resolve(`${registry.host}/untagged/src:v1`, { client: c });
  const result = await copy(source, `${registry.host}/untagged/dst`, { client: c });
  t.deepEqual(result.tags, []);
  // distribution answers NAME_UNKNOWN for the tag list of a repository that has no tag
  const listing = (async () => {
    for await (const tag of c.repository(registry.host, 'untagged/dst').listTags()) return tag;
  })();
  await t.throwsAsync(listing, { code: 'NAME_UNKNOWN' });
  t.is(await skopeoDigest(`${registry.host}/untagged/dst@${pushed.digest}`), pushed.digest);
});

test('several tags are created at once', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'tags/src');
  const c = client(t);
  const source = await resolve(`${registry.host}/tags/src:v1`, { client: c });
  await copy(source, `${registry.host}/tags/dst:a`, { client: c, tags: ['b', 'c'] });
  const tags = [];
  for await (const tag of c.repository(registry.host, 'tags/dst').listTags()) tags.push(tag);
  t.deepEqual(tags.sort(), ['a', 'b', 'c']);
});

test('copies between a layout and a registry in both directions keep the digest', async (t) => {
  const registry = await shared();
  const c = client(t);
  const fromLayout = await resolve('oci:fixtures/data/multi-platform:v1');
  const up = await copy(fromLayout, `${registry.host}/both-ways/img:v1`, { client: c });
  t.is(up.digest, fromLayout.digest);
  const back = await resolve(`${registry.host}/both-ways/img:v1`, { client: c });
  const dir = await tempDir(t);
  const down = await copy(back, `oci:${dir}:copied`, { client: c });
  t.is(down.digest, fromLayout.digest);
  const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${dir}:copied`]);
  t.is(JSON.parse(stdout).manifests.length, 2);
  const store = await LayoutStore.open(dir, { create: false });
  t.is((await store.resolveTag('copied'))?.digest, fromLayout.digest);
});

test('--platform style: one image of an index is copied alone', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'multi-platform', 'platform/multi');
  const c = client(t);
  const arm = await resolve(`${registry.host}/platform/multi:v1`, {
    client: c,
    platform: 'linux/arm64',
  });
  const result = await copy(arm, `${registry.host}/platform/arm:v1`, { client: c });
  t.is(result.mediaType, OCI_MANIFEST);
  t.is(result.digest, arm.digest);
});

test('oci-mediatypes converts a Docker image, still mounting its blobs', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'docker-image', 'convert/docker');
  const c = client(t);
  const source = await resolve(`${registry.host}/convert/docker:v1`, {
    client: c,
    blobLocations: new BlobLocations(),
  });
  const result = await copy(source, `${registry.host}/convert/oci:v1`, {
    client: c,
    ociMediatypes: true,
  });
  t.not(result.digest, pushed.digest);
  t.is(result.converted.get(pushed.digest), result.digest);
  t.is(result.blobs.mounted, 3);
  const { stdout } = await run('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--raw',
    `docker://${registry.host}/convert/oci:v1`,
  ]);
  const manifest = JSON.parse(stdout);
  t.is(manifest.mediaType, OCI_MANIFEST);
  t.is(manifest.config.mediaType, OCI_CONFIG);
  t.true(
    manifest.layers.every((l: { mediaType: string }) =>
      l.mediaType.startsWith('application/vnd.oci.image.layer'),
    ),
  );
});

test('index create from two Docker images in other repos: no layer GETs, a Docker list skopeo reads', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'docker-image', 'index/amd64');
  await pushFixture(registry, 'docker-image-arm64', 'index/arm64');
  const c = client(t);
  const blobLocations = new BlobLocations();
  const amd = await resolve(`${registry.host}/index/amd64:v1`, { client: c, blobLocations });
  const arm = await resolve(`${registry.host}/index/arm64:v1`, { client: c, blobLocations });
  const mark = await registry.mark();
  const result = await buildIndex(`${registry.host}/index/multi:v1`, [amd, arm], { client: c });
  t.is(result.mediaType, DOCKER_MANIFEST_LIST);
  const layerDigests = [amd, arm].flatMap((r) =>
    r.kind === 'image' ? r.layers.map((l) => l.digest) : [],
  );
  const gets = await registry.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.false(
    gets.some((g) => layerDigests.some((d) => g.path.endsWith(d))),
    'no layer read',
  );
  t.is(result.blobs.mounted, 6);
  const { stdout } = await run('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--raw',
    `docker://${registry.host}/index/multi:v1`,
  ]);
  const list = JSON.parse(stdout);
  t.is(list.mediaType, DOCKER_MANIFEST_LIST);
  t.deepEqual(
    list.manifests
      .map((m: { platform: { architecture: string } }) => m.platform.architecture)
      .sort(),
    ['amd64', 'arm64'],
  );
  await run('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--override-arch',
    'arm64',
    `docker://${registry.host}/index/multi:v1`,
  ]);

  const oci = await buildIndex(`${registry.host}/index/multi-oci:v1`, [amd, arm], {
    client: c,
    ociMediatypes: true,
    annotations: { 'org.opencontainers.image.source': 'https://example.test/repo' },
  });
  t.is(oci.mediaType, OCI_INDEX);
  const ociList = JSON.parse(
    (
      await run('skopeo', [
        'inspect',
        '--tls-verify=false',
        '--raw',
        `docker://${registry.host}/index/multi-oci:v1`,
      ])
    ).stdout,
  );
  t.is(ociList.annotations['org.opencontainers.image.source'], 'https://example.test/repo');
  t.true(ociList.manifests.every((m: { mediaType: string }) => m.mediaType === OCI_MANIFEST));
});

test('index create refuses duplicate platforms unless asked', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'docker-image', 'dup-index/one');
  await pushFixture(registry, 'oci-image', 'dup-index/two');
  const c = client(t);
  const one = await resolve(`${registry.host}/dup-index/one:v1`, { client: c });
  const two = await resolve(`${registry.host}/dup-index/two:v1`, { client: c });
  await t.throwsAsync(buildIndex(`${registry.host}/dup-index/dup:v1`, [one, two], { client: c }), {
    code: 'INDEX_INVALID',
    message: /linux\/amd64/,
  });
  const ok = await buildIndex(`${registry.host}/dup-index/dup:v1`, [one, two], {
    client: c,
    allowDuplicatePlatforms: true,
  });
  t.is(ok.mediaType, OCI_INDEX);
});

test('a mount the token does not allow falls back to an upload', async (t) => {
  const registry = await startRegistry(t, {
    auth: 'token',
    users: {
      admin: { password: 'admin-pw', grants: [{ repository: '*', actions: ['*'] }] },
      alice: { password: 'alice-pw', grants: [{ repository: 'b/*', actions: ['pull', 'push'] }] },
    },
  });
  const pushed = await pushFixture(registry, 'oci-image', 'a/src', { user: 'admin' });
  const source = await resolve('oci:fixtures/data/oci-image:v1');
  const blobLocations = new BlobLocations();
  for (const digest of pushed.blobs) blobLocations.add(digest, registry.host, 'a/src');
  const mark = await registry.mark();
  const result = await copy(source, `${registry.host}/b/dst:v1`, {
    client: client(t, registry),
    blobLocations,
  });
  t.is(result.blobs.mounted, 0);
  t.is(result.blobs.uploaded, 4);
  const refused = await mounts(registry, mark);
  t.true(
    refused.length >= 1 && refused.every((m) => m.status === 401),
    'mounts were refused by the registry',
  );
  t.true(registry.tokenRequests.some((r) => r.scopes.includes('repository:a/src:pull')));
  const { stdout } = await run('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--creds',
    'admin:admin-pw',
    '--raw',
    `docker://${registry.host}/b/dst:v1`,
  ]);
  t.is(JSON.parse(stdout).layers.length, 3);
});

test('503s and resets during the upload still end in a complete, verified copy', async (t) => {
  const from = await shared(t);
  const to = await shared(t);
  const pushed = await pushFixture(from, 'oci-image', 'resets/src');
  const proxy = await startFaultProxy(t, to.url, [
    { method: 'PUT', path: /\/blobs\/uploads\//, times: 2, action: { status: 503 } },
    { method: 'HEAD', path: /\/blobs\//, times: 2, action: { status: 503 } },
  ]);
  const sourceProxy = await startFaultProxy(t, from.url, [
    { method: 'GET', path: BLOB_GET, times: 2, action: { resetAfterBytes: 100 } },
  ]);
  const c = client(t);
  const source = await resolve(`${sourceProxy.host}/resets/src:v1`, { client: c });
  const result = await copy(source, `${proxy.host}/resets/dst:v1`, { client: c });
  t.is(result.digest, pushed.digest);
  t.is(await skopeoDigest(`${to.host}/resets/dst:v1`), pushed.digest);
});

test('a corrupted source byte fails the copy and leaves no manifest on the target', async (t) => {
  const from = await shared(t);
  const to = await shared(t);
  await pushFixture(from, 'oci-image', 'corrupt/src');
  const image = await resolve(`${from.host}/corrupt/src:v1`, { client: client(t) });
  if (image.kind !== 'image') return t.fail('expected an image');
  const layer = image.layers[0]!;
  const proxy = await startFaultProxy(t, from.url, [
    { method: 'GET', path: new RegExp(`/blobs/${layer.digest}$`), action: { flipByteAt: 5 } },
  ]);
  const c = client(t);
  const source = await resolve(`${proxy.host}/corrupt/src:v1`, { client: c });
  await t.throwsAsync(copy(source, `${to.host}/corrupt/dst:v1`, { client: c }), {
    code: 'DIGEST_MISMATCH',
  });
  t.is(await c.repository(to.host, 'corrupt/dst').headManifest('v1'), undefined);
  t.is(await c.repository(to.host, 'corrupt/dst').headBlob(layer.digest), undefined);
});

test('a provider that does not verify its reads has its bytes verified before a layout keeps them', async (t) => {
  const from = await shared();
  await pushFixture(from, 'oci-image', 'lying/src');
  const image = await resolve(`${from.host}/lying/src:v1`, { client: client(t) });
  if (image.kind !== 'image') return t.fail('expected an image');
  const layer = image.layers[0]!;
  // Serves every blob right but one layer, whose first byte it flips; verifies nothing itself.
  const lying: Provider = {
    description: 'a provider that does not verify',
    info: (digest) => image.context.provider.info(digest),
    fetch: async (descriptor) => {
      const bytes = await buffer(await image.context.provider.fetch(descriptor));
      if (descriptor.digest === layer.digest) bytes[0] = (bytes[0] ?? 0) ^ 0xff;
      return Readable.from([bytes]);
    },
  };
  const source = remoteFromBytes(image.descriptor, image.bytes, {
    ...image.context,
    provider: lying,
  });
  const dir = await tempDir(t);
  await t.throwsAsync(copy(source, `oci:${dir}:v1`, { client: client(t) }), {
    code: 'DIGEST_MISMATCH',
  });
  const store = await LayoutStore.open(dir, { create: false });
  t.false(await store.has(layer.digest));
  t.deepEqual(await store.tags(), []);
});

/** Push an image with one random layer of `size` bytes as `repo:v1`; returns its blob digests. */
async function pushLargeImage(
  c: RegistryClient,
  registry: SharedRegistry,
  repo: string,
  size: number,
): Promise<string[]> {
  const repository = c.repository(registry.host, repo);
  const layerBytes = randomBytes(size);
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const layer = { mediaType: OCI_LAYER, digest: digestBytes(layerBytes), size };
  const config = {
    mediaType: OCI_CONFIG,
    digest: digestBytes(configBytes),
    size: configBytes.length,
  };
  await repository.uploadBlob(layer, () => Readable.from([layerBytes]));
  await repository.uploadBlob(config, () => Readable.from([configBytes]));
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] };
  await repository.putManifest('v1', Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
  return [config.digest, layer.digest];
}

test('copyToMany streams a large layer into two registries and a layout from one read', async (t) => {
  const [from, b, c] = await Promise.all([shared(t), shared(t), shared(t)]);
  const cl = client(t);
  const size = 8 * 1024 * 1024;
  const blobs = await pushLargeImage(cl, from, 'big/src', size);
  const source = await resolve(`${from.host}/big/src:v1`, {
    client: cl,
    blobLocations: new BlobLocations(),
  });
  const dir = await tempDir(t);
  const events: CopyEvent[] = [];
  const mark = await from.mark();
  const many = await copyToMany(
    source,
    [`${b.host}/big/b:v1`, `${c.host}/big/c:v1`, `oci:${dir}:v1`],
    { client: cl, onEvent: (e) => events.push(e) },
  );

  const gets = await from.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.deepEqual(gets.map((g) => g.path.split('/').pop()).sort(), [...blobs].sort());
  t.deepEqual(
    many.destinations.map(
      (d) => d.status === 'copied' && [d.result.digest, d.result.blobs.uploaded],
    ),
    [
      [source.digest, 2],
      [source.digest, 2],
      [source.digest, 2],
    ],
  );
  t.is(
    many.blobs.bytesDownloaded,
    size + (source.kind === 'image' ? source.manifest.config.size : 0),
  );
  t.is(many.blobs.bytesUploaded, 3 * many.blobs.bytesDownloaded);
  for (const reference of [`${b.host}/big/b:v1`, `${c.host}/big/c:v1`]) {
    t.is(await skopeoDigest(reference), source.digest);
  }
  const store = await LayoutStore.open(dir, { create: false });
  t.is((await store.resolveTag('v1'))?.digest, source.digest);
  // Progress is per destination: each saw the whole layer go through.
  const progress = events.filter((e) => e.type === 'blob-progress' && e.digest === blobs[1]);
  for (const target of [`${b.host}/big/b`, `${c.host}/big/c`, `oci:${dir}`]) {
    const last = progress.filter((e) => e.target === target).at(-1);
    t.is(last?.type === 'blob-progress' && last.bytes, size, target);
  }
});

test('copyToMany on one registry: the first repository uploads, another mounts from it, another tag of it skips', async (t) => {
  const [from, to] = await Promise.all([shared(t), shared(t)]);
  const pushed = await pushFixture(from, 'oci-image', 'one-host/src');
  const c = client(t);
  const source = await resolve(`${from.host}/one-host/src:v1`, {
    client: c,
    blobLocations: new BlobLocations(),
  });
  const [markFrom, markTo] = await Promise.all([from.mark(), to.mark()]);
  const many = await copyToMany(
    source,
    [`${to.host}/one-host/one:v1`, `${to.host}/one-host/two:v1`, `${to.host}/one-host/one:v2`],
    { client: c },
  );

  t.deepEqual(
    many.destinations.map(
      (d) =>
        d.status === 'copied' && [
          d.result.blobs.uploaded,
          d.result.blobs.mounted,
          d.result.blobs.skipped,
        ],
    ),
    [
      [4, 0, 0],
      [0, 4, 0],
      [0, 0, 4],
    ],
  );
  t.is((await from.requests({ method: 'GET', path: BLOB_GET, since: markFrom })).length, 4);
  const uploads = await to.requests({ method: 'PUT', path: UPLOAD_PUT, since: markTo });
  t.is(uploads.length, 4);
  const mounted = await mounts(to, markTo, 201);
  t.deepEqual(
    mounted.map((m) => new URLSearchParams(m.query).get('from')),
    pushed.blobs.map(() => 'one-host/one'),
  );
});

test('copyToMany: a destination with a remote of its own shares the blobs it has in common', async (t) => {
  const [from, b, c] = await Promise.all([shared(t), shared(t), shared(t)]);
  const pushed = await pushFixture(from, 'multi-platform', 'own-remote/src');
  const cl = client(t);
  const index = await resolve(`${from.host}/own-remote/src:v1`, {
    client: cl,
    blobLocations: new BlobLocations(),
  });
  if (index.kind !== 'index') return t.fail('expected an index');
  const [arm] = (await index.images()).filter(
    (image) => image.descriptor.platform?.architecture === 'arm64',
  );
  if (!arm) return t.fail('expected an arm64 image');
  const mark = await from.mark();
  const many = await copyToMany(
    index,
    [`${b.host}/own-remote/multi:v1`, { reference: `${c.host}/own-remote/arm:v1`, source: arm }],
    { client: cl },
  );

  const gets = await from.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.deepEqual(gets.map((g) => g.path.split('/').pop()).sort(), [...pushed.blobs].sort());
  t.deepEqual(
    many.destinations.map(
      (d) => d.status === 'copied' && [d.result.digest, d.result.blobs.uploaded],
    ),
    [
      [pushed.digest, pushed.blobs.length],
      [arm.digest, arm.blobs().length],
    ],
  );
});

test('copyToMany: a source tree that cannot be listed shares no reads, and the copy says so', async (t) => {
  const [from, b, c] = await Promise.all([shared(t), shared(t), shared(t)]);
  const pushed = await pushFixture(from, 'multi-platform', 'unlisted/src');
  const child = pushed.manifests[0] ?? '';
  // The first read of one child manifest fails: that is the walk planning the shared reads.
  const once = {
    method: 'GET',
    path: new RegExp(`/manifests/${child}$`),
    times: 1,
    action: { status: 400 },
  };
  const proxy = await startFaultProxy(t, from.url, [once]);
  const cl = client(t);
  const image = await resolve(`${from.host}/unlisted/src@${child}`, {
    client: cl,
    blobLocations: new BlobLocations(),
  });
  const index = await resolve(`${proxy.host}/unlisted/src:v1`, {
    client: cl,
    blobLocations: new BlobLocations(),
  });
  const warnings: string[] = [];
  const many = await copyToMany(
    image,
    [`${b.host}/unlisted/one:v1`, { reference: `${c.host}/unlisted/mirror:v1`, source: index }],
    { client: cl, onWarning: (warning) => warnings.push(warning) },
  );

  t.is(proxy.hits(once), 1);
  t.deepEqual(
    many.destinations.map((d) => d.status === 'copied' && d.result.digest),
    [child, pushed.digest],
  );
  t.is(warnings.length, 1);
  t.regex(warnings[0] ?? '', /^the blobs of .+\/unlisted\/src:v1 could not be listed \(.*400/);
  t.deepEqual(many.warnings, warnings);
});

test('copyToMany: a destination that refuses uploads fails alone, the others complete', async (t) => {
  const [from, b, c] = await Promise.all([shared(t), shared(t), shared(t)]);
  await pushFixture(from, 'oci-image', 'refuse/src');
  const denied = { method: 'PUT', path: UPLOAD_PUT, action: { status: 403 } };
  const proxy = await startFaultProxy(t, b.url, [denied]);
  const cl = client(t);
  const source = await resolve(`${from.host}/refuse/src:v1`, {
    client: cl,
    blobLocations: new BlobLocations(),
  });
  const mark = await from.mark();
  const many = await copyToMany(source, [`${proxy.host}/refuse/b:v1`, `${c.host}/refuse/c:v1`], {
    client: cl,
  });

  const [failed, copied] = many.destinations;
  t.like(failed, { status: 'failed', destination: `${proxy.host}/refuse/b:v1` });
  t.like(failed?.status === 'failed' ? failed.error : undefined, { code: 'DENIED' });
  t.like(copied, { status: 'copied', result: { digest: source.digest } });
  t.is(await skopeoDigest(`${c.host}/refuse/c:v1`), source.digest);
  t.is(await cl.repository(b.host, 'refuse/b').headManifest('v1'), undefined);
  // Nothing was read twice: the failed uploads took their share of the one read.
  t.is((await from.requests({ method: 'GET', path: BLOB_GET, since: mark })).length, 4);
  await t.throwsAsync(copy(source, `${proxy.host}/refuse/b:v1`, { client: cl }), {
    code: 'DENIED',
  });
});

test('a copy at a concurrency above the per-host request limit warns of no listener leak', async (t) => {
  const from = await shared(t);
  const to = await shared(t);
  await pushFixture(from, 'layers-40', 'limit/src');
  const c = client(t);
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const source = await resolve(`${from.host}/limit/src:v1`, {
    client: c,
    blobLocations: new BlobLocations(),
  });
  const controller = new AbortController();
  const result = await copy(source, `${to.host}/limit/dst:v1`, {
    client: c,
    concurrency: 32,
    signal: controller.signal,
  });
  t.is(result.blobs.uploaded, 41);
  // Warnings are emitted on the next tick.
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(
    warnings.map((warning) => warning.name),
    [],
  );
});
