import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { RegistryError } from '../../src/registry/errors.ts';
import type { RequestEvent } from '../../src/registry/http.ts';
import { OCI_MANIFEST } from '../../src/registry/oci.ts';
import type { AccessLogEntry } from '../helpers/access-log.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { startRegistry } from '../helpers/registry.ts';
import { startForwardProxy } from './_forward-proxy.ts';
import { ALICE_PASSWORD, clientFor, imageParts, registryWithClient } from './_support.ts';
import { startTlsFront } from './_tls-front.ts';

const execFileAsync = promisify(execFile);

const MISSING = `sha256:${'0'.repeat(64)}`;

test('Warning headers are reported once per distinct text', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
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
  const registry = await startRegistry(t, { auth: 'none' });
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
  const registry = await startRegistry(t, { auth: 'basic' });
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
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, []);
  const elapsed = async (concurrency: number) => {
    const client = clientFor(t, proxy.host, undefined, { concurrency });
    const repo = client.repository(proxy.host, 'slow/app');
    await repo.headBlob(MISSING);
    const rule = { method: 'HEAD', path: /\/blobs\//, times: 6, action: { delayMs: 300 } };
    proxy.rules.splice(0, proxy.rules.length, rule);
    const started = Date.now();
    await Promise.all(Array.from({ length: 6 }, () => repo.headBlob(MISSING)));
    return Date.now() - started;
  };
  const serial = await elapsed(2);
  t.true(serial >= 880, `6 requests, 2 at a time, took ${serial} ms`);
  const parallel = await elapsed(6);
  t.true(parallel < 880, `6 requests, 6 at a time, took ${parallel} ms`);
});

test('plain HTTP is refused to a registry that is not allowed it', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
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
  const registry = await startRegistry(t, { auth: 'none' });
  const host = registry.host;
  await registry.stop();
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
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 5000 } },
  ]);
  const client = clientFor(t, proxy.host, undefined, {
    timeouts: { headersMs: 200 },
    retry: { attempts: 2, baseDelayMs: 1 },
  });
  const started = Date.now();
  const err = await t.throwsAsync(client.repository(proxy.host, 'slow/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TIMEOUT');
  t.true(Date.now() - started < 3000);
});

test('an aborted request rejects with the abort reason at once', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 5000 } },
  ]);
  const client = clientFor(t, proxy.host, undefined);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('user gave up')), 100);
  const started = Date.now();
  await t.throwsAsync(
    client.repository(proxy.host, 'slow/app').getManifest('v1', { signal: controller.signal }),
    {
      message: 'user gave up',
    },
  );
  t.true(Date.now() - started < 2000);
});

/** `METHOD http://host/path?query` of each registry access-log entry, sorted, to compare with a proxy log. */
function registryTargets(host: string, entries: readonly AccessLogEntry[]): string[] {
  return entries
    .map((e) => `${e.method} http://${host}${e.path}${e.query === '' ? '' : `?${e.query}`}`)
    .sort();
}

test('requests to an http registry and its token realm go through the http proxy', async (t) => {
  const { registry } = await registryWithClient(t, 'token');
  const proxy = await startForwardProxy(t);
  const client = clientFor(
    t,
    registry.host,
    { kind: 'basic', username: 'alice', password: ALICE_PASSWORD },
    { proxy: { http: proxy.url, noProxy: '' } },
  );
  const image = await imageParts(client, registry.host, 'proxied/app', 'proxied');
  const repo = client.repository(registry.host, 'proxied/app');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  t.is((await repo.getManifest('v1')).descriptor.digest, image.digest);
  const seen = proxy.log.map((r) => `${r.method} ${r.target}`);
  const realm = registry.tokenRealm ?? '';
  const tokenGets = seen.filter((line) => line.startsWith(`GET ${realm}?`));
  t.is(tokenGets.length, registry.tokenRequests.length);
  t.true(tokenGets.length > 0);
  t.deepEqual(
    seen.filter((line) => !line.startsWith(`GET ${realm}?`)).sort(),
    registryTargets(registry.host, await registry.requests()),
    'every request the registry logged came through the proxy, in absolute form',
  );
  t.true(proxy.log.every((r) => r.refused === undefined && r.method !== 'CONNECT'));
});

