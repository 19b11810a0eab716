import test from 'ava';
import { OCI_MANIFEST } from '../../../src/oci/index.ts';
import {
  type AddressScope,
  addressScope,
  type ResolveAll,
  tokenRealm,
} from '../../../src/registry/auth/realm.ts';
import { RegistryError } from '../../../src/registry/errors.ts';
import type { RequestEvent } from '../../../src/registry/http.ts';
import { startFaultProxy } from '../../helpers/fault-proxy.ts';
import { sharedRegistry } from '../../helpers/registry.ts';
import { ALICE_PASSWORD, clientFor, imageParts } from '../_support.ts';

/** The registries of the tests that reach one; each test has repositories of its own. */
const shared = sharedRegistry(test);
const sharedToken = sharedRegistry(test, { auth: 'token' });

test('addresses are sorted into loopback, private, link-local and public', (t) => {
  const table: Record<string, AddressScope> = {
    '127.0.0.1': 'loopback',
    '127.255.0.9': 'loopback',
    '0.0.0.0': 'loopback',
    '::1': 'loopback',
    '::': 'loopback',
    '::ffff:127.0.0.1': 'loopback',
    '10.0.0.1': 'private',
    '172.16.0.1': 'private',
    '172.31.255.255': 'private',
    '192.168.1.1': 'private',
    '100.64.0.1': 'private',
    'fd00::1': 'private',
    'fc12:3456::1': 'private',
    '::ffff:10.1.2.3': 'private',
    '169.254.169.254': 'link-local',
    'fe80::1': 'link-local',
    '::ffff:a9fe:a9fe': 'link-local',
    '172.32.0.1': 'public',
    '100.128.0.1': 'public',
    '8.8.8.8': 'public',
    '2606:4700::1111': 'public',
    '::ffff:8.8.8.8': 'public',
  };
  for (const [address, scope] of Object.entries(table)) t.is(addressScope(address), scope, address);
  t.throws(() => addressScope('localhost'), { instanceOf: TypeError });
});

/** A resolver answering from `names`, recording what it was asked; unknown names do not resolve. */
function fakeDns(names: Record<string, string[]>): ResolveAll & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string) => {
    asked.push(hostname);
    const found = names[hostname];
    if (found === undefined) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return found;
  };
  return Object.assign(resolve, { asked });
}

const DNS = {
  'registry.example': ['93.184.215.14'],
  'auth.example': ['93.184.215.15', '2606:2800:21f:cb07::1'],
  'metadata.example': ['93.184.215.16', '169.254.169.254'],
  localhost: ['127.0.0.1', '::1'],
  'registry.corp': ['10.1.2.3'],
  'auth.corp': ['10.1.2.4'],
};

async function verdict(registry: string, realm: string): Promise<string> {
  try {
    const url = await tokenRealm(
      { scheme: 'bearer', params: { realm } },
      new URL(registry),
      fakeDns(DNS),
    );
    return url.href === realm ? 'allowed' : `rewritten to ${url.href}`;
  } catch (err) {
    if (err instanceof RegistryError && err.code === 'INSECURE_REALM') return 'refused';
    throw err;
  }
}

test('a public registry may name public realms only', async (t) => {
  const registry = 'https://registry.example/';
  t.is(await verdict(registry, 'https://auth.example/token'), 'allowed');
  t.is(await verdict(registry, 'https://registry.example:8443/token'), 'allowed', 'own host');
  t.is(await verdict(registry, 'https://unresolvable.example/token'), 'allowed');
  for (const realm of [
    'https://169.254.169.254/latest/meta-data',
    'https://10.0.0.1/token',
    'https://192.168.0.1/token',
    'https://127.0.0.1/token',
    'https://[::1]/token',
    'https://[fd00::1]/token',
    'https://[::ffff:169.254.169.254]/token',
    'https://0x7f.1/token',
    'https://localhost/token',
    'https://metadata.example/token',
  ]) {
    t.is(await verdict(registry, realm), 'refused', realm);
  }
});

