import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { OCI_MANIFEST } from '../../src/oci/index.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import type { RequestEvent } from '../../src/registry/http.ts';
import type { AccessLogEntry } from '../helpers/access-log.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { refusedHost } from '../helpers/free-port.ts';
import { sharedRegistry, startRegistry } from '../helpers/registry.ts';
import { IMPORT_TYPESCRIPT } from '../helpers/typescript.ts';
import { proxiedName, startForwardProxy } from './_forward-proxy.ts';
import { ALICE_PASSWORD, clientFor, imageParts } from './_support.ts';
import { startTlsFront } from './_tls-front.ts';

/**
 * The registries of the tests that need none of their own: they count what their proxies or their
 * views saw, in repositories of their own.
 */
const shared = sharedRegistry(test);
const sharedBasic = sharedRegistry(test, { auth: 'basic' });

const execFileAsync = promisify(execFile);

const MISSING = `sha256:${'0'.repeat(64)}`;

test('Warning headers are reported once per distinct text', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, [
    {
      method: 'HEAD',
      path: /\/manifests\//,
      action: {
        status: 404,
        headers: { warning: '299 - "this registry is deprecated", 299 - "move to r2"' },
      },
    },
  ]);
  const warnings: string[] = [];
  const client = clientFor(t, proxy.host, undefined, { onWarning: (w) => warnings.push(w) });
  const repo = client.repository(proxy.host, 'warn/app');
  for (let i = 0; i < 3; i++) t.is(await repo.headManifest('v1'), undefined);
  t.deepEqual(warnings, ['this registry is deprecated', 'move to r2']);
});

test('endless redirects stop with TOO_MANY_REDIRECTS', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { redirectToCdn: true } },
    { at: 'cdn', method: 'GET', action: { redirectToCdn: true, status: 302 } },
  ]);
  const client = clientFor(t, proxy.host, undefined);
  const err = await t.throwsAsync(
    client.repository(proxy.host, 'loop/app').fetchBlob({ digest: MISSING }),
    {
      instanceOf: RegistryError,
    },
  );
  t.is(err?.code, 'TOO_MANY_REDIRECTS');
  t.is(proxy.cdn.requests.length, 10);
});

test('onRequest sees every exchange with secrets stripped from the URL', async (t) => {
  const registry = await sharedBasic();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { redirectToCdn: true } },
  ]);
  const events: RequestEvent[] = [];
  const client = clientFor(
    t,
    proxy.host,
    { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
    { onRequest: (e) => events.push(e) },
  );
  const image = await imageParts(client, proxy.host, 'events/app', 'events');
  events.length = 0;
  const before = client.requestCount;
  await (await client.repository(proxy.host, 'events/app').fetchBlob(image.layer)).toArray();
  t.is(client.requestCount - before, 2);
  t.deepEqual(
    events.map((e) => [e.method, e.status]),
    [
      ['GET', 307],
      ['GET', 200],
    ],
  );
  t.regex(
    events[1]?.url ?? '',
    /^http:\/\/127\.0\.0\.1:\d+\/v2\/events\/app\/blobs\/sha256:[0-9a-f]{64}\?cdn-ticket=REDACTED$/,
  );
});

