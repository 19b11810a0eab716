import { Readable } from 'node:stream';
import test from 'ava';
import { digestBytes } from '../../src/digest/index.ts';
import { copy, RegistryTarget } from '../../src/push/index.ts';
import { OCI_EMPTY, OCI_MANIFEST, RegistryClient } from '../../src/registry/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { startRegistry } from '../helpers/registry.ts';

const SIGNATURE_TYPE = 'application/vnd.example.signature.v1';

/** Push a small signature artifact whose subject is `subject` and return its digest. */
async function pushSignature(target: RegistryTarget, subject: { digest: string; size: number }) {
  const config = Buffer.from('{}');
  const payload = Buffer.from('signed: ociferry test');
  for (const blob of [config, payload]) {
    await target.writeBlob(
      { mediaType: 'application/octet-stream', digest: digestBytes(blob), size: blob.length },
      async () => Readable.from([blob]),
    );
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SIGNATURE_TYPE,
      config: { mediaType: OCI_EMPTY, digest: digestBytes(config), size: config.length },
      layers: [{ mediaType: 'text/plain', digest: digestBytes(payload), size: payload.length }],
      subject: { mediaType: OCI_MANIFEST, ...subject },
    }),
  );
  const descriptor = {
    mediaType: OCI_MANIFEST,
    digest: digestBytes(manifest),
    size: manifest.length,
  };
  await target.putManifest(descriptor, manifest);
  return descriptor.digest;
}

test('referrers are copied along and indexed on a registry without the referrers API', async (t) => {
  const from = await startRegistry(t);
  const to = await startRegistry(t);
  const pushed = await pushFixture(from, 'oci-image', 'app/signed');
  const c = new RegistryClient();
  t.teardown(() => c.close());
  const source = c.repository(from.host, 'app/signed');
  const signature = await pushSignature(new RegistryTarget(source), pushed);
  t.deepEqual(
    (await source.referrers(pushed.digest)).map((d) => [d.digest, d.artifactType]),
    [[signature, SIGNATURE_TYPE]],
    'the fallback tag index was written at the source',
  );

  const image = await resolve(`${from.host}/app/signed:v1`, { client: c });
  const without = await copy(image, `${to.host}/app/plain:v1`, { client: c });
  t.deepEqual(await c.repository(to.host, 'app/plain').referrers(without.digest), []);

  await copy(image, `${to.host}/app/mirror:v1`, { client: c, referrers: true });
  const target = c.repository(to.host, 'app/mirror');
  t.deepEqual(
    (await target.referrers(pushed.digest)).map((d) => d.digest),
    [signature],
  );
  t.truthy(await target.headManifest(signature));
});
