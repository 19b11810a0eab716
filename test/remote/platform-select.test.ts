import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { RegistryTarget } from '../../src/copy/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { OciferryError } from '../../src/errors.ts';
import { OCI_CONFIG, OCI_EMPTY, OCI_MANIFEST } from '../../src/oci/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { type SharedRegistry, sharedRegistry } from '../helpers/registry.ts';

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;

function client(t: ExecutionContext): RegistryClient {
  const c = new RegistryClient();
  t.teardown(() => c.close());
  return c;
}

/** Push a one-layer image whose config has media type `configType` and bytes `config`. */
async function pushImage(
  c: RegistryClient,
  registry: SharedRegistry,
  repo: string,
  configType: string,
  config: Buffer,
): Promise<void> {
  const target = new RegistryTarget(c.repository(registry.host, repo));
  const layer = Buffer.from('payload');
  for (const blob of [config, layer]) {
    await target.writeBlob(
      { mediaType: 'application/octet-stream', digest: digestBytes(blob), size: blob.length },
      async () => Readable.from([blob]),
    );
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: configType, digest: digestBytes(config), size: config.length },
      layers: [{ mediaType: 'text/plain', digest: digestBytes(layer), size: layer.length }],
    }),
  );
  await c.repository(registry.host, repo).putManifest('v1', manifest, OCI_MANIFEST);
}

test('RemoteIndex.select takes an os/arch string as resolve does', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'multi-platform', 'remoteindex-select-takes/multi');
  const index = await resolve(`${registry.host}/remoteindex-select-takes/multi:v1`, {
    client: client(t),
  });
  if (index.kind !== 'index') return t.fail('expected an index');
  const arm = await index.select('linux/arm64');
  t.is(arm.descriptor.platform?.architecture, 'arm64');
  const error = await t.throwsAsync(index.select('linux'));
  t.true(error instanceof OciferryError);
  t.is((error as OciferryError).code, 'PLATFORM_INVALID');
});

test('resolving a single-platform image with another platform is refused, naming its platform', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'oci-image', 'resolving-single-platform/single');
  const c = client(t);
  const mark = await registry.mark();
  const error = await t.throwsAsync(
    resolve(`${registry.host}/resolving-single-platform/single:v1`, {
      client: c,
      platform: 'linux/arm64',
    }),
  );
  t.is((error as OciferryError).code, 'PLATFORM_NOT_FOUND');
  t.is(
    error?.message,
    `${registry.host}/resolving-single-platform/single:v1 is a single-platform image for linux/amd64, not linux/arm64`,
  );
  const image = await resolve(`${registry.host}/resolving-single-platform/single:v1`, {
    client: c,
    platform: { os: 'linux', architecture: 'amd64' },
  });
  t.is(image.kind, 'image');
  const configGets = await registry.requests({ method: 'GET', path: BLOB_GET, since: mark });
  t.is(configGets.length, 2, 'one config GET per resolve, no layer');
});

test('an image whose platform is not stated passes --platform: artifacts and configs without os/architecture', async (t) => {
  const registry = await shared(t);
  const c = client(t);
  await pushImage(c, registry, 'image-whose-platform/artifact', OCI_EMPTY, Buffer.from('{}'));
  await pushImage(
    c,
    registry,
    'image-whose-platform/bare',
    OCI_CONFIG,
    Buffer.from('{"config":{}}'),
  );
  const mark = await registry.mark();
  const artifact = await resolve(`${registry.host}/image-whose-platform/artifact:v1`, {
    client: c,
    platform: 'linux/arm64',
  });
  t.is(artifact.kind, 'image');
  t.deepEqual(
    await registry.requests({ method: 'GET', path: BLOB_GET, since: mark }),
    [],
    'an artifact config says nothing about platforms: not fetched',
  );
  const bare = await resolve(`${registry.host}/image-whose-platform/bare:v1`, {
    client: c,
    platform: 'linux/arm64',
  });
  t.is(bare.kind, 'image');
});
