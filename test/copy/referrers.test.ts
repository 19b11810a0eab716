import test from 'ava';
import { copy, RegistryTarget } from '../../src/copy/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { pushReferrer, SIGNATURE_TYPE } from '../helpers/referrers.ts';
import { startRegistry } from '../helpers/registry.ts';

test('referrers are copied along and indexed on a registry without the referrers API', async (t) => {
  const from = await startRegistry(t);
  const to = await startRegistry(t);
  const pushed = await pushFixture(from, 'oci-image', 'app/signed');
  const c = new RegistryClient();
  t.teardown(() => c.close());
  const source = c.repository(from.host, 'app/signed');
  const signature = await pushReferrer(new RegistryTarget(source), pushed);
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
