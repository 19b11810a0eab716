import test from 'ava';
import { OCI_MANIFEST } from '../../src/oci/index.ts';
import { Authenticator } from '../../src/registry/auth/authenticator.ts';
import { CredentialStore } from '../../src/registry/auth/credentials.ts';
import { TokenCache } from '../../src/registry/auth/token-cache.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import { HttpClient } from '../../src/registry/http.ts';
import { Transport } from '../../src/registry/transport.ts';
import { ALICE_PASSWORD, clientFor, imageParts, registriesPerAuth } from './_support.ts';

const MAYBE_MISSING =
  /refused \(insufficient_scope\): the repository may not exist, or it needs credentials that grant this access/;

/** One registry per auth mode for every test here; each test sees its own tokens through its view. */
const registries = registriesPerAuth(test);

test('an anonymous pull refused after a fresh token says the repository may not exist or needs credentials', async (t) => {
  // Docker Hub answers a repository that does not exist like this: 401 insufficient_scope.
  const registry = await registries.token(t);
  const client = clientFor(t, registry.host, undefined);
  const err = await t.throwsAsync(
    client.repository(registry.host, 'library/nope').getManifest('latest'),
    { instanceOf: RegistryError },
  );
  t.is(err?.code, 'UNAUTHORIZED');
  t.is(err?.status, 401);
  t.regex(err?.message ?? '', MAYBE_MISSING);
  t.regex(err?.message ?? '', /for repository:library\/nope:pull/);
  t.is((await registry.requests({ path: /\/manifests\/latest$/ })).length, 1);
});

test('a user without access to an existing repository hears the same two causes', async (t) => {
  const registry = await registries.token(t, {
    users: {
      alice: { password: ALICE_PASSWORD, grants: [{ repository: '*', actions: ['*'] }] },
      bob: { password: 'bob-secret-pw', grants: [{ repository: 'bob/*', actions: ['*'] }] },
    },
  });
  const alice = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'alice',
    password: ALICE_PASSWORD,
  });
  const image = await imageParts(alice, registry.host, 'alice/app', 'private');
  await alice
    .repository(registry.host, 'alice/app')
    .putManifest('v1', image.manifest, OCI_MANIFEST);
  const bob = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'bob',
    password: 'bob-secret-pw',
  });
  const err = await t.throwsAsync(bob.repository(registry.host, 'alice/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'UNAUTHORIZED');
  t.regex(err?.message ?? '', MAYBE_MISSING);
  t.false(err?.message.includes('bob-secret-pw'));
});

test('a cached token refused, then a fresh one refused too, gets the hint after one retry', async (t) => {
  const registry = await registries.token(t);
  const http = new HttpClient();
  t.teardown(() => http.close());
  const tokens = new TokenCache();
  const credentials = new CredentialStore({ env: {}, explicit: {} });
  const transport = new Transport(http, new Authenticator(http, credentials, tokens));
  const scopes = ['repository:gone/app:pull'];
  tokens.set(registry.host, scopes, 'stale-token', 300);
  const err = await t.throwsAsync(
    transport.request(registry.host, {
      method: 'GET',
      path: '/v2/gone/app/manifests/v1',
      scopes,
      expect: [200],
    }),
    { instanceOf: RegistryError },
  );
  t.regex(err?.message ?? '', MAYBE_MISSING);
  t.false(err?.message.includes('stale-token'));
  t.is((await registry.requests({ path: /\/manifests\/v1$/ })).length, 2);
  t.is(registry.tokenRequests.length, 1);
});

test('wrong Basic credentials keep the usual advice', async (t) => {
  const registry = await registries.basic();
  const client = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'alice',
    password: 'wrong-pw',
  });
  const err = await t.throwsAsync(client.repository(registry.host, 'b/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'UNAUTHORIZED');
  t.regex(err?.message ?? '', /; check the credentials for this registry/);
  t.notRegex(err?.message ?? '', /may not exist/);
});

test('a push refused for want of push permission says the credentials do not grant it', async (t) => {
  const registry = await registries.token(t, {
    users: {
      alice: { password: ALICE_PASSWORD, grants: [{ repository: '*', actions: ['*'] }] },
      bob: { password: 'bob-secret-pw', grants: [{ repository: '*', actions: ['pull'] }] },
    },
  });
  const bob = clientFor(t, registry.host, {
    kind: 'basic',
    username: 'bob',
    password: 'bob-secret-pw',
  });
  const err = await t.throwsAsync(imageParts(bob, registry.host, 'bob/app', 'pull-only'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'UNAUTHORIZED');
  // distribution names the actions in no fixed order.
  t.regex(err?.refusedScope ?? '', /^repository:bob\/app:(?:pull,push|push,pull)$/);
  t.is(
    err?.hint,
    `a token just issued for ${err?.refusedScope} was refused (insufficient_scope): the credentials do not grant that permission; use credentials that do (docker login, REGISTRY_AUTH_FILE)`,
  );
  t.notRegex(err?.message ?? '', /may not exist/);
});
