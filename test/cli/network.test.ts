import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { refusedHost } from '../helpers/free-port.ts';
import { sharedRegistry, startRegistry } from '../helpers/registry.ts';
import { proxiedName } from '../registry/_forward-proxy.ts';
import { ociferry, ociferryProcess } from './support/cli.ts';

/** The test process's environment without proxy variables (a machine may set them). */
function withoutProxies(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const {
    HTTP_PROXY: _a,
    HTTPS_PROXY: _b,
    http_proxy: _c,
    https_proxy: _d,
    NO_PROXY: _e,
    no_proxy: _f,
    NODE_EXTRA_CA_CERTS: _g,
    ...env
  } = process.env;
  return { ...env, ...extra };
}

/** The registry of the tests that need none of their own; each test has repositories of its own. */
const shared = sharedRegistry(test);

/** stderr as lines, the trailing newline dropped. */
function lines(stderr: string): string[] {
  return stderr.trimEnd().split('\n');
}

/** A registry serving TLS with the one-image fixture in `app/single:v1`, put there by ociferry. */
async function tlsRegistryWithImage(t: ExecutionContext) {
  const plain = await shared();
  await pushFixture(plain, 'oci-image', 'tls-source/single');
  const registry = await startRegistry(t, { tls: true });
  const copy = await ociferry(
    ['--insecure', 'copy', `${plain.host}/tls-source/single:v1`, `${registry.host}/app/single:v1`],
    { env: withoutProxies() },
  );
  t.is(copy.code, 0, copy.stderr);
  return registry;
}

test('a loopback registry serving TLS is used over HTTPS, its certificate verified', async (t) => {
  const registry = await tlsRegistryWithImage(t);
  const ref = `${registry.host}/app/single`;
  const trusted = withoutProxies({ NODE_EXTRA_CA_CERTS: registry.certificate });
  // Node reads NODE_EXTRA_CA_CERTS when a process starts.
  const ok = await ociferryProcess(['tags', ref], { env: trusted });
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, 'v1\n');

  const untrusted = await ociferry(['tags', ref], { env: withoutProxies() });
  t.is(untrusted.code, 1);
  const [error, hint, ...rest] = lines(untrusted.stderr);
  t.regex(
    error ?? '',
    new RegExp(`^error: tags ${ref}: GET https://${registry.host}/v2/ failed: `),
  );
  t.is(
    hint,
    `hint: the TLS connection to ${registry.host} failed: use --insecure to skip certificate verification`,
  );
  t.deepEqual(rest, []);

  const insecure = await ociferry(['--insecure', 'tags', ref], { env: withoutProxies() });
  t.is(insecure.code, 0, insecure.stderr);
  t.is(insecure.stdout, 'v1\n');
  const pulls = await registry.requests({ method: 'GET', path: /\/tags\/list$/ });
  t.is(pulls.length, 2, 'the verified and the --insecure listings, over HTTPS');
});

test('--plain-http to a registry serving TLS says what the registry said', async (t) => {
  const registry = await startRegistry(t, { tls: true });
  const result = await ociferry(['--plain-http', 'tags', `${registry.host}/app`], {
    env: withoutProxies(),
  });
  t.is(result.code, 1);
  t.deepEqual(lines(result.stderr), [
    `error: tags ${registry.host}/app: GET http://${registry.host}/v2/ answered 400 "Client sent an HTTP request to an HTTPS server": ${registry.host} speaks HTTPS`,
    `hint: ${registry.host} serves HTTPS: drop --plain-http (and add --insecure if its certificate is self-signed)`,
  ]);
});

test('a web server that is not a registry is named as such', async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'text/html' });
    res.end('<html><body>Not Found</body></html>');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const result = await ociferry(['inspect', `${host}/app:v1`], { env: withoutProxies() });
  t.is(result.code, 1);
  t.deepEqual(lines(result.stderr), [
    `error: inspect ${host}/app:v1: ${host} is not an OCI registry (GET /v2/ answered 404 text/html)`,
    'hint: check the host and port',
  ]);
});

test('loopback registries bypass HTTP_PROXY; a proxy that is down is named, not the registry', async (t) => {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'bypass/single');
  const proxy = `http://${await refusedHost()}`;
  const env = withoutProxies({ HTTP_PROXY: proxy, HTTPS_PROXY: proxy });
  const direct = await ociferry(['tags', `${registry.host}/bypass/single`], { env });
  t.is(direct.code, 0, direct.stderr);
  t.is(direct.stdout, 'v1\n');

  const name = proxiedName(registry.host);
  const proxied = await ociferry(['--plain-http', 'tags', `${name}/bypass/single`], { env });
  t.is(proxied.code, 1);
  const [error, hint, ...rest] = lines(proxied.stderr);
  t.regex(
    error ?? '',
    new RegExp(
      `^error: tags ${name}/bypass/single: GET http://${name}/v2/ failed: the forward proxy ${proxy} cannot be reached: connect ECONNREFUSED`,
    ),
  );
  t.is(hint, 'hint: check the proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)');
  t.deepEqual(rest, []);
});

test('--json requests counts every request the registry saw, the ping and the source manifest included', async (t) => {
  const registry = await shared(t);
  await pushFixture(registry, 'oci-image', 'counted/single');
  const mark = await registry.mark();
  const result = await ociferry(
    ['copy', '--json', `${registry.host}/counted/single:v1`, `${registry.host}/counted/copy:v1`],
    { env: withoutProxies() },
  );
  t.is(result.code, 0, result.stderr);
  const seen = await registry.requests({ since: mark });
  t.true(seen.some((e) => e.method === 'GET' && e.path === '/v2/'));
  t.true(seen.some((e) => e.method === 'GET' && e.path === '/v2/counted/single/manifests/v1'));
  t.is(JSON.parse(result.stdout).requests, seen.length);
});

test('tags stops with PAGINATION_LOOP when the Link of a page points back at a page read', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url, [
    {
      path: /\/tags\/list$/,
      action: {
        status: 200,
        headers: { 'content-type': 'application/json', link: '</v2/app/tags/list>; rel="next"' },
        body: JSON.stringify({ name: 'app', tags: ['v1'] }),
      },
    },
  ]);
  const result = await ociferry(['tags', `${proxy.host}/app`], { env: withoutProxies() });
  t.is(result.code, 1);
  t.is(result.stdout, '');
  t.regex(
    lines(result.stderr)[0] ?? '',
    /^error: tags .*: GET http:\/\/.*\/v2\/app\/tags\/list answered with a Link to .*\/v2\/app\/tags\/list, a page already read: the registry's pagination loops, so the list may be incomplete \(items read: 1, pages: 1\)$/,
  );
});