test('requests beyond the per-host concurrency wait for a free slot', async (t) => {
  const registry = await shared();
  const peak = async (concurrency: number) => {
    // Each request is held long enough for every one sent at once to reach the proxy together.
    const proxy = await startFaultProxy(t, registry.url, []);
    const client = clientFor(t, proxy.host, undefined, { concurrency });
    const repo = client.repository(proxy.host, 'slow/app');
    await repo.headBlob(MISSING);
    proxy.rules.push({ method: 'HEAD', path: /\/blobs\//, times: 6, action: { delayMs: 500 } });
    await Promise.all(Array.from({ length: 6 }, () => repo.headBlob(MISSING)));
    return proxy.peakInFlight;
  };
  t.is(await peak(2), 2, '6 requests, 2 at a time');
  t.is(await peak(6), 6, '6 requests, 6 at a time');
});

test('plain HTTP is refused to a registry that is not allowed it', async (t) => {
  const registry = await shared();
  const events: RequestEvent[] = [];
  const client = clientFor(t, registry.host, undefined, {
    plainHttp: false,
    onRequest: (e) => events.push(e),
  });
  const err = await t.throwsAsync(client.repository(registry.host, 'tls/app').headBlob(MISSING), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TLS_ERROR');
  t.regex(events[0]?.url ?? '', /^https:/);
  t.is(events.length, 1, 'TLS failures are not retried');
});

test('an unreachable registry fails with CONNECTION_FAILED after the retries', async (t) => {
  // Where nothing listens, as where a registry was stopped.
  const host = await refusedHost();
  const events: RequestEvent[] = [];
  const client = clientFor(t, host, undefined, { onRequest: (e) => events.push(e) });
  const err = await t.throwsAsync(client.repository(host, 'gone/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'CONNECTION_FAILED');
  t.is(err?.status, undefined);
  t.is(events.length, 5);
});

test('a registry that does not answer in time fails with TIMEOUT', async (t) => {
  const registry = await shared();
  // The proxy holds manifest GETs longer than any test lasts: only a timeout ends them.
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 600_000 } },
  ]);
  const client = clientFor(t, proxy.host, undefined, {
    timeouts: { headersMs: 5000 },
    retry: { attempts: 2, baseDelayMs: 1 },
  });
  const repo = client.repository(proxy.host, 'slow/app');
  t.is(await repo.headManifest('v1'), undefined, 'the ping is done and answered in time');
  const err = await t.throwsAsync(repo.getManifest('v1'), { instanceOf: RegistryError });
  t.is(err?.code, 'TIMEOUT');
  t.is(
    proxy.forwarded.filter((r) => r.method === 'GET' && r.path.includes('/manifests/')).length,
    2,
  );
});

test('an aborted request rejects with the abort reason at once', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 5000 } },
  ]);
  const client = clientFor(t, proxy.host, undefined);
  const controller = new AbortController();
  // Abort once the proxy holds the manifest GET, which it would answer (404) only after 5 s.
  const held = setInterval(() => {
    if (proxy.forwarded.some((r) => r.path.includes('/manifests/'))) {
      clearInterval(held);
      controller.abort(new Error('user gave up'));
    }
  }, 5);
  t.teardown(() => clearInterval(held));
  await t.throwsAsync(
    client.repository(proxy.host, 'slow/app').getManifest('v1', { signal: controller.signal }),
    { message: 'user gave up' },
  );
  t.is(proxy.forwarded.filter((r) => r.path.includes('/manifests/')).length, 1, 'no retry');
});

/** `METHOD http://host/path?query` of each registry access-log entry, sorted, to compare with a proxy log. */
function registryTargets(host: string, entries: readonly AccessLogEntry[]): string[] {
  return entries
    .map((e) => `${e.method} http://${host}${e.path}${e.query === '' ? '' : `?${e.query}`}`)
    .sort();
}

