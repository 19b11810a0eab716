import test, { type ExecutionContext } from 'ava';
import { RegistryClient } from '../../src/registry/index.ts';
import type { RemoteIndex } from '../../src/remote/remote-index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { Hold, startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { everyCallerAborts, oneCallerAborts } from '../helpers/shared-work.ts';

/** The registry of every test here; each test has a repository of its own. */
const shared = sharedRegistry(test);
let repositories = 0;

/** An index resolved through a proxy that holds the read of its first child manifest. */
async function heldChild(t: ExecutionContext) {
  const registry = await shared(t);
  const repo = `held/child-${++repositories}`;
  await pushFixture(registry, 'multi-platform', repo);
  const proxy = await startFaultProxy(t, registry.url);
  const client = new RegistryClient({ retry: { baseDelayMs: 10 } });
  t.teardown(() => client.close());
  const index = (await resolve(`${proxy.host}/${repo}:v1`, { client })) as RemoteIndex;
  const child = index.manifests[0]!;
  const hold = new Hold();
  proxy.rules.push({
    method: 'GET',
    path: new RegExp(`/manifests/${child.digest}$`),
    action: { hold },
  });
  return { hold, index, child, registry };
}

test('a caller that aborts resolving a child leaves the shared read to the others', async (t) => {
  const { hold, index, child, registry } = await heldChild(t);
  const remote = await oneCallerAborts(t, hold, (signal) => index.child(child, { signal }));
  t.is(remote.digest, child.digest);
  const mark = await registry.mark();
  t.is(await index.child(child), remote, 'kept after the first read');
  t.deepEqual(await registry.requests({ since: mark }), []);
});

test('when every caller resolving a child aborts, the read stops and its connection closes', async (t) => {
  const { hold, index, child } = await heldChild(t);
  await everyCallerAborts(t, hold, (signal) => index.child(child, { signal }));
  hold.release();
  t.is((await index.child(child)).digest, child.digest, 'a later call reads it again');
});
