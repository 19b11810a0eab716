import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import test from 'ava';
import { Agent, Client, request } from 'undici';
import type { AccessLogEntry } from './access-log.ts';
import { type FaultRule, Hold, startFaultProxy } from './fault-proxy.ts';
import { type SharedRegistry, sharedRegistry, startRegistry } from './registry.ts';

const REPO = 'fault/proxy';
const BLOB = randomBytes(64 * 1024);
const DIGEST = sha256(BLOB);
const BLOB_PATH = `/v2/${REPO}/blobs/${DIGEST}`;

const agent = new Agent();
test.after.always(() => agent.close());
/** The registry of the tests that count only what their proxy saw. */
const shared = sharedRegistry(test);
let blobPushed: Promise<SharedRegistry> | undefined;

/** The shared registry once BLOB is in REPO, pushed by the first test that asks. */
function sharedWithBlob(): Promise<SharedRegistry> {
  blobPushed ??= shared().then(async (registry) => {
    await pushBlob(registry.url, BLOB);
    return registry;
  });
  return blobPushed;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

type Headers = Record<string, string>;

function call(url: string, options: { method?: string; headers?: Headers; body?: Readable } = {}) {
  return request(url, {
    dispatcher: agent,
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers ?? {},
    body: options.body ?? null,
  });
}

/** Monolithic POST + PUT of `bytes` into REPO at `base`. */
async function pushBlob(base: string, bytes: Buffer, headers: Headers = {}): Promise<void> {
  const started = await call(`${base}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers });
  await started.body.dump();
  if (started.statusCode !== 202) throw new Error(`upload start answered ${started.statusCode}`);
  const location = new URL(started.headers.location as string, base);
  location.searchParams.set('digest', sha256(bytes));
  const done = await call(location.href, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: Readable.from([bytes]),
  });
  await done.body.dump();
  if (done.statusCode !== 201) throw new Error(`upload answered ${done.statusCode}`);
}

/** Reads a body until it ends or fails, returning what arrived and the failure. */
async function drain(body: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; error?: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk);
    return { bytes: Buffer.concat(chunks) };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

test('a 429 rule with times 1 answers once with Retry-After, then requests pass through', async (t) => {
  const registry = await startRegistry(t);
  await pushBlob(registry.url, BLOB);
  const rule: FaultRule = {
    method: 'GET',
    path: /\/blobs\//,
    times: 1,
    action: { status: 429, headers: { 'retry-after': '2' }, body: 'slow down' },
  };
  const proxy = await startFaultProxy(t, registry.url, [rule]);
  const since = await registry.mark();

  const limited = await call(`${proxy.url}${BLOB_PATH}`);
  t.is(limited.statusCode, 429);
  t.is(limited.headers['retry-after'], '2');
  t.is(await limited.body.text(), 'slow down');

  const passed = await call(`${proxy.url}${BLOB_PATH}`);
  t.is(passed.statusCode, 200);
  t.true(Buffer.from(await passed.body.arrayBuffer()).equals(BLOB));

  t.is(proxy.hits(rule), 1);
  t.is(proxy.forwarded.length, 2);
  const reached = await registry.requests({ method: 'GET', path: /\/blobs\//, since });
  t.deepEqual(
    reached.map((e) => e.status),
    [200],
  );
});

test('rules match by method and path, and rules pushed later apply to later requests', async (t) => {
  const registry = await sharedWithBlob();
  const proxy = await startFaultProxy(t, registry.url);

  const before = await call(`${proxy.url}${BLOB_PATH}`, { method: 'HEAD' });
  await before.body.dump();
  t.is(before.statusCode, 200);

  const rule: FaultRule = { method: 'head', path: /\/blobs\/sha256:/, action: { status: 503 } };
  proxy.rules.push(rule);
  const statuses: number[] = [];
  for (const [method, path] of [
    ['GET', BLOB_PATH],
    ['HEAD', BLOB_PATH],
    ['HEAD', `/v2/${REPO}/manifests/latest`],
  ] as const) {
    const res = await call(`${proxy.url}${path}`, { method });
    await res.body.dump();
    statuses.push(res.statusCode);
  }
  t.deepEqual(statuses, [200, 503, 404]);
  t.is(proxy.hits(rule), 1);
});

test('resetAfterBytes closes the connection after exactly that many body bytes', async (t) => {
  const registry = await sharedWithBlob();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { resetAfterBytes: 1000 } },
  ]);

  const res = await call(`${proxy.url}${BLOB_PATH}`);
  t.is(res.statusCode, 200);
  t.is(res.headers['content-length'], String(BLOB.length));
  const { bytes, error } = await drain(res.body);
  t.truthy(error);
  t.true(bytes.equals(BLOB.subarray(0, 1000)));
});

test('resetAfterBytes 0 closes the connection right after the headers', async (t) => {
  const registry = await sharedWithBlob();
  const proxy = await startFaultProxy(t, registry.url, [{ action: { resetAfterBytes: 0 } }]);

  const res = await call(`${proxy.url}${BLOB_PATH}`);
  t.is(res.statusCode, 200);
  const { bytes, error } = await drain(res.body);
  t.truthy(error);
  t.is(bytes.length, 0);
});

test('truncateAfterBytes gives a short 200 body whose Content-Length matches it', async (t) => {
  const registry = await sharedWithBlob();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, times: 1, action: { truncateAfterBytes: 1000 } },
  ]);

  const res = await call(`${proxy.url}${BLOB_PATH}`);
  t.is(res.statusCode, 200);
  t.is(res.headers['content-length'], '1000');
  t.is(res.headers['docker-content-digest'], DIGEST);
  const { bytes, error } = await drain(res.body);
  t.is(error, undefined);
  t.true(bytes.equals(BLOB.subarray(0, 1000)));

  const next = await call(`${proxy.url}${BLOB_PATH}`);
  t.true(Buffer.from(await next.body.arrayBuffer()).equals(BLOB));
});

test('flipByteAt corrupts exactly one byte, so the body no longer matches its digest', async (t) => {
  const registry = await sharedWithBlob();
  const offset = 40_000;
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { flipByteAt: offset } },
  ]);

  const res = await call(`${proxy.url}${BLOB_PATH}`);
  t.is(res.statusCode, 200);
  t.is(res.headers['docker-content-digest'], DIGEST);
  const body = Buffer.from(await res.body.arrayBuffer());
  t.is(body.length, BLOB.length);
  t.not(sha256(body), DIGEST);
  const differing = [...body.keys()].filter((i) => body[i] !== BLOB[i]);
  t.deepEqual(differing, [offset]);
  t.is(body[offset], (BLOB[offset] as number) ^ 0xff);
});

test('delayMs holds a request back before forwarding it', async (t) => {
  const registry = await startRegistry(t);
  await pushBlob(registry.url, BLOB);
  // Long enough that a busy machine's late timer still looks while the request is held.
  const rule: FaultRule = { method: 'GET', path: /\/blobs\//, action: { delayMs: 3000 } };
  const proxy = await startFaultProxy(t, registry.url, [rule]);

  const since = await registry.mark();
  const started = performance.now();
  const pending = call(`${proxy.url}${BLOB_PATH}`);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(await registry.requests({ path: /\/blobs\//, since }), []);
  const res = await pending;
  const body = Buffer.from(await res.body.arrayBuffer());
  t.true(performance.now() - started >= 3000);
  t.true(body.equals(BLOB));
  t.is((await registry.requests({ path: /\/blobs\//, since })).length, 1);
});

test('a hold keeps requests until released and counts the clients that gave up', async (t) => {
  const registry = await startRegistry(t);
  await pushBlob(registry.url, BLOB);
  const hold = new Hold();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { hold } },
  ]);
  const since = await registry.mark();
  const kept = call(`${proxy.url}${BLOB_PATH}`);
  const abort = new AbortController();
  const given = request(`${proxy.url}${BLOB_PATH}`, { dispatcher: agent, signal: abort.signal });
  await hold.arrived(2);
  abort.abort();
  t.is(((await given.catch((error: unknown) => error)) as Error).name, 'AbortError');
  await hold.abandoned(1);
  t.deepEqual(await registry.requests({ path: /\/blobs\//, since }), []);
  hold.release();
  const body = Buffer.from(await (await kept).body.arrayBuffer());
  t.true(body.equals(BLOB));
  t.is(hold.abandonedCount, 1);
  t.is((await registry.requests({ path: /\/blobs\//, since })).length, 1);
});

test('a blob redirected to the CDN is served there without the client sending Authorization', async (t) => {
  const registry = await startRegistry(t, { auth: 'basic' });
  const authorization = (await registry.authorize('alice', [
    `repository:${REPO}:pull,push`,
  ])) as string;
  await pushBlob(registry.url, BLOB, { authorization });
  const rule: FaultRule = {
    method: 'GET',
    path: /\/blobs\/sha256:/,
    action: { redirectToCdn: true },
  };
  const proxy = await startFaultProxy(t, registry.url, [rule]);

  const redirect = await call(`${proxy.url}${BLOB_PATH}`, { headers: { authorization } });
  await redirect.body.dump();
  t.is(redirect.statusCode, 307);
  const location = redirect.headers.location as string;
  t.true(location.startsWith(`${proxy.cdn.url}${BLOB_PATH}?cdn-ticket=`));
  t.is(proxy.forwarded[0]?.headers.authorization, authorization);

  const since = await registry.mark();
  const fromCdn = await call(location);
  t.is(fromCdn.statusCode, 200);
  t.true(Buffer.from(await fromCdn.body.arrayBuffer()).equals(BLOB));
  t.deepEqual(
    proxy.cdn.requests.map((r) => [r.method, r.path, r.headers.authorization]),
    [['GET', BLOB_PATH, undefined]],
  );
  t.deepEqual(
    (await registry.requests({ method: 'GET', path: /\/blobs\//, since })).map((e) => e.status),
    [200],
  );

  // The ticket is what lets the CDN read from the authenticating registry.
  const withoutTicket = await call(`${proxy.cdn.url}${BLOB_PATH}`);
  await withoutTicket.body.dump();
  t.is(withoutTicket.statusCode, 401);
  t.is(proxy.hits(rule), 1);
});

test('CDN rules fault the redirected download, and a Range request resumes it at the CDN', async (t) => {
  const registry = await sharedWithBlob();
  const cut: FaultRule = { at: 'cdn', times: 1, action: { resetAfterBytes: 5000 } };
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, action: { redirectToCdn: true, status: 302 } },
    cut,
  ]);

  const redirect = await call(`${proxy.url}${BLOB_PATH}`);
  await redirect.body.dump();
  t.is(redirect.statusCode, 302);
  const location = redirect.headers.location as string;
  t.is(location, `${proxy.cdn.url}${BLOB_PATH}`);

  const first = await drain((await call(location)).body);
  t.truthy(first.error);
  t.is(first.bytes.length, 5000);
  const rest = await call(location, { headers: { range: `bytes=${first.bytes.length}-` } });
  t.is(rest.statusCode, 206);
  const tail = Buffer.from(await rest.body.arrayBuffer());
  t.true(Buffer.concat([first.bytes, tail]).equals(BLOB));
  t.is(proxy.hits(cut), 1);
  t.is(proxy.cdn.requests.length, 2);

  const post = await call(location, { method: 'POST' });
  await post.body.dump();
  t.is(post.statusCode, 405);
});

test('a chunked upload through the proxy follows Locations rewritten to the proxy', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url);
  const half = BLOB.length / 2;

  const started = await call(`${proxy.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  await started.body.dump();
  t.is(started.statusCode, 202);
  let location = started.headers.location as string;
  for (const chunk of [BLOB.subarray(0, half), BLOB.subarray(half)]) {
    t.true(location.startsWith(`${proxy.url}/v2/${REPO}/blobs/uploads/`));
    const patched = await call(location, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream' },
      body: Readable.from([chunk.subarray(0, 1000), chunk.subarray(1000)]),
    });
    await patched.body.dump();
    t.is(patched.statusCode, 202);
    location = patched.headers.location as string;
  }
  const done = await call(`${location}&digest=${DIGEST}`, { method: 'PUT' });
  await done.body.dump();
  t.is(done.statusCode, 201);
  t.is(done.headers.location, `${proxy.url}${BLOB_PATH}`);

  const direct = await call(`${registry.url}${BLOB_PATH}`);
  t.true(Buffer.from(await direct.body.arrayBuffer()).equals(BLOB));
  t.deepEqual(
    proxy.forwarded.map((r) => r.method),
    ['POST', 'PATCH', 'PATCH', 'PUT'],
  );
});

test('Locations are rebased onto the name the client reached the proxy by', async (t) => {
  const registry = await shared();
  const proxy = await startFaultProxy(t, registry.url);
  // As a forward proxy sends it on: the client's name for the registry in Host.
  const host = `registry.test:${new URL(proxy.url).port}`;
  const started = await call(`${proxy.url}/v2/${REPO}/blobs/uploads/`, {
    method: 'POST',
    headers: { host },
  });
  await started.body.dump();
  t.is(started.statusCode, 202);
  t.true(
    (started.headers.location as string).startsWith(`http://${host}/v2/${REPO}/blobs/uploads/`),
  );
});

test('relative Locations pass through unchanged', async (t) => {
  const registry = await startRegistry(t, { relativeUrls: true });
  const proxy = await startFaultProxy(t, registry.url);

  const started = await call(`${proxy.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
  await started.body.dump();
  t.is(started.statusCode, 202);
  t.regex(started.headers.location as string, new RegExp(`^/v2/${REPO}/blobs/uploads/`));
});

test('a token realm on its own server is left alone', async (t) => {
  const registry = await startRegistry(t, { auth: 'token' });
  const proxy = await startFaultProxy(t, registry.url);

  const res = await call(`${proxy.url}/v2/`);
  await res.body.dump();
  t.is(res.statusCode, 401);
  t.regex(String(res.headers['www-authenticate']), /^Bearer /);
  t.true(String(res.headers['www-authenticate']).includes(`realm="${registry.tokenRealm}"`));
});

test('a realm that points at the target is rebased onto the proxy, other challenges kept', async (t) => {
  // The real registry cannot serve its own token realm, so a stand-in target does.
  const target = http.createServer((_req, res) => {
    const self = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    res.writeHead(401, [
      'WWW-Authenticate',
      `Bearer realm="${self}/token?x=1",service="svc"`,
      'WWW-Authenticate',
      'Basic realm="Registry Realm"',
      'Content-Length',
      '0',
    ]);
    res.end();
  });
  t.teardown(() => {
    target.close();
    target.closeAllConnections();
  });
  await once(target.listen(0, '127.0.0.1'), 'listening');
  const proxy = await startFaultProxy(
    t,
    `http://127.0.0.1:${(target.address() as AddressInfo).port}`,
  );

  const res = await call(`${proxy.url}/v2/`);
  await res.body.dump();
  t.deepEqual(res.headers['www-authenticate'], [
    `Bearer realm="${proxy.url}/token?x=1",service="svc"`,
    'Basic realm="Registry Realm"',
  ]);
});

test('one keep-alive connection carries forwarded and faulted requests alike', async (t) => {
  const registry = await sharedWithBlob();
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'POST', times: 1, action: { status: 503 } },
  ]);
  const client = new Client(proxy.url);
  t.teardown(() => client.close());
  let connects = 0;
  client.on('connect', () => connects++);

  const statuses: number[] = [];
  for (const method of ['GET', 'POST', 'POST', 'GET'] as const) {
    const res = await client.request({
      method,
      path: method === 'GET' ? BLOB_PATH : `/v2/${REPO}/blobs/uploads/`,
      body: method === 'POST' ? Buffer.alloc(10_000) : null,
    });
    await res.body.dump();
    statuses.push(res.statusCode);
  }
  t.deepEqual(statuses, [200, 503, 202, 200]);
  t.is(connects, 1);
});

