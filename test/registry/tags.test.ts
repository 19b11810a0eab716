import test from 'ava';
import { OCI_MANIFEST } from '../../src/oci/index.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { clientFor, imageParts, registryWithClient, withClient } from './_support.ts';

/**
 * The registries of the tests that need none of their own: they read back repositories of their
 * own, or count what their proxies or views saw. The catalog test keeps its own: it lists them all.
 */
const shared = sharedRegistry(test);
const sharedBasic = sharedRegistry(test, { auth: 'basic' });
const sharedToken = sharedRegistry(test, { auth: 'token' });

for (const auth of ['none', 'token'] as const) {
  test(`tags list round trip (${auth} auth)`, async (t) => {
    const { registry, client } = withClient(t, await (auth === 'none' ? shared() : sharedToken()));
    const repo = client.repository(registry.host, 'tags/all');
    const { manifest } = await imageParts(client, registry.host, 'tags/all', 'tags');
    const tags = ['v1', 'v2', 'latest'];
    for (const tag of tags) await repo.putManifest(tag, manifest, OCI_MANIFEST);
    const listed: string[] = [];
    for await (const tag of repo.listTags()) listed.push(tag);
    t.deepEqual(listed.sort(), tags.sort());
  });
}

test('tag pages are followed through Link headers resolved against the request URL', async (t) => {
  // distribution 2.8 ignores `n` for tags, so the proxy plays a registry that pages (as 3.x does).
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, []);
  const page = (tags: string[], link?: string) => ({
    status: 200,
    headers: { 'content-type': 'application/json', ...(link ? { link } : {}) },
    body: JSON.stringify({ name: 'tags/paged', tags }),
  });
  proxy.rules.push(
    {
      path: /\/tags\/list\?n=2$/,
      action: page(['alpha', 'beta'], '<list?n=2&last=beta>; rel="next"'),
    },
    {
      path: /last=beta$/,
      action: page(
        ['delta', 'epsilon'],
        `<${proxy.url}/v2/tags/paged/tags/list?n=2&last=epsilon>; rel="next"`,
      ),
    },
    { path: /last=epsilon$/, action: page(['gamma']) },
  );
  const client = clientFor(t, proxy.host, undefined);
  const listed: string[] = [];
  for await (const tag of client.repository(proxy.host, 'tags/paged').listTags({ pageSize: 2 }))
    listed.push(tag);
  t.deepEqual(listed, ['alpha', 'beta', 'delta', 'epsilon', 'gamma']);
  t.deepEqual(
    proxy.forwarded.filter((r) => r.path.includes('/tags/list')).map((r) => r.path),
    [
      '/v2/tags/paged/tags/list?n=2',
      '/v2/tags/paged/tags/list?n=2&last=beta',
      '/v2/tags/paged/tags/list?n=2&last=epsilon',
    ],
  );
});

test('listing the tags of an unknown repository fails with NAME_UNKNOWN', async (t) => {
  const { registry, client } = withClient(t, await sharedBasic());
  const listing = (async () => {
    for await (const _ of client.repository(registry.host, 'no/such').listTags()) t.fail();
  })();
  const err = await t.throwsAsync(listing, { instanceOf: RegistryError });
  t.is(err?.code, 'NAME_UNKNOWN');
});

test('the catalog lists every repository across pages', async (t) => {
  const { registry, client } = await registryWithClient(t, 'basic');
  const names = ['cat/one', 'cat/three', 'cat/two'];
  for (const name of names) {
    const { manifest } = await imageParts(client, registry.host, name, name);
    await client.repository(registry.host, name).putManifest('latest', manifest, OCI_MANIFEST);
  }
  const listed: string[] = [];
  for await (const name of client.catalog(registry.host, { pageSize: 1 })) listed.push(name);
  t.deepEqual(listed.sort(), names);
  t.true((await registry.requests({ method: 'GET', path: /\/_catalog$/ })).length >= names.length);
});

