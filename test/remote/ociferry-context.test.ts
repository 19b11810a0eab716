import test from 'ava';
import { importCacheOf } from '../../src/cache/import-cache.ts';
import {
  ContextClosedError,
  defaultClient,
  defaultContext,
  OciferryContext,
  setDefaultContext,
} from '../../src/remote/ociferry-context.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

// The default context is process-wide state: the tests that touch it run one at a time.

test.serial(
  'closing the default client leaves the next call without a client working',
  async (t) => {
    const registry = await shared(t);
    const pushed = await pushFixture(registry, 'oci-image', 'closing-default-client/single');
    const ref = `${registry.host}/closing-default-client/single:v1`;
    t.is((await resolve(ref)).digest, pushed.digest);
    await defaultClient().close();
    t.is((await resolve(ref)).digest, pushed.digest, 'a fresh client replaced the closed one');
    await defaultContext().close();
    t.is((await resolve(ref)).digest, pushed.digest, 'a fresh default replaced the closed one');
    t.is(
      (await registry.requests({ method: 'GET', path: /\/manifests\/v1$/ })).length,
      3,
      'each resolve reached the registry',
    );
  },
);

test.serial('a replaced default context serves the calls given none', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'replaced-default-context/single');
  const context = new OciferryContext();
  t.teardown(() => context.close());
  const previous = defaultContext();
  setDefaultContext(context);
  t.teardown(() => setDefaultContext(previous));
  await resolve(`${registry.host}/replaced-default-context/single:v1`);
  t.true(context.client.requestCount > 0);
  t.true(context.blobLocations.size > 0);
  setDefaultContext(undefined);
  t.not(defaultContext(), context, 'without one, the next use makes a fresh default');
});

test('a context in the options supplies the client and the blob locations', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'context-options-supplies/single');
  const context = new OciferryContext();
  t.teardown(() => context.close());
  const image = await resolve(`${registry.host}/context-options-supplies/single:v1`, { context });
  t.is(image.context.blobLocations, context.blobLocations);
  t.not(context.blobLocations, defaultContext().blobLocations);
  t.deepEqual(
    [...context.blobLocations.locationsOf(image.digest)],
    [[registry.host, ['context-options-supplies/single']]],
  );
  t.true(context.client.requestCount > 0);
  t.is(importCacheOf(context), importCacheOf(context));
  t.not(importCacheOf(context), importCacheOf());
});

test('a closed context refuses further use', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'oci-image', 'closed-context-refuses/single');
  const context = new OciferryContext();
  const client = context.client;
  const mark = await registry.mark();
  await context.close();
  t.true(client.closed, 'the client it made is closed with it');
  await t.throwsAsync(resolve(`${registry.host}/closed-context-refuses/single:v1`, { context }), {
    instanceOf: ContextClosedError,
    code: 'CONTEXT_CLOSED',
  });
  t.throws(() => importCacheOf(context), { code: 'CONTEXT_CLOSED' });
  t.deepEqual(await registry.requests({ since: mark }), []);
});

test('a client given to a context stays open when the context closes', async (t) => {
  const { RegistryClient } = await import('../../src/registry/index.ts');
  const client = new RegistryClient();
  t.teardown(() => client.close());
  const context = new OciferryContext({ client });
  t.is(context.client, client);
  await context.close();
  t.false(client.closed);
});
