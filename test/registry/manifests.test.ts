import test, { type ExecutionContext } from 'ava';
import { DigestMismatchError } from '../../src/digest/index.ts';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../src/oci/index.ts';
import type { RegistryClientOptions } from '../../src/registry/client.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import {
  ALICE_PASSWORD,
  clientFor,
  imageParts,
  registriesPerAuth,
  withClient,
} from './_support.ts';

/** One registry per auth mode for every test here; each test has a repository of its own. */
const registries = registriesPerAuth(test);

for (const auth of ['none', 'basic', 'token'] as const) {
  test(`manifest round trip by tag and digest with ${auth} auth`, async (t) => {
    const { registry, client } = withClient(t, await registries[auth]());
    const repo = client.repository(registry.host, 'round/trip');
    const { manifest, digest } = await imageParts(client, registry.host, 'round/trip', auth);

    const put = await repo.putManifest('v1', manifest, OCI_MANIFEST);
    t.is(put.digest, digest);

    const byTag = await repo.getManifest('v1');
    t.deepEqual(byTag.descriptor, { mediaType: OCI_MANIFEST, digest, size: manifest.length });
    t.true(byTag.bytes.equals(manifest));
    const byDigest = await repo.getManifest(digest);
    t.true(byDigest.bytes.equals(manifest));

    t.deepEqual(await repo.headManifest('v1'), {
      mediaType: OCI_MANIFEST,
      digest,
      size: manifest.length,
    });
    t.is(await repo.headManifest('missing'), undefined);

    await repo.deleteManifest(digest);
    t.is(await repo.headManifest(digest), undefined);
    const err = await t.throwsAsync(repo.getManifest(digest), { instanceOf: RegistryError });
    t.is(err?.code, 'MANIFEST_UNKNOWN');
    t.is(err?.status, 404);
  });
}

let proxiedImage: ReturnType<typeof imageParts> | undefined;

/** The image `m/app:v1` in the basic-auth registry, pushed by the first test that asks. */
function pushProxiedImage(t: ExecutionContext): ReturnType<typeof imageParts> {
  proxiedImage ??= (async () => {
    const { registry, client } = withClient(t, await registries.basic());
    const image = await imageParts(client, registry.host, 'm/app', 'proxied');
    await client.repository(registry.host, 'm/app').putManifest('v1', image.manifest, OCI_MANIFEST);
    return image;
  })();
  return proxiedImage;
}

