import test from 'ava';
import { request } from 'undici';
import { Authenticator } from '../../../src/registry/auth/authenticator.ts';
import { CredentialStore } from '../../../src/registry/auth/credentials.ts';
import { TokenCache } from '../../../src/registry/auth/token-cache.ts';
import { RegistryError } from '../../../src/registry/errors.ts';
import { HttpClient } from '../../../src/registry/http.ts';
import { OCI_MANIFEST } from '../../../src/registry/oci.ts';
import { Transport } from '../../../src/registry/transport.ts';
import { startRegistry } from '../../helpers/registry.ts';
import { ALICE_PASSWORD, clientFor, imageParts } from '../_support.ts';

const alice = { kind: 'basic', username: 'alice', password: ALICE_PASSWORD } as const;
const PING = /^\/v2\/$/;

test('the registry is pinged once and tokens are reused per scope set', async (t) => {
  const registry = await startRegistry(t, { auth: 'token' });
  const client = clientFor(t, registry.host, alice);
  const image = await imageParts(client, registry.host, 'auth/one', 'cached');
  const one = client.repository(registry.host, 'auth/one');
  await one.putManifest('v1', image.manifest, OCI_MANIFEST);
  const tokensBefore = registry.tokenRequests.length;
  await one.getManifest('v1');
  await one.headManifest('v1');
  await one.headBlob(image.layer.digest);
  t.is(registry.tokenRequests.length, tokensBefore + 1, 'one pull token for three reads');
  await client.repository(registry.host, 'auth/two').headManifest('v1');
  t.is(registry.tokenRequests.length, tokensBefore + 2, 'another repository needs its own token');
  const pings = (await registry.requests({ method: 'GET', path: PING })).filter(
    (r) => r.userAgent === 'ociferry',
  );
  t.is(pings.length, 1);
});

test('a cached token the registry rejects is replaced once by a fresh one', async (t) => {
  const registry = await startRegistry(t, { auth: 'token' });
  const http = new HttpClient();
  t.teardown(() => http.close());
  const tokens = new TokenCache();
  const credentials = new CredentialStore({ env: {}, explicit: { [registry.host]: alice } });
  const transport = new Transport(http, new Authenticator(http, credentials, tokens));
  const scopes = ['repository:stale/app:pull'];
  tokens.set(registry.host, scopes, 'revoked-token', 300);
  const response = await transport.request(registry.host, {
    method: 'GET',
    path: '/v2/stale/app/tags/list',
    scopes,
    expect: [200, 404],
  });
  await response.body.dump();
  t.is(response.status, 404);
  const tagReads = await registry.requests({ path: /\/tags\/list$/ });
  t.deepEqual(
    tagReads.map((r) => r.status),
    [401, 404],
  );
  t.is(registry.tokenRequests.length, 1);
  t.not(tokens.get(registry.host, scopes), 'revoked-token');
});

test('a token minted for the request is not asked again when the registry still says 401', async (t) => {
  const registry = await startRegistry(t, { auth: 'token' });
  const client = clientFor(t, registry.host, undefined);
  const err = await t.throwsAsync(client.repository(registry.host, 'anon/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'UNAUTHORIZED');
  t.is(registry.tokenRequests.length, 1);
  t.deepEqual(registry.tokenRequests[0]?.granted, []);
  t.is((await registry.requests({ path: /\/manifests\/v1$/ })).length, 1);
});

test('wrong Basic credentials are sent once, not retried', async (t) => {
  const registry = await startRegistry(t, { auth: 'basic' });
  const client = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'alice',
    password: 'nope',
  });
  const err = await t.throwsAsync(
    client.repository(registry.host, 'b/app').headBlob(`sha256:${'1'.repeat(64)}`),
    {
      instanceOf: RegistryError,
    },
  );
  t.is(err?.code, 'UNAUTHORIZED');
  t.is((await registry.requests({ path: /\/blobs\// })).length, 1);
});

test('an identity token is exchanged with the OAuth2 POST for access tokens', async (t) => {
  const registry = await startRegistry(t, { auth: 'token' });
  const realm = new URL(registry.tokenRealm ?? '');
  realm.searchParams.set('service', registry.tokenService ?? '');
  realm.searchParams.set('offline_token', 'true');
  const issued = await request(realm, {
    headers: {
      authorization: `Basic ${Buffer.from(`alice:${ALICE_PASSWORD}`).toString('base64')}`,
    },
  });
  const refreshToken = ((await issued.body.json()) as { refresh_token: string }).refresh_token;
  t.truthy(refreshToken);
  const client = clientFor(t, registry.host, { kind: 'identityToken', token: refreshToken });
  const image = await imageParts(client, registry.host, 'oauth/app', 'oauth');
  t.is(
    (
      await client
        .repository(registry.host, 'oauth/app')
        .putManifest('v1', image.manifest, OCI_MANIFEST)
    ).digest,
    image.digest,
  );
  const minted = registry.tokenRequests.slice(1);
  t.true(minted.length > 0);
  t.true(minted.every((r) => r.user === 'alice'));
});

test('a registry token is sent as the bearer token without an exchange', async (t) => {
  const registry = await startRegistry(t, { auth: 'token' });
  const header = await registry.authorize('alice', ['repository:static/app:pull,push']);
  const token = header?.replace(/^Bearer /, '') ?? '';
  const before = registry.tokenRequests.length;
  const client = clientFor(t, registry.host, { kind: 'registryToken', token });
  const image = await imageParts(client, registry.host, 'static/app', 'static');
  await client
    .repository(registry.host, 'static/app')
    .putManifest('v1', image.manifest, OCI_MANIFEST);
  t.is(registry.tokenRequests.length, before);
});