test('every request to an http registry goes through the http proxy, in absolute form', async (t) => {
  const registry = await sharedBasic(t);
  const proxy = await startForwardProxy(t);
  const name = proxiedName(registry.host);
  const client = clientFor(
    t,
    name,
    { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
    { plainHttp: true, proxy: { http: proxy.url, noProxy: '' } },
  );
  const image = await imageParts(client, name, 'proxied/app', 'proxied');
  const repo = client.repository(name, 'proxied/app');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  t.is((await repo.getManifest('v1')).descriptor.digest, image.digest);
  t.deepEqual(
    proxy.log.map((line) => `${line.method} ${line.target}`).sort(),
    registryTargets(name, await registry.requests()),
    'every request the registry logged came through the proxy, and nothing else',
  );
  t.true(proxy.log.every((r) => r.refused === undefined && r.method !== 'CONNECT'));
});

test('loopback registries are reached directly whatever the proxy settings', async (t) => {
  const registry = await shared(t);
  const proxy = await startForwardProxy(t);
  for (const host of [registry.host, `localhost:${registry.host.split(':')[1]}`]) {
    const client = clientFor(t, host, undefined, {
      proxy: { http: proxy.url, https: proxy.url, noProxy: '' },
    });
    t.is(await client.repository(host, 'direct/app').headManifest('v1'), undefined);
  }
  t.deepEqual(proxy.log, []);
  t.is((await registry.requests({ path: /\/manifests\/v1$/ })).length, 2);
});

test('NO_PROXY hosts, with or without their port, are reached directly', async (t) => {
  const registry = await shared(t);
  const proxy = await startForwardProxy(t);
  const name = proxiedName(registry.host);
  const otherPort = Number(registry.host.split(':')[1]) + 1;
  const cases = [
    ['registry.test', false],
    [name, false],
    ['.test', false],
    [`example.com, registry.test:${otherPort}`, true],
    ['*', false],
    ['', true],
  ] as const;
  for (const [noProxy, proxied] of cases) {
    const before = proxy.log.length;
    const mark = await registry.mark();
    const client = clientFor(t, name, undefined, {
      plainHttp: true,
      proxy: { http: proxy.url, noProxy },
    });
    const head = client.repository(name, 'direct/app').headManifest('v1');
    if (proxied) {
      t.is(await head, undefined);
      const logged = await registry.requests({ since: mark });
      t.is(logged.length, 2, 'ping and HEAD reached the registry');
    } else {
      // registry.test resolves nowhere but at the proxy: a direct request fails to resolve it.
      const err = await t.throwsAsync(head, { instanceOf: RegistryError });
      t.is(err?.code, 'CONNECTION_FAILED', `NO_PROXY=${JSON.stringify(noProxy)}`);
    }
    t.is(proxy.log.length - before, proxied ? 2 : 0, `NO_PROXY=${JSON.stringify(noProxy)}`);
  }
});

test('HTTP_PROXY and NO_PROXY are read from the environment by default', async (t) => {
  const registry = await shared(t);
  const proxy = await startForwardProxy(t);
  const name = proxiedName(registry.host);
  const script = [
    "import { RegistryClient } from './src/registry/index.ts';",
    'const client = new RegistryClient({ plainHttp: true, retry: { attempts: 1 } });',
    `const repo = client.repository(${JSON.stringify(name)}, 'env/app');`,
    "console.log(await repo.headManifest('v1').then(() => 'ok', (err) => err.code));",
    'await client.close();',
  ].join('\n');
  const run = async (env: Record<string, string>) =>
    (
      await execFileAsync(
        process.execPath,
        [IMPORT_TYPESCRIPT, '--input-type=module', '-e', script],
        {
          cwd: join(import.meta.dirname, '..', '..'),
          env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent-ociferry-test-home', ...env },
        },
      )
    ).stdout.trim();
  t.is(await run({ HTTP_PROXY: proxy.url }), 'ok');
  t.deepEqual(
    proxy.log.map((r) => `${r.method} ${r.target}`),
    [`GET http://${name}/v2/`, `HEAD http://${name}/v2/env/app/manifests/v1`],
  );
  t.is(await run({ http_proxy: proxy.url, NO_PROXY: 'registry.test' }), 'CONNECTION_FAILED');
  t.is(proxy.log.length, 2, 'NO_PROXY from the environment bypasses the proxy');
  t.is((await registry.requests()).length, 2);
});

test('a proxy that cannot be reached is named in the error, not the registry', async (t) => {
  const registry = await shared();
  const proxy = { url: `http://${await refusedHost()}` };
  const name = proxiedName(registry.host);
  for (const scheme of ['http', 'https'] as const) {
    const client = clientFor(t, name, undefined, {
      plainHttp: scheme === 'http',
      retry: { attempts: 2, baseDelayMs: 1 },
      proxy: { [scheme]: proxy.url.replace('//', '//proxyuser:proxy-secret-pw@'), noProxy: '' },
    });
    const err = await t.throwsAsync(client.repository(name, 'down/app').headManifest('v1'), {
      instanceOf: RegistryError,
    });
    t.is(err?.code, 'PROXY_UNREACHABLE');
    t.true(err?.retryable);
    t.regex(
      err?.message ?? '',
      new RegExp(
        `^GET ${scheme}://${name}/v2/ failed: the forward proxy ${proxy.url} cannot be reached: .*ECONNREFUSED`,
      ),
    );
    t.false(err?.message.includes('proxy-secret-pw'));
  }
});

test('an https registry is reached through a CONNECT tunnel of the https proxy, TLS end to end', async (t) => {
  // Relative upload Locations: behind the TLS front the registry cannot know its scheme.
  const registry = await startRegistry(t, { auth: 'basic', relativeUrls: true });
  const front = proxiedName(await startTlsFront(t, registry.host));
  const proxy = await startForwardProxy(t);
  const alice = { kind: 'basic', username: 'alice', password: ALICE_PASSWORD } as const;
  const options = { proxy: { https: proxy.url, noProxy: '' } };
  const client = clientFor(t, front, alice, { ...options, insecure: true });
  const image = await imageParts(client, front, 'tunnel/app', 'tunnel');
  await client.repository(front, 'tunnel/app').putManifest('v1', image.manifest, OCI_MANIFEST);
  t.true(proxy.log.length > 0);
  t.deepEqual(
    [...new Set(proxy.log.map((r) => `${r.method} ${r.target}`))],
    [`CONNECT ${front}`],
    'the proxy saw tunnels only, never a request',
  );
  t.true((await registry.requests({ method: 'PUT', path: /\/manifests\/v1$/ })).length === 1);
  const verifying = clientFor(t, front, alice, options);
  const err = await t.throwsAsync(verifying.repository(front, 'tunnel/app').headManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(
    err?.code,
    'TLS_ERROR',
    'the self-signed registry certificate is checked through the tunnel',
  );
});

for (const scheme of ['http', 'https'] as const) {
  test(`proxy credentials go to the ${scheme} proxy and never into errors`, async (t) => {
    const registry = await shared();
    const host = proxiedName(
      scheme === 'https' ? await startTlsFront(t, registry.host) : registry.host,
    );
    const proxy = await startForwardProxy(t, {
      credentials: { username: 'proxyuser', password: 'proxy-secret-pw' },
    });
    const through = (password: string) =>
      clientFor(t, host, undefined, {
        plainHttp: scheme === 'http',
        insecure: true,
        retry: { attempts: 1 },
        proxy: { [scheme]: proxy.url.replace('//', `//proxyuser:${password}@`), noProxy: '' },
      }).repository(host, 'creds/app');
    t.is(await through('proxy-secret-pw').headManifest('v1'), undefined);
    const basic = `Basic ${Buffer.from('proxyuser:proxy-secret-pw').toString('base64')}`;
    t.true(proxy.log.every((r) => r.proxyAuthorization === basic && r.refused === undefined));
    const err = await t.throwsAsync(through('wrong-secret-pw').headManifest('v1'), {
      instanceOf: RegistryError,
    });
    t.is(err?.code, 'PROXY_REFUSED');
    t.regex(err?.message ?? '', /proxy answered 407; check the proxy credentials/);
    t.false(JSON.stringify([err?.message, err?.url, String(err?.stack)]).includes('secret'));
    t.is(proxy.log.at(-1)?.refused, 407);
  });
}

test('timeouts hold for requests through the proxy', async (t) => {
  const registry = await shared();
  // The fault proxy holds manifest GETs longer than any test lasts: only a timeout ends them.
  const faults = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 600_000 } },
  ]);
  const proxy = await startForwardProxy(t);
  const name = proxiedName(faults.host);
  const client = clientFor(t, name, undefined, {
    plainHttp: true,
    proxy: { http: proxy.url, noProxy: '' },
    timeouts: { headersMs: 5000 },
    retry: { attempts: 2, baseDelayMs: 1 },
  });
  const repo = client.repository(name, 'slow/app');
  t.is(await repo.headManifest('v1'), undefined, 'the ping is done and answered in time');
  const err = await t.throwsAsync(repo.getManifest('v1'), { instanceOf: RegistryError });
  t.is(err?.code, 'TIMEOUT');
  t.is(proxy.log.filter((r) => r.method === 'GET' && r.target.includes('/manifests/')).length, 2);
  t.is(
    faults.forwarded.filter((r) => r.method === 'GET' && r.path.includes('/manifests/')).length,
    2,
  );
});

test('insecure as a list skips certificate checks for the registries listed, not for others', async (t) => {
  const registry = await shared();
  const listed = await startTlsFront(t, registry.host);
  const other = await startTlsFront(t, registry.host);
  const client = clientFor(t, listed, undefined, { plainHttp: false, insecure: [listed] });
  t.is(await client.repository(listed, 'tls/app').headManifest('v1'), undefined);
  const err = await t.throwsAsync(client.repository(other, 'tls/app').headManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TLS_ERROR');
});