/** `m/app:v1` read through a fault proxy of the test's own. */
async function proxied(t: ExecutionContext, options: RegistryClientOptions = {}) {
  const image = await pushProxiedImage(t);
  const registry = await registries.basic();
  const proxy = await startFaultProxy(t, registry.url, []);
  const client = clientFor(
    t,
    proxy.host,
    { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
    options,
  );
  const repo = client.repository(proxy.host, 'm/app');
  return { registry, proxy, repo, image };
}

test('manifest reads send all four manifest types in Accept', async (t) => {
  const { proxy, repo } = await proxied(t);
  await repo.getManifest('v1');
  const get = proxy.forwarded.findLast(
    (r) => r.method === 'GET' && r.path.endsWith('/manifests/v1'),
  );
  t.deepEqual(String(get?.headers.accept).split(', '), [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
  ]);
});

test('a corrupted manifest is refused by tag and by digest', async (t) => {
  const { proxy, repo, image } = await proxied(t);
  proxy.rules.push({ method: 'GET', path: /\/manifests\//, action: { flipByteAt: 20 } });
  for (const reference of ['v1', image.digest]) {
    const err = await t.throwsAsync(repo.getManifest(reference), {
      instanceOf: DigestMismatchError,
    });
    t.is(err?.expected, image.digest);
  }
});

test('a manifest over the size cap is refused without being read whole', async (t) => {
  const { repo, image } = await proxied(t, { manifestSizeLimit: 64 });
  const err = await t.throwsAsync(repo.getManifest('v1'), { instanceOf: RegistryError });
  t.is(err?.code, 'SIZE_EXCEEDED');
  t.regex(err?.message ?? '', new RegExp(`${image.manifest.length} bytes, over the limit of 64`));
});

test('a Content-Type that contradicts the manifest mediaType is refused', async (t) => {
  const { proxy, repo, image } = await proxied(t);
  proxy.rules.push({
    method: 'GET',
    path: /\/manifests\/v1$/,
    action: {
      status: 200,
      headers: { 'content-type': DOCKER_MANIFEST },
      body: image.manifest.toString(),
    },
  });
  const err = await t.throwsAsync(repo.getManifest('v1'), { instanceOf: RegistryError });
  t.is(err?.code, 'MEDIA_TYPE_MISMATCH');
});

test('a HEAD without Docker-Content-Digest falls back to a GET', async (t) => {
  const { proxy, repo, image } = await proxied(t);
  proxy.rules.push({
    method: 'HEAD',
    path: /\/manifests\/v1$/,
    action: { status: 200, headers: { 'content-type': OCI_MANIFEST } },
  });
  t.deepEqual(await repo.headManifest('v1'), {
    mediaType: OCI_MANIFEST,
    digest: image.digest,
    size: image.manifest.length,
  });
  t.true(proxy.forwarded.some((r) => r.method === 'GET' && r.path.endsWith('/manifests/v1')));
});

test('extra tags go up with the digest PUT, one PUT each where the registry ignores ?tag=', async (t) => {
  const { registry, client } = withClient(t, await registries.token(t));
  const repo = client.repository(registry.host, 'm/tags');
  const image = await imageParts(client, registry.host, 'm/tags', 'tags');
  const mark = await registry.mark();
  t.deepEqual(
    await repo.putManifest(image.digest, image.manifest, OCI_MANIFEST, { tags: ['a', 'b'] }),
    {
      digest: image.digest,
    },
  );
  const puts = await registry.requests({ method: 'PUT', path: /\/manifests\//, since: mark });
  t.deepEqual(
    puts.map((p) => [p.path.replace(/^.*\/manifests\//, ''), p.query]),
    [
      [image.digest, 'tag=a&tag=b'],
      ['a', ''],
      ['b', ''],
    ],
  );
  for (const tag of ['a', 'b']) t.is((await repo.headManifest(tag))?.digest, image.digest);
});

test('a manifest pushed as another media type than it declares is refused before sending', async (t) => {
  const { registry, client } = withClient(t, await registries.none(t));
  const repo = client.repository(registry.host, 'm/mt');
  const image = await imageParts(client, registry.host, 'm/mt', 'mt');
  const err = await t.throwsAsync(repo.putManifest('v1', image.manifest, DOCKER_MANIFEST), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'MEDIA_TYPE_MISMATCH');
  const wrongDigest = `sha256:${'f'.repeat(64)}`;
  await t.throwsAsync(repo.putManifest(wrongDigest, image.manifest, OCI_MANIFEST), {
    instanceOf: DigestMismatchError,
  });
  t.is((await registry.requests({ method: 'PUT', path: /\/manifests\// })).length, 0);
});

test('an index round trips with its media type', async (t) => {
  const { registry, client } = withClient(t, await registries.basic());
  const repo = client.repository(registry.host, 'm/index');
  const image = await imageParts(client, registry.host, 'm/index', 'index');
  await repo.putManifest(image.digest, image.manifest, OCI_MANIFEST);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: image.digest,
          size: image.manifest.length,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    }),
  );
  const { digest } = await repo.putManifest('multi', index, OCI_INDEX);
  const fetched = await repo.getManifest('multi');
  t.is(fetched.descriptor.mediaType, OCI_INDEX);
  t.is(fetched.descriptor.digest, digest);
  t.true(fetched.bytes.equals(index));
});
