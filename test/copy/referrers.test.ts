import test from 'ava';
import { copy, RegistryTarget } from '../../src/copy/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { pushReferrer, SIGNATURE_TYPE } from '../helpers/referrers.ts';
import { sharedRegistry } from '../helpers/registry.ts';

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

test('referrers are copied along and indexed on a registry without the referrers API', async (t) => {
  // Two hosts (the registry and a view of it), repositories apart: as from one registry to another.
  const from = await shared();
  const to = await shared(t);
  const pushed = await pushFixture(from, 'oci-image', 'from/signed');
  const c = new RegistryClient();
  t.teardown(() => c.close());
  const source = c.repository(from.host, 'from/signed');
  const signature = await pushReferrer(new RegistryTarget(source), pushed);
  t.deepEqual(
    (await source.referrers(pushed.digest)).map((d) => [d.digest, d.artifactType]),
    [[signature, SIGNATURE_TYPE]],
    'the fallback tag index was written at the source',
  );

  const image = await resolve(`${from.host}/from/signed:v1`, { client: c });
  const without = await copy(image, `${to.host}/to/plain:v1`, { client: c });
  t.deepEqual(await c.repository(to.host, 'to/plain').referrers(without.digest), []);

  await copy(image, `${to.host}/to/mirror:v1`, { client: c, referrers: true });
  const target = c.repository(to.host, 'to/mirror');
  t.deepEqual(
    (await target.referrers(pushed.digest)).map((d) => d.digest),
    [signature],
  );
  t.truthy(await target.headManifest(signature));
});