test('a loopback registry may name loopback realms, nothing else inward', async (t) => {
  const registry = 'http://127.0.0.1:5000/';
  t.is(await verdict(registry, 'http://127.0.0.1:5001/token'), 'allowed');
  t.is(await verdict(registry, 'http://localhost:5001/token'), 'allowed');
  t.is(await verdict(registry, 'https://auth.example/token'), 'allowed');
  t.is(await verdict(registry, 'http://10.0.0.1/token'), 'refused');
  t.is(await verdict(registry, 'http://169.254.169.254/token'), 'refused');
  t.is(await verdict('http://localhost:5000/', 'http://127.0.0.2/token'), 'allowed');
});

test('a registry on a private network may name realms on private addresses', async (t) => {
  const registry = 'https://registry.corp/';
  t.is(await verdict(registry, 'https://auth.corp/token'), 'allowed');
  t.is(await verdict(registry, 'https://10.9.9.9/token'), 'allowed');
  t.is(await verdict(registry, 'https://127.0.0.1/token'), 'refused');
  t.is(await verdict(registry, 'https://169.254.169.254/token'), 'refused');
});

test('the registry host is not looked up when the realm is on its host or public', async (t) => {
  const dns = fakeDns(DNS);
  const challenge = (realm: string) => ({ scheme: 'bearer', params: { realm } });
  const registry = new URL('https://registry.example/');
  await tokenRealm(challenge('https://registry.example/token'), registry, dns);
  t.deepEqual(dns.asked, []);
  await tokenRealm(challenge('https://auth.example/token'), registry, dns);
  t.deepEqual(dns.asked, ['auth.example']);
  const err = await t.throwsAsync(
    tokenRealm(challenge('https://metadata.example/token'), registry, dns),
    { instanceOf: RegistryError },
  );
  t.deepEqual(dns.asked, ['auth.example', 'metadata.example', 'registry.example']);
  t.is(
    err?.message,
    "registry.example names token realm https://metadata.example/token, a link-local address (169.254.169.254) that is not the registry's own; refusing to send credentials there",
  );
});

for (const realm of ['http://10.0.0.1/token', 'http://169.254.169.254/latest/api/token']) {
  test(`a loopback registry announcing realm ${realm} is refused before any connection`, async (t) => {
    const registry = await shared();
    const proxy = await startFaultProxy(t, registry.url, [
      {
        method: 'GET',
        path: /^\/v2\/$/,
        action: {
          status: 401,
          headers: { 'www-authenticate': `Bearer realm="${realm}",service="s"` },
        },
      },
    ]);
    const events: RequestEvent[] = [];
    const client = clientFor(
      t,
      proxy.host,
      { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
      { onRequest: (e) => events.push(e) },
    );
    const err = await t.throwsAsync(client.repository(proxy.host, 'ssrf/app').getManifest('v1'), {
      instanceOf: RegistryError,
    });
    t.is(err?.code, 'INSECURE_REALM');
    t.regex(err?.message ?? '', /(private|link-local) address that is not the registry's own/);
    t.false(err?.message.includes(ALICE_PASSWORD));
    t.deepEqual(
      events.map((e) => `${e.method} ${e.url}`),
      [`GET ${proxy.url}/v2/`],
      'nothing but the ping was sent',
    );
    t.deepEqual(
      proxy.forwarded.map((r) => r.path),
      ['/v2/'],
    );
  });
}

test('a loopback registry may send the client to a loopback realm under another name', async (t) => {
  // A token server of the test's own: its record is this test's tokens.
  const registry = await sharedToken(t);
  const realm = new URL(registry.tokenRealm ?? '');
  realm.hostname = 'localhost';
  const proxy = await startFaultProxy(t, registry.url, [
    {
      method: 'GET',
      path: /^\/v2\/$/,
      action: {
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="${realm.href}",service="${registry.tokenService}"`,
        },
      },
    },
  ]);
  const client = clientFor(t, proxy.host, {
    kind: 'basic',
    username: 'alice',
    password: ALICE_PASSWORD,
  });
  const image = await imageParts(client, proxy.host, 'named/app', 'named');
  await client.repository(proxy.host, 'named/app').putManifest('v1', image.manifest, OCI_MANIFEST);
  t.true(registry.tokenRequests.length > 0);
  t.true(registry.tokenRequests.every((r) => r.user === 'alice'));
});
