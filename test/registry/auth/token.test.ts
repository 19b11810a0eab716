import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { fetchToken } from '../../../src/registry/auth/token.ts';
import { RegistryError } from '../../../src/registry/errors.ts';
import { HttpClient } from '../../../src/registry/http.ts';
import { startFaultProxy } from '../../helpers/fault-proxy.ts';
import { ALICE_PASSWORD, aliceRefreshToken, registriesPerAuth } from '../_support.ts';

/** One registry per auth mode for every test here; each test sees its own tokens through its view. */
const registries = registriesPerAuth(test);

test('the token GET sends every scope and the Basic credentials', async (t) => {
  const registry = await registries.token(t);
  const http = new HttpClient();
  t.teardown(() => http.close());
  const token = await fetchToken(http, {
    challenge: {
      scheme: 'bearer',
      params: { realm: registry.tokenRealm ?? '', service: registry.tokenService ?? '' },
    },
    registryUrl: new URL(registry.url),
    scopes: ['repository:a/b:pull', 'repository:c/d:pull,push'],
    credential: { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
  });
  t.regex(token.token, /^eyJ/);
  t.is(token.expiresInSec, 300);
  t.deepEqual(registry.tokenRequests[0], {
    user: 'alice',
    scopes: ['repository:a/b:pull', 'repository:c/d:pull,push'],
    granted: [
      { name: 'a/b', actions: ['pull'] },
      { name: 'c/d', actions: ['pull', 'push'] },
    ],
  });
});

test('a refused token request is UNAUTHORIZED and names no secret', async (t) => {
  const registry = await registries.token(t);
  const http = new HttpClient();
  t.teardown(() => http.close());
  const err = await t.throwsAsync(
    fetchToken(http, {
      challenge: {
        scheme: 'bearer',
        params: { realm: registry.tokenRealm ?? '', service: registry.tokenService ?? '' },
      },
      registryUrl: new URL(registry.url),
      scopes: ['repository:a/b:pull'],
      credential: { kind: 'basic', username: 'alice', password: 'not-her-password' },
    }),
    { instanceOf: RegistryError },
  );
  t.is(err?.code, 'UNAUTHORIZED');
  t.false(err?.message.includes('not-her-password'));
});

test('an http realm is refused for an https registry before anything is sent', async (t) => {
  let sent = 0;
  const http = new HttpClient({ onRequest: () => sent++ });
  t.teardown(() => http.close());
  for (const realm of ['http://auth.example/token', 'ftp://auth.example/token', 'not a url']) {
    const err = await t.throwsAsync(
      fetchToken(http, {
        challenge: { scheme: 'bearer', params: { realm } },
        registryUrl: new URL('https://registry.example/'),
        scopes: [],
        credential: { kind: 'basic', username: 'u', password: 'p' },
      }),
      { instanceOf: RegistryError },
    );
    t.is(err?.code, 'INSECURE_REALM');
  }
  t.is(sent, 0);
});

test('a realm that redirects the token GET to a private address is refused at that hop', async (t) => {
  // A hostile token service: the real one cannot be made to redirect.
  const hops: string[] = [];
  const realm = createServer((req, res) => {
    hops.push(req.url ?? '');
    res.writeHead(307, { location: 'http://10.255.255.1/latest/token' }).end();
  });
  await new Promise<void>((resolve) => realm.listen(0, '127.0.0.1', resolve));
  t.teardown(() => realm.close());
  const { port } = realm.address() as AddressInfo;
  const events: string[] = [];
  const http = new HttpClient({ onRequest: (e) => events.push(`${e.method} ${e.url}`) });
  t.teardown(() => http.close());
  const err = await t.throwsAsync(
    fetchToken(http, {
      challenge: { scheme: 'bearer', params: { realm: `http://127.0.0.1:${port}/token` } },
      registryUrl: new URL('http://127.0.0.1:5000/'),
      scopes: ['repository:a/b:pull'],
      credential: { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
    }),
    { instanceOf: RegistryError },
  );
  t.is(err?.code, 'INSECURE_REALM');
  t.regex(err?.message ?? '', /10\.255\.255\.1.*private address/);
  t.false(err?.message.includes(ALICE_PASSWORD));
  t.is(hops.length, 1);
  t.deepEqual(
    events.map((event) => event.split('?')[0]),
    [`GET http://127.0.0.1:${port}/token`],
    'the private address was never asked',
  );
});

test('an identity token with a username goes as that user by GET to a realm without OAuth2', async (t) => {
  const registry = await registries.token(t);
  const refreshToken = await aliceRefreshToken(registry);
  const getOnly = await startFaultProxy(t, new URL(registry.tokenRealm ?? '').origin, [
    { method: 'POST', action: { status: 404 } },
  ]);
  const http = new HttpClient();
  t.teardown(() => http.close());
  const getOnlyRealms = new Set<string>();
  const fetch = (scope: string) =>
    fetchToken(http, {
      challenge: {
        scheme: 'bearer',
        params: { realm: `${getOnly.url}/token?client=x`, service: registry.tokenService ?? '' },
      },
      registryUrl: new URL(registry.url),
      scopes: [scope],
      credential: { kind: 'identityToken', token: refreshToken, username: 'alice' },
      getOnlyRealms,
    });
  t.regex((await fetch('repository:a/b:pull')).token, /^eyJ/);
  t.deepEqual([...getOnlyRealms], [`${getOnly.url}/token`]);
  t.regex((await fetch('repository:c/d:pull')).token, /^eyJ/);
  t.deepEqual(
    getOnly.forwarded.map((r) => r.method),
    ['POST', 'GET', 'GET'],
  );
  const basic = `Basic ${Buffer.from(`alice:${refreshToken}`).toString('base64')}`;
  t.true(getOnly.forwarded.slice(1).every((r) => r.headers.authorization === basic));
  t.deepEqual(
    registry.tokenRequests.slice(1).map((r) => [r.user, r.scopes]),
    [
      ['alice', ['repository:a/b:pull']],
      ['alice', ['repository:c/d:pull']],
    ],
  );
});

test('a refused identity token exchange is UNAUTHORIZED and names no token', async (t) => {
  const registry = await registries.token(t);
  const http = new HttpClient();
  t.teardown(() => http.close());
  const err = await t.throwsAsync(
    fetchToken(http, {
      challenge: {
        scheme: 'bearer',
        params: { realm: registry.tokenRealm ?? '', service: registry.tokenService ?? '' },
      },
      registryUrl: new URL(registry.url),
      scopes: ['repository:a/b:pull'],
      credential: { kind: 'identityToken', token: 'unknown-refresh-token' },
    }),
    { instanceOf: RegistryError },
  );
  t.is(err?.code, 'UNAUTHORIZED');
  t.is(err?.method, 'POST');
  t.false(err?.message.includes('unknown-refresh-token'));
});
