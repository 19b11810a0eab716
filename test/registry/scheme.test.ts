import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { OCI_MANIFEST } from '../../src/oci/index.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import type { RequestEvent } from '../../src/registry/http.ts';
import { probeHandshake } from '../../src/registry/scheme.ts';
import { refusedHost } from '../helpers/free-port.ts';
import { sharedRegistry, startRegistry } from '../helpers/registry.ts';
import { clientFor, imageParts } from './_support.ts';
import { startTcpRelay } from './_tcp-relay.ts';
import { startTlsFront } from './_tls-front.ts';

const MISSING = `sha256:${'0'.repeat(64)}`;
/** First byte of a TLS handshake record. */
const TLS_HANDSHAKE = 0x16;
/**
 * The registries of the tests that count none of their requests: one serving TLS, one plain that
 * answers relative Locations (which a TLS front in front of it needs). The others keep their own.
 */
const sharedTls = sharedRegistry(test, { tls: true });
const sharedRelative = sharedRegistry(test, { relativeUrls: true });

test('a loopback registry serving TLS is spoken to over HTTPS, its scheme learnt from one handshake', async (t) => {
  const registry = await startRegistry(t, { auth: 'none', tls: true });
  const relay = await startTcpRelay(t, registry.host);
  const events: RequestEvent[] = [];
  const client = clientFor(t, relay.host, undefined, {
    insecure: [relay.host],
    concurrency: 4,
    onRequest: (e) => events.push(e),
  });
  const repo = client.repository(relay.host, 'tls/app');
  // Concurrent first requests share the handshake that decides the scheme.
  const heads = await Promise.all(Array.from({ length: 8 }, () => repo.headBlob(MISSING)));
  t.deepEqual(heads, Array(8).fill(undefined));
  const image = await imageParts(client, relay.host, 'tls/app', 'tls');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  t.is((await repo.getManifest('v1')).descriptor.digest, image.digest);

  t.true(events.length > 10);
  t.true(events.every((e) => e.url.startsWith(`https://${relay.host}/`)));
  t.is((await registry.requests()).length, events.length, 'every exchange reached the registry');
  t.true(
    relay.firstBytes.every((byte) => byte === TLS_HANDSHAKE),
    'nothing went in plain HTTP',
  );
});

test('the scheme a handshake showed is kept: one handshake without a request per client', async (t) => {
  const registry = await sharedRelative();
  const sessions: { bytes: number }[] = [];
  const front = await startTlsFront(t, registry.host, sessions);
  const client = clientFor(t, front, undefined, { insecure: true });
  const repo = client.repository(front, 'kept/app');
  await Promise.all(Array.from({ length: 8 }, () => repo.headBlob(MISSING)));
  const image = await imageParts(client, front, 'kept/app', 'kept');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  for (let i = 0; i < 5; i++) await repo.getManifest('v1');
  t.true(sessions.length > 1);
  t.is(sessions.filter((session) => session.bytes === 0).length, 1, 'the probe, once');
});

test('a loopback registry serving plain HTTP is found out by one handshake, then spoken to over HTTP', async (t) => {
  const registry = await startRegistry(t, { auth: 'basic' });
  const relay = await startTcpRelay(t, registry.host);
  const events: RequestEvent[] = [];
  const client = clientFor(
    t,
    relay.host,
    { kind: 'basic', username: 'alice', password: 'alice-secret-pw' },
    { onRequest: (e) => events.push(e) },
  );
  const repo = client.repository(relay.host, 'plain/app');
  await Promise.all(Array.from({ length: 8 }, () => repo.headBlob(MISSING)));
  const image = await imageParts(client, relay.host, 'plain/app', 'plain');
  await repo.putManifest('v1', image.manifest, OCI_MANIFEST);
  t.true(events.every((e) => e.url.startsWith(`http://${relay.host}/`)));
  t.is((await registry.requests()).length, events.length);
  t.is(
    relay.firstBytes.filter((byte) => byte === TLS_HANDSHAKE).length,
    1,
    'one handshake for the whole client, however many requests',
  );
});