test('a page size over 1000 refused with 405 (as ECR does) is asked again as 1000', async (t) => {
  const registry = await shared(t);
  const over1000 = {
    method: 'GET',
    path: /\/tags\/list\?(?:.*&)?n=(?!1000(?:&|$))[1-9]\d{3,}(?:&|$)/,
    action: {
      status: 405,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        errors: [
          { code: 'UNSUPPORTED', message: "'maxResults' must be less than or equal to 1000" },
        ],
      }),
    },
  };
  const proxy = await startFaultProxy(t, registry.url, [over1000]);
  const client = clientFor(t, proxy.host, undefined);
  const repo = client.repository(proxy.host, 'ecr/app');
  const { manifest } = await imageParts(client, proxy.host, 'ecr/app', 'ecr');
  for (const tag of ['a', 'b', 'c']) await repo.putManifest(tag, manifest, OCI_MANIFEST);
  const list = async (pageSize: number) => {
    const listed: string[] = [];
    for await (const tag of repo.listTags({ pageSize })) listed.push(tag);
    return listed.sort();
  };
  t.deepEqual(await list(5000), ['a', 'b', 'c']);
  t.deepEqual(await list(1000), ['a', 'b', 'c']);
  t.deepEqual(
    proxy.forwarded.filter((r) => r.path.includes('/tags/list')).map((r) => r.path),
    [
      '/v2/ecr/app/tags/list?n=5000',
      '/v2/ecr/app/tags/list?n=1000',
      '/v2/ecr/app/tags/list?n=1000',
    ],
  );
  t.is(proxy.hits(over1000), 1);
  t.deepEqual(
    (await registry.requests({ path: /\/tags\/list$/ })).map((r) => r.query),
    ['n=1000', 'n=1000'],
  );
});

test('a 405 to a page size the registry should accept is not papered over', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/tags\/list/, action: { status: 405 } },
  ]);
  const client = clientFor(t, proxy.host, undefined);
  const listing = async (pageSize?: number) => {
    for await (const _ of client.repository(proxy.host, 'ecr/app').listTags({ pageSize })) t.fail();
  };
  for (const pageSize of [undefined, 1000]) {
    const err = await t.throwsAsync(listing(pageSize), { instanceOf: RegistryError });
    t.is(err?.status, 405);
  }
  t.is(proxy.forwarded.filter((r) => r.path.includes('/tags/list')).length, 2);
});

test('a Link back to a page already read fails with PAGINATION_LOOP instead of ending quietly', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, []);
  const page = (tags: string[], link: string) => ({
    status: 200,
    headers: { 'content-type': 'application/json', link },
    body: JSON.stringify({ name: 'tags/loop', tags }),
  });
  proxy.rules.push(
    { path: /\/tags\/list$/, action: page(['alpha'], '<list?last=alpha>; rel="next"') },
    { path: /last=alpha$/, action: page(['beta'], '</v2/tags/loop/tags/list>; rel="next"') },
  );
  const client = clientFor(t, proxy.host, undefined);
  const listed: string[] = [];
  const listing = (async () => {
    for await (const tag of client.repository(proxy.host, 'tags/loop').listTags()) listed.push(tag);
  })();
  const err = await t.throwsAsync(listing, { instanceOf: RegistryError });
  t.is(err?.code, 'PAGINATION_LOOP');
  t.regex(
    err?.message ?? '',
    /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/tags\/loop\/tags\/list\?last=alpha answered with a Link to http:\/\/127\.0\.0\.1:\d+\/v2\/tags\/loop\/tags\/list, a page already read: the registry's pagination loops, so the list may be incomplete \(items read: 2, pages: 2\)$/,
  );
  t.deepEqual(listed, ['alpha', 'beta']);
  t.is(proxy.forwarded.filter((r) => r.path.includes('/tags/list')).length, 2);
});

test('a next-page Link that cannot be read fails with LINK_INVALID instead of a shorter list', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, []);
  const first = {
    path: /\/tags\/list$/,
    action: {
      status: 200,
      headers: {
        'content-type': 'application/json',
        link: '<http://[broken/v2/tags/cut/tags/list?last=alpha>; rel="next"',
      },
      body: JSON.stringify({ name: 'tags/cut', tags: ['alpha'] }),
    },
  };
  proxy.rules.push(first);
  const client = clientFor(t, proxy.host, undefined);
  const listed: string[] = [];
  const listing = (async () => {
    for await (const tag of client.repository(proxy.host, 'tags/cut').listTags()) listed.push(tag);
  })();
  const err = await t.throwsAsync(listing, { instanceOf: RegistryError });
  t.is(err?.code, 'LINK_INVALID');
  t.deepEqual(listed, []);
  t.is(proxy.hits(first), 1);
});
