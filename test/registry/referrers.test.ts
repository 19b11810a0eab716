import test from 'ava';
import {
  JsonInvalidError,
  ManifestInvalidError,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../src/oci/index.ts';
import { referrersTag } from '../../src/registry/referrers.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { startRegistry } from '../helpers/registry.ts';
import { clientFor, imageParts, registryWithClient } from './_support.ts';

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

test('a referrers list that is not a valid index fails with MANIFEST_INVALID, keeping the cause', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, []);
  const client = clientFor(t, proxy.host, undefined);
  const repo = client.repository(proxy.host, 'refs/bad');
  const subject = `sha256:${'c'.repeat(64)}`;
  const served = (body: string) => ({
    status: 200,
    headers: { 'content-type': OCI_INDEX },
    body,
  });
  // No referrers API (distribution 2.8): the fallback tag is read, and it is not JSON.
  const notJson = {
    method: 'GET',
    path: new RegExp(`/manifests/${referrersTag(subject)}$`),
    action: served('<html>oops</html>'),
    times: 1,
  };
  proxy.rules.push(notJson);
  const error = await t.throwsAsync(repo.referrers(subject), { instanceOf: ManifestInvalidError });
  t.is(error?.code, 'MANIFEST_INVALID');
  t.true(error?.cause instanceof JsonInvalidError);
  t.is(proxy.hits(notJson), 1);

  // A referrers API whose page lists an entry without a digest: refused, not quietly dropped.
  const noDigest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, size: 10 }],
  });
  const page = { method: 'GET', path: /\/referrers\//, action: served(noDigest) };
  proxy.rules.push(page);
  const refused = await t.throwsAsync(repo.referrers(subject), {
    instanceOf: ManifestInvalidError,
  });
  t.is(refused?.reason, 'manifests[0].digest is not a supported digest');
  t.is(proxy.hits(page), 1);
});
