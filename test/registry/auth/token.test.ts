import test from 'ava';
import { fetchToken } from '../../../src/registry/auth/token.ts';
import { RegistryError } from '../../../src/registry/errors.ts';
import { HttpClient } from '../../../src/registry/http.ts';
import { startRegistry } from '../../helpers/registry.ts';
import { ALICE_PASSWORD } from '../_support.ts';

test('the token GET sends every scope and the Basic credentials', async (t) => {
  const registry = await startRegistry(t, { auth: 'token' });
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
  const registry = await startRegistry(t, { auth: 'token' });
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
