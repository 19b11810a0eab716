import test from 'ava';
import { RegistryError } from '../../src/registry/errors.ts';
import { OCI_MANIFEST } from '../../src/registry/oci.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { startRegistry } from '../helpers/registry.ts';
import { clientFor, imageParts, registryWithClient } from './_support.ts';

for (const auth of ['none', 'token'] as const) {
  test(`tags list round trip (${auth} auth)`, async (t) => {
    const { registry, client } = await registryWithClient(t, auth);
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
  const registry = await startRegistry(t, { auth: 'none' });
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
  const { registry, client } = await registryWithClient(t, 'basic');
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
