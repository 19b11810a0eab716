import test, { type ExecutionContext } from 'ava';
import { RegistryClient } from '../../src/registry/index.ts';
import type { RemoteImage } from '../../src/remote/remote-image.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { Hold, startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { everyCallerAborts, oneCallerAborts } from '../helpers/shared-work.ts';

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;
/** The registry of every test here; each test has a repository of its own. */
const shared = sharedRegistry(test);
let repositories = 0;

/** An image resolved through a proxy that holds every blob read (its config's first). */
async function heldConfig(t: ExecutionContext) {
  const registry = await shared(t);
  const repo = `held/config-${++repositories}`;
  await pushFixture(registry, 'oci-image', repo);
  const hold = new Hold();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: BLOB_GET, action: { hold } },
  ]);
  const client = new RegistryClient({ retry: { baseDelayMs: 10 } });
  t.teardown(() => client.close());
  const image = (await resolve(`${proxy.host}/${repo}:v1`, { client })) as RemoteImage;
  return { hold, image, registry };
}

test('a caller that aborts reading the config leaves the shared read to the others', async (t) => {
  const { hold, image, registry } = await heldConfig(t);
  const config = await oneCallerAborts(t, hold, (signal) => image.config({ signal }));
  t.is(config.architecture, 'amd64');
  const mark = await registry.mark();
  t.is(await image.config(), config, 'kept after the first read');
  t.deepEqual(await registry.requests({ since: mark }), []);
});

test('when every caller reading the config aborts, the read stops and its connection closes', async (t) => {
  const { hold, image } = await heldConfig(t);
  await everyCallerAborts(t, hold, (signal) => image.config({ signal }));
  hold.release();
  t.is((await image.config()).architecture, 'amd64', 'a later call reads it again');
});
