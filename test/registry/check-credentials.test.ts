import test from 'ava';
import type { Credential } from '../../src/registry/auth/credentials.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import type { AuthMode, WatchedRegistry } from '../helpers/registry.ts';
import { ALICE_PASSWORD, clientFor, registriesPerAuth } from './_support.ts';

const PING = /^\/v2\/$/;
const WRONG_PASSWORD = 'not-alices-password';
/** One registry per auth mode for every test here; each test counts the pings and tokens of its view. */
const registries = registriesPerAuth(test);

const alice = (password: string): Credential => ({ kind: 'basic', username: 'alice', password });

/** Pings of `/v2/` by the client under test (the harness polls `/v2/` too). */
async function clientPings(registry: WatchedRegistry) {
  return (await registry.requests({ method: 'GET', path: PING })).filter(
    (r) => r.userAgent === 'ociferry',
  );
}

for (const auth of ['basic', 'token'] as const satisfies readonly AuthMode[]) {
  test(`${auth} registry: the right password passes with GET /v2/ answered 200`, async (t) => {
    const registry = await registries[auth](t);
    const client = clientFor(t, registry.host, alice(ALICE_PASSWORD));
    await client.checkCredentials(registry.host);
    const statuses = (await clientPings(registry)).map((r) => r.status);
    t.deepEqual(statuses.slice(-1), [200], 'the last ping carried the credentials and passed');
    if (auth === 'token') {
      t.deepEqual(registry.tokenRequests, [{ user: 'alice', scopes: [], granted: [] }]);
    }
  });

  test(`${auth} registry: a wrong password is refused as UNAUTHORIZED without naming it`, async (t) => {
    const registry = await registries[auth](t);
    const client = clientFor(t, registry.host, alice(WRONG_PASSWORD));
    const error = await t.throwsAsync(client.checkCredentials(registry.host), {
      instanceOf: RegistryError,
    });
    t.is(error?.code, 'UNAUTHORIZED');
    t.is(error?.status, 401);
    t.false(JSON.stringify({ ...error, message: error?.message }).includes(WRONG_PASSWORD));
    t.false((await clientPings(registry)).some((r) => r.status === 200));
    t.deepEqual(registry.tokenRequests, [], 'no token was issued');
  });
}

test('basic registry: no credentials at all is refused as UNAUTHORIZED', async (t) => {
  const registry = await registries.basic();
  const client = clientFor(t, registry.host, undefined);
  await t.throwsAsync(client.checkCredentials(registry.host), { code: 'UNAUTHORIZED' });
});

test('a registry without auth passes any credentials, as docker login does', async (t) => {
  const registry = await registries.none(t);
  const client = clientFor(t, registry.host, alice(WRONG_PASSWORD));
  await client.checkCredentials(registry.host);
  const statuses = (await clientPings(registry)).map((r) => r.status);
  t.true(statuses.length > 0 && statuses.every((status) => status === 200));
});
