import test from 'ava';
import { OCI_EMPTY, OCI_INDEX, OCI_MANIFEST } from '../../src/registry/oci.ts';
import { referrersTag } from '../../src/registry/referrers.ts';
import { imageParts, registryWithClient } from './_support.ts';

const SBOM = 'application/vnd.example.sbom';

test('referrers fall back to the sha256-<hex> tag where the registry has no referrers API', async (t) => {
  const { registry, client } = await registryWithClient(t, 'token');
  const repo = client.repository(registry.host, 'refs/app');
  const image = await imageParts(client, registry.host, 'refs/app', 'subject');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  t.deepEqual(await repo.referrers(image.digest), []);

  const artifact = await imageParts(client, registry.host, 'refs/app', 'sbom', {
    artifactType: SBOM,
    subject: { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length },
  });
  const pushed = await repo.putManifest(artifact.digest, artifact.manifest, OCI_MANIFEST);
  t.is(pushed.subject, undefined, 'distribution 2.8 does not index subjects');
  const entry = {
    mediaType: OCI_MANIFEST,
    digest: artifact.digest,
    size: artifact.manifest.length,
    artifactType: SBOM,
  };
  const fallback = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [entry] }),
  );
  await repo.putManifest(referrersTag(image.digest), fallback, OCI_INDEX);

  t.deepEqual(await repo.referrers(image.digest), [entry]);
  t.deepEqual(await repo.referrers(image.digest, { artifactType: SBOM }), [entry]);
  t.deepEqual(await repo.referrers(image.digest, { artifactType: OCI_EMPTY }), []);
  const api = await registry.requests({ method: 'GET', path: /\/referrers\/sha256:/ });
  t.true(api.length === 4 && api.every((r) => r.status === 404));
  const tagReads = await registry.requests({
    method: 'GET',
    path: new RegExp(`/manifests/${referrersTag(image.digest)}$`),
  });
  t.deepEqual(
    tagReads.map((r) => r.status),
    [404, 200, 200, 200],
  );
});

test('the referrers tag is the algorithm and hex joined by a dash', (t) => {
  const hex = 'a'.repeat(64);
  t.is(referrersTag(`sha256:${hex}`), `sha256-${hex}`);
  t.is(referrersTag(`sha512:${'b'.repeat(128)}`), `sha512-${'b'.repeat(64)}`);
});
