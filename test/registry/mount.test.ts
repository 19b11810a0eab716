import { Readable } from 'node:stream';
import test from 'ava';
import { ALICE_PASSWORD, clientFor, registriesPerAuth, smallBlob, withClient } from './_support.ts';

const MOUNT = /\/blobs\/uploads\/$/;
/**
 * One registry per auth mode for every test here: each test has repositories of its own, and counts
 * the requests and tokens of its view.
 */
const registries = registriesPerAuth(test);

test('a mount with token auth asks one token for exactly dst pull,push and src pull', async (t) => {
  const { registry, client } = withClient(t, await registries.token(t));
  const blob = smallBlob('mounted across repositories');
  await client
    .repository(registry.host, 'a/src')
    .uploadBlob(blob, () => Readable.from([blob.bytes]));
  const before = registry.tokenRequests.length;
  const dst = client.repository(registry.host, 'b/dst');
  t.deepEqual(await dst.mountBlob(blob.digest, 'a/src'), { mounted: true });
  t.deepEqual(registry.tokenRequests.slice(before), [
    {
      user: 'alice',
      scopes: ['repository:a/src:pull', 'repository:b/dst:pull,push'],
      granted: [
        { name: 'a/src', actions: ['pull'] },
        { name: 'b/dst', actions: ['pull', 'push'] },
      ],
    },
  ]);
  const posts = await registry.requests({
    method: 'POST',
    path: /^\/v2\/b\/dst\/blobs\/uploads\/$/,
  });
  t.deepEqual(
    posts.map((p) => [p.status, p.query]),
    [[201, `mount=${encodeURIComponent(blob.digest)}&from=a%2Fsrc`]],
  );
  t.is((await dst.headBlob(blob.digest))?.size, blob.size);
});

test('a mount refused for want of source pull scope falls back to an upload', async (t) => {
  const registry = await registries.token(t, {
    users: {
      alice: { password: ALICE_PASSWORD, grants: [{ repository: '*', actions: ['*'] }] },
      bob: {
        password: 'bob-secret-pw',
        grants: [{ repository: 'b/*', actions: ['pull', 'push'] }],
      },
    },
  });
  const alice = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'alice',
    password: ALICE_PASSWORD,
  });
  const bob = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'bob',
    password: 'bob-secret-pw',
  });
  const blob = smallBlob('bob may not read this source');
  await alice
    .repository(registry.host, 'a/private')
    .uploadBlob(blob, () => Readable.from([blob.bytes]));

  const before = registry.tokenRequests.length;
  const mark = await registry.mark();
  const dst = bob.repository(registry.host, 'b/mine');
  t.deepEqual(await dst.mountBlob(blob.digest, 'a/private'), { mounted: false });
  await dst.uploadBlob(blob, () => Readable.from([blob.bytes]));
  t.is((await dst.headBlob(blob.digest))?.size, blob.size);

  const tokens = registry.tokenRequests.slice(before);
  t.deepEqual(tokens[0], {
    user: 'bob',
    scopes: ['repository:a/private:pull', 'repository:b/mine:pull,push'],
    granted: [{ name: 'b/mine', actions: ['pull', 'push'] }],
  });
  t.deepEqual(tokens[1]?.scopes, ['repository:b/mine:pull,push']);
  const posts = await registry.requests({ method: 'POST', path: MOUNT, since: mark });
  t.deepEqual(
    posts.map((p) => [p.status, p.query.startsWith('mount=')]),
    [
      [401, true],
      [202, false],
    ],
  );
  t.is(
    (
      await registry.requests({
        method: 'PUT',
        path: /\/blobs\/uploads\//,
        status: 201,
        since: mark,
      })
    ).length,
    1,
  );
});

for (const auth of ['none', 'basic'] as const) {
  test(`a mount of a blob the source lacks opens a session the upload reuses (${auth} auth)`, async (t) => {
    const { registry, client } = withClient(t, await registries[auth](t));
    const blob = smallBlob(`not in the source (${auth})`);
    const dst = client.repository(registry.host, 'c/dst');
    const result = await dst.mountBlob(blob.digest, 'c/src');
    t.false(result.mounted);
    const session = result.mounted ? undefined : result.session;
    t.truthy(session?.location);
    await dst.uploadBlob(blob, () => Readable.from([blob.bytes]), { session });
    t.is((await dst.headBlob(blob.digest))?.size, blob.size);
    t.is((await registry.requests({ method: 'POST', path: MOUNT })).length, 1);
  });

  test(`a blob mounts between repositories (${auth} auth)`, async (t) => {
    const { registry, client } = withClient(t, await registries[auth]());
    const blob = smallBlob(`mount me (${auth})`);
    await client
      .repository(registry.host, 'd/src')
      .uploadBlob(blob, () => Readable.from([blob.bytes]));
    const dst = client.repository(registry.host, 'd/dst');
    t.deepEqual(await dst.mountBlob(blob.digest, 'd/src'), { mounted: true });
    t.is((await dst.headBlob(blob.digest))?.size, blob.size);
  });
}