test('a TLS registry spoken to in plain HTTP fails with its own words: HTTPS_REQUIRED', async (t) => {
  const registry = await sharedTls();
  const client = clientFor(t, registry.host, undefined, { plainHttp: true });
  const err = await t.throwsAsync(client.repository(registry.host, 'tls/app').getManifest('v1'), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'HTTPS_REQUIRED');
  t.is(err?.status, 400);
  t.is(
    err?.message,
    `GET http://${registry.host}/v2/ answered 400 "Client sent an HTTP request to an HTTPS server": ${registry.host} speaks HTTPS; reach it over HTTPS, not plain HTTP`,
  );
});

test('the certificate of a loopback TLS registry is verified unless insecure', async (t) => {
  const registry = await sharedTls();
  const verifying = clientFor(t, registry.host, undefined);
  const err = await t.throwsAsync(
    verifying.repository(registry.host, 'tls/app').headBlob(MISSING),
    {
      instanceOf: RegistryError,
    },
  );
  t.is(err?.code, 'TLS_ERROR');
  t.regex(err?.message ?? '', /^GET https:\/\//);
  const trusting = clientFor(t, registry.host, undefined, { insecure: true });
  t.is(await trusting.repository(registry.host, 'tls/app').headBlob(MISSING), undefined);
});

test('a web server that is not a registry fails with NOT_A_REGISTRY', async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<html><body><h1>404 Not Found</h1></body></html>');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = clientFor(t, host, undefined);
  const repo = client.repository(host, 'some/app');
  for (const attempt of [() => repo.getManifest('v1'), () => repo.headManifest('v1')]) {
    const err = await t.throwsAsync(attempt(), { instanceOf: RegistryError });
    t.is(err?.code, 'NOT_A_REGISTRY');
    t.is(
      err?.message,
      `${host} is not an OCI registry (GET /v2/ answered 404 text/html); check the host and port`,
    );
  }
});

test('the handshake probe tells TLS, plain HTTP and nothing apart', async (t) => {
  const tls = await sharedTls();
  const plain = await startRegistry(t, { auth: 'none' });
  // Where nothing listens, as where a registry was stopped.
  const gone = { host: await refusedHost() };
  t.is(await probeHandshake(tls.host), 'tls');
  t.is(await probeHandshake(plain.host), 'plain-http');
  t.is(await probeHandshake(`localhost:${plain.host.split(':')[1]}`), 'plain-http');
  t.is(await probeHandshake(gone.host), 'unknown');
  t.deepEqual(await plain.requests(), [], 'a handshake is not an HTTP request');
});

test('a loopback registry whose first handshake is reset is asked again, then spoken to over HTTP', async (t) => {
  const registry = await sharedRelative();
  // The first connection fails before the server says a byte, as a registry still starting or
  // a machine too busy to answer may fail it.
  const relay = await startTcpRelay(t, registry.host, { reset: (index) => index === 0 });
  const events: RequestEvent[] = [];
  const client = clientFor(t, relay.host, undefined, { onRequest: (e) => events.push(e) });
  const repo = client.repository(relay.host, 'reset/app');
  t.deepEqual(await Promise.all([repo.headBlob(MISSING), repo.headBlob(MISSING)]), [
    undefined,
    undefined,
  ]);
  t.true(events.length >= 2);
  t.true(events.every((e) => e.url.startsWith(`http://${relay.host}/`)));
  t.is(relay.firstBytes.slice(1).filter((byte) => byte === TLS_HANDSHAKE).length, 1);
});

test('a loopback host that resets every connection is probed three times, then the request tells why', async (t) => {
  const relay = await startTcpRelay(t, '127.0.0.1:9', { reset: () => true });
  const client = clientFor(t, relay.host, undefined, { retry: { attempts: 1 } });
  const err = await t.throwsAsync(client.repository(relay.host, 'gone/app').headBlob(MISSING), {
    instanceOf: RegistryError,
  });
  t.is(err?.code, 'CONNECTION_FAILED');
  // Three handshakes, then the request itself, over HTTPS.
  t.is(relay.firstBytes.length, 4);
});
