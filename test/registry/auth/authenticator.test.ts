import test, { type ExecutionContext } from 'ava';
import { OCI_MANIFEST } from '../../../src/oci/index.ts';
import { Authenticator } from '../../../src/registry/auth/authenticator.ts';
import { CredentialStore } from '../../../src/registry/auth/credentials.ts';
import { TokenCache } from '../../../src/registry/auth/token-cache.ts';
import { RegistryError } from '../../../src/registry/errors.ts';
import { HttpClient } from '../../../src/registry/http.ts';
import { Transport } from '../../../src/registry/transport.ts';
import { Hold, startFaultProxy } from '../../helpers/fault-proxy.ts';
import { everyCallerAborts, oneCallerAborts } from '../../helpers/shared-work.ts';
import {
  ALICE_PASSWORD,
  aliceRefreshToken,
  clientFor,
  imageParts,
  registriesPerAuth,
} from '../_support.ts';

const alice = { kind: 'basic', username: 'alice', password: ALICE_PASSWORD } as const;
const PING = /^\/v2\/$/;
/**
 * One registry per auth mode for every test here: each test counts the requests and tokens of its
 * own view, in repositories of its own.
 */
const registries = registriesPerAuth(test);

test('the registry is pinged once and tokens are reused per scope set', async (t) => {
  const registry = await registries.token(t);
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
  const registry = await registries.token(t);
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
  const registry = await registries.token(t);
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
  const registry = await registries.basic(t);
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
  const registry = await registries.token(t);
  const refreshToken = await aliceRefreshToken(registry);
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
  const registry = await registries.token(t);
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

test('an identity token goes by GET with Basic where the realm answers the OAuth2 POST with 404', async (t) => {
  const registry = await registries.token(t);
  const refreshToken = await aliceRefreshToken(registry);
  const tokenOrigin = new URL(registry.tokenRealm ?? '').origin;
  const getOnly = await startFaultProxy(t, tokenOrigin, [
    { method: 'POST', action: { status: 404, body: '404 page not found' } },
  ]);
  const front = await startFaultProxy(t, registry.url, [
    {
      method: 'GET',
      path: PING,
      action: {
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="${getOnly.url}/token",service="${registry.tokenService}"`,
        },
      },
    },
  ]);
  const client = clientFor(t, front.host, { kind: 'identityToken', token: refreshToken });
  const image = await imageParts(client, front.host, 'getonly/app', 'getonly');
  const repo = client.repository(front.host, 'getonly/app');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  t.is(await client.repository(front.host, 'getonly/other').headManifest('v1'), undefined);
  const methods = getOnly.forwarded.map((r) => r.method);
  t.deepEqual(methods.slice(0, 2), ['POST', 'GET']);
  t.is(methods.filter((m) => m === 'POST').length, 1, 'the realm is remembered as GET-only');
  t.true(methods.length >= 3, 'the second repository needed a token of its own');
  const basic = `Basic ${Buffer.from(`<token>:${refreshToken}`).toString('base64')}`;
  t.true(getOnly.forwarded.slice(1).every((r) => r.headers.authorization === basic));
  const minted = registry.tokenRequests.slice(1);
  t.is(minted.length, methods.length - 1);
  t.true(minted.every((r) => r.user === 'alice'));
  t.deepEqual(minted[0]?.granted, [{ name: 'getonly/app', actions: ['pull', 'push'] }]);
});

/** An authenticator for `registry`, with alice's password, on a client closed after the test. */
function authenticatorFor(t: ExecutionContext, registry: string): Authenticator {
  const http = new HttpClient();
  t.teardown(() => http.close());
  const credentials = new CredentialStore({ env: {}, explicit: { [registry]: alice } });
  return new Authenticator(http, credentials, new TokenCache());
}

/** A registry whose ping goes through a proxy that holds it. */
async function heldPing(t: ExecutionContext) {
  const registry = await registries.basic();
  const hold = new Hold();
  const front = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: PING, action: { hold } },
  ]);
  const auth = authenticatorFor(t, front.host);
  const authorize = (signal: AbortSignal) =>
    auth.authorize({
      registry: front.host,
      baseUrl: new URL(front.url),
      scopes: ['repository:held/app:pull'],
      signal,
    });
  return { hold, authorize };
}

/** A token registry whose token requests go through a proxy that holds them. */
async function heldToken(t: ExecutionContext) {
  const registry = await registries.token(t);
  const hold = new Hold();
  const realm = await startFaultProxy(t, new URL(registry.tokenRealm ?? '').origin, [
    { method: 'GET', action: { hold } },
    { method: 'POST', action: { hold } },
  ]);
  const front = await startFaultProxy(t, registry.url, [
    {
      method: 'GET',
      path: PING,
      action: {
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="${realm.url}/token",service="${registry.tokenService}"`,
        },
      },
    },
  ]);
  const auth = authenticatorFor(t, front.host);
  const authorize = (signal: AbortSignal) =>
    auth.authorize({
      registry: front.host,
      baseUrl: new URL(front.url),
      scopes: ['repository:held/app:pull'],
      signal,
    });
  return { hold, authorize, registry };
}

test('a caller that aborts during the ping leaves the shared ping to the others', async (t) => {
  const { hold, authorize } = await heldPing(t);
  const answer = await oneCallerAborts(t, hold, authorize);
  t.is(answer.scheme, 'basic');
});

test('when every caller waiting for the ping aborts, the ping stops and its connection closes', async (t) => {
  const { hold, authorize } = await heldPing(t);
  await everyCallerAborts(t, hold, authorize);
});

test('a caller that aborts during a token fetch leaves the shared fetch to the others', async (t) => {
  const { hold, authorize, registry } = await heldToken(t);
  const answer = await oneCallerAborts(t, hold, authorize);
  t.is(answer.scheme, 'bearer');
  t.true(answer.fresh);
  t.is(registry.tokenRequests.length, 1);
});

test('when every caller waiting for a token aborts, the fetch stops and its connection closes', async (t) => {
  const { hold, authorize, registry } = await heldToken(t);
  await everyCallerAborts(t, hold, authorize);
  t.deepEqual(registry.tokenRequests, []);
});