test('stop ends requests in flight and closes both origins', async (t) => {
  const registry = await shared();
  const hold = new Hold();
  const proxy = await startFaultProxy(t, registry.url, [{ action: { hold } }]);

  const pending = call(`${proxy.url}/v2/`);
  await hold.arrived();
  // The hold is never released: stop returns only because it ends the held request.
  await proxy.stop();
  await t.throwsAsync(pending);
  await hold.abandoned();
  const origins = [
    { url: proxy.url, seen: proxy.forwarded },
    { url: proxy.cdn.url, seen: proxy.cdn.requests },
  ];
  for (const { url, seen } of origins) {
    const before = seen.length;
    const answer = await call(`${url}/v2/`).then(
      async (res) => {
        await res.body.dump();
        return res.statusCode;
      },
      (error: { code?: string }) => error.code,
    );
    // Refused; or, on a busy machine, another process took the freed port meanwhile and answered
    // (it could not have while this proxy listened there).
    if (typeof answer === 'number')
      t.log(`${url}: port taken since by a server that answered ${answer}`);
    else t.is(answer, 'ECONNREFUSED');
    t.is(seen.length, before, `${url}: the stopped origin received nothing`);
  }
  await proxy.stop();
});

test('answered lists what the registry answered through the proxy and its CDN, as its access log does', async (t) => {
  const registry = await startRegistry(t);
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/manifests\//, action: { status: 503 } },
    { method: 'GET', path: /\/blobs\//, times: 1, action: { redirectToCdn: true } },
  ]);
  const since = await registry.mark();
  await pushBlob(proxy.url, BLOB, { 'user-agent': 'answered-test' });
  const redirect = await call(`${proxy.url}${BLOB_PATH}`);
  await redirect.body.dump();
  t.is(redirect.statusCode, 307);
  const fromCdn = await call(redirect.headers.location as string);
  t.true(Buffer.from(await fromCdn.body.arrayBuffer()).equals(BLOB));
  for (const [method, path] of [
    ['HEAD', BLOB_PATH],
    ['HEAD', `/v2/${REPO}/manifests/missing`],
    ['GET', `/v2/${REPO}/manifests/faulted`],
  ] as const) {
    await (await call(`${proxy.url}${path}`, { method })).body.dump();
  }

  const fields = ({ method, path, query, status, bytes, userAgent }: AccessLogEntry) => ({
    method,
    path,
    query,
    status,
    bytes,
    userAgent,
  });
  const logged = (await registry.requests({ since })).map(fields);
  t.deepEqual(
    logged.map((e) => [e.method, e.status]),
    [
      ['POST', 202],
      ['PUT', 201],
      ['GET', 200],
      ['HEAD', 200],
      ['HEAD', 404],
    ],
  );
  t.is(logged[2]?.bytes, BLOB.length);
  // The log counts the error body a failed HEAD was given; no body reaches the proxy.
  t.deepEqual(
    proxy.answered.map(fields),
    logged.map((e) => (e.method === 'HEAD' ? { ...e, bytes: 0 } : e)),
  );
});