test('NO_PROXY hosts, with or without their port, are reached directly', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startForwardProxy(t);
  const otherPort = Number(registry.host.split(':')[1]) + 1;
  const cases = [
    ['127.0.0.1', false],
    [registry.host, false],
    [`example.com, 127.0.0.1:${otherPort}`, true],
    ['*', false],
    ['', true],
  ] as const;
  for (const [noProxy, proxied] of cases) {
    const before = proxy.log.length;
    const mark = await registry.mark();
    const client = clientFor(t, registry.host, undefined, { proxy: { http: proxy.url, noProxy } });
    t.is(await client.repository(registry.host, 'direct/app').headManifest('v1'), undefined);
    const logged = await registry.requests({ since: mark });
    t.is(logged.length, 2, 'ping and HEAD reached the registry');
    t.is(proxy.log.length - before, proxied ? 2 : 0, `NO_PROXY=${JSON.stringify(noProxy)}`);
  }
});

test('HTTP_PROXY and NO_PROXY are read from the environment by default', async (t) => {
  const registry = await startRegistry(t, { auth: 'none' });
  const proxy = await startForwardProxy(t);
  const script = [
    "import { RegistryClient } from './src/registry/index.ts';",
    'const client = new RegistryClient({ retry: { attempts: 1 } });',
    `await client.repository(${JSON.stringify(registry.host)}, 'env/app').headManifest('v1');`,
    'await client.close();',
  ].join('\n');
  const run = (env: Record<string, string>) =>
    execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '..', '..'),
      env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent-ociferry-test-home', ...env },
    });
  await run({ HTTP_PROXY: proxy.url });
  t.deepEqual(
    proxy.log.map((r) => `${r.method} ${r.target}`),
    [`GET ${registry.url}/v2/`, `HEAD ${registry.url}/v2/env/app/manifests/v1`],
  );
  await run({ http_proxy: proxy.url, NO_PROXY: registry.host });
  t.is(proxy.log.length, 2, 'NO_PROXY from the environment bypasses the proxy');
  t.is((await registry.requests()).length, 4);
});

test('an https registry is reached through a CONNECT tunnel of the https proxy, TLS end to end', async (t) => {
  // Relative upload Locations: behind the TLS front the registry cannot know its scheme.
  const registry = await startRegistry(t, { auth: 'basic', relativeUrls: true });
  const front = await startTlsFront(t, registry.host);
  const proxy = await startForwardProxy(t);
  const alice = { kind: 'basic', username: 'alice', password: ALICE_PASSWORD } as const;
  const options = { plainHttp: false, proxy: { https: proxy.url, noProxy: '' } };
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
    const registry = await startRegistry(t, { auth: 'none' });
    const host = scheme === 'https' ? await startTlsFront(t, registry.host) : registry.host;
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
  const registry = await startRegistry(t, { auth: 'none' });
  const faults = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { delayMs: 5000 } },
  ]);
  const proxy = await startForwardProxy(t);
  const client = clientFor(t, faults.host, undefined, {
    proxy: { http: proxy.url, noProxy: '' },
    timeouts: { headersMs: 200 },
    retry: { attempts: 2, baseDelayMs: 1 },
  });
  const started = Date.now();
  const err = await t.throwsAsync(client.repository(faults.host, 'slow/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TIMEOUT');
  t.true(Date.now() - started < 3000);
  t.is(proxy.log.filter((r) => r.target.includes('/manifests/')).length, 2);
});

test('insecure as a list skips certificate checks for the registries listed, not for others', async (t) => {
  const registry = await startRegistry(t, { auth: 'none', relativeUrls: true });
  const listed = await startTlsFront(t, registry.host);
  const other = await startTlsFront(t, registry.host);
  const client = clientFor(t, listed, undefined, { plainHttp: false, insecure: [listed] });
  t.is(await client.repository(listed, 'tls/app').headManifest('v1'), undefined);
  const err = await t.throwsAsync(client.repository(other, 'tls/app').headManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'TLS_ERROR');
});
