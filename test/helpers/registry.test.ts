import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { digestBytes } from '../../src/digest/index.ts';
import { type SharedRegistry, sharedRegistry, startRegistry, type TestUser } from './registry.ts';
import {
  REGISTRY_INSTALL_COMMAND,
  RegistryBinaryMissingError,
  resolveRegistryBinary,
} from './registry-binary.ts';

/** Monolithic blob push with plain HTTP calls: POST an upload, PUT ?digest=. Returns both statuses. */
async function pushBlob(
  registry: SharedRegistry,
  repo: string,
  bytes: Buffer,
  authorization?: string,
): Promise<{ post: number; put?: number; digest: string }> {
  const digest = digestBytes(bytes);
  const headers = authorization ? { authorization } : {};
  const post = await request(`${registry.url}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers,
  });
  await post.body.dump();
  if (post.statusCode !== 202) return { post: post.statusCode, digest };
  const location = new URL(String(post.headers.location), registry.url);
  location.searchParams.set('digest', digest);
  const put = await request(location, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  await put.body.dump();
  return { post: post.statusCode, put: put.statusCode, digest };
}

async function getBlob(
  registry: SharedRegistry,
  repo: string,
  digest: string,
  authorization?: string,
): Promise<{ status: number; body: Buffer; challenge?: string }> {
  const res = await request(`${registry.url}/v2/${repo}/blobs/${digest}`, {
    headers: authorization ? { authorization } : {},
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const challenge = res.headers['www-authenticate'];
  return { status: res.statusCode, body, ...(challenge ? { challenge: String(challenge) } : {}) };
}

const shared = sharedRegistry(test);
const sharedBasic = sharedRegistry(test, { auth: 'basic' });
/** Its views have token servers of their own: each test sees its own tokens, for its own users. */
const sharedToken = sharedRegistry(test, { auth: 'token' });

async function fakeBinary(t: ExecutionContext, script: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-fake-registry-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'docker-registry');
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Run `body` with OCI_REGISTRY_BIN set; only from serial tests, since it changes process.env. */
async function withRegistryBin<T>(path: string, body: () => Promise<T>): Promise<T> {
  const saved = process.env.OCI_REGISTRY_BIN;
  process.env.OCI_REGISTRY_BIN = path;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.OCI_REGISTRY_BIN;
    else process.env.OCI_REGISTRY_BIN = saved;
  }
}

test.serial('startRegistry reports the stderr of a registry that dies at startup', async (t) => {
  const binary = await fakeBinary(t, 'echo "configuration error: boom-7c1f" >&2; exit 3');
  const error = await withRegistryBin(binary, () =>
    t.throwsAsync(startRegistry(t), { message: /exited with code 3/ }),
  );
  t.regex(error?.message ?? '', /boom-7c1f/);
});

test.serial(
  'startRegistry fails with the install command when OCI_REGISTRY_BIN is missing',
  async (t) => {
    const missing = join(tmpdir(), `ociferry-no-such-registry-${randomBytes(4).toString('hex')}`);
    const error = await withRegistryBin(missing, () =>
      t.throwsAsync(startRegistry(t), { instanceOf: RegistryBinaryMissingError }),
    );
    t.true(error?.message.includes(REGISTRY_INSTALL_COMMAND));
    t.true(error?.message.includes(missing));
  },
);

test('an anonymous registry stores a pushed blob and serves the same bytes back', async (t) => {
  const registry = await shared();
  t.is(registry.auth, 'none');
  t.is(registry.url, `http://${registry.host}`);
  t.is(await registry.authorize('alice', ['repository:lib/x:pull']), undefined);
  const bytes = randomBytes(3000);
  const pushed = await pushBlob(registry, 'lib/x', bytes);
  t.deepEqual(pushed, { post: 202, put: 201, digest: pushed.digest });
  const got = await getBlob(registry, 'lib/x', pushed.digest);
  t.is(got.status, 200);
  t.true(got.body.equals(bytes));
  // The blob landed in the temporary storage root.
  const hex = pushed.digest.slice('sha256:'.length);
  const data = join(
    registry.rootDir,
    'docker/registry/v2/blobs/sha256',
    hex.slice(0, 2),
    hex,
    'data',
  );
  t.is((await stat(data)).size, bytes.length);
});

test('the access log counts each request by method, path and status', async (t) => {
  const registry = await startRegistry(t);
  t.deepEqual(await registry.requests(), [], 'startup probes are not counted');
  const pushed = await pushBlob(registry, 'lib/x', randomBytes(100));
  await getBlob(registry, 'lib/x', pushed.digest);
  const blobPath = new RegExp(`^/v2/lib/x/blobs/${pushed.digest}$`);
  const gets = await registry.requests({ method: 'GET', path: blobPath });
  t.is(gets.length, 1);
  t.like(gets[0], { status: 200, bytes: 100, query: '' });
  t.is((await registry.requests({ method: 'POST' })).length, 1);
  const puts = await registry.requests({ method: 'PUT', status: 201 });
  t.is(puts.length, 1);
  t.is(new URLSearchParams(puts[0]?.query).get('digest'), pushed.digest);
  t.is((await registry.requests()).length, 3, 'sentinel requests are filtered out');
});

test('requests since a mark only include later requests', async (t) => {
  const registry = await startRegistry(t);
  const pushed = await pushBlob(registry, 'lib/x', randomBytes(10));
  await getBlob(registry, 'lib/x', pushed.digest);
  const mark = await registry.mark();
  t.is(mark, 3);
  t.deepEqual(await registry.requests({ since: mark }), []);
  await getBlob(registry, 'lib/x', pushed.digest);
  await getBlob(registry, 'lib/x', digestBytes('absent'));
  const later = await registry.requests({ since: mark });
  t.deepEqual(
    later.map((e) => e.status),
    [200, 404],
  );
  t.is((await registry.requests({ method: 'GET', since: mark, status: 200 })).length, 1);
  t.is((await registry.requests({ method: 'GET' })).length, 3);
});

test('the access log sees every one of many concurrent requests', async (t) => {
  const registry = await startRegistry(t);
  const digest = digestBytes('nothing here');
  await Promise.all(Array.from({ length: 40 }, () => getBlob(registry, 'lib/x', digest)));
  t.is((await registry.requests({ method: 'GET', status: 404 })).length, 40);
});

test('a large blob GET is counted as soon as its body has been read', async (t) => {
  // gorilla logs after the handler returns, which for big bodies can be after the client is done
  // (about 1 GET in 100 here); without waiting for in-flight handlers this fails now and then.
  const registry = await startRegistry(t);
  const pushed = await pushBlob(registry, 'lib/big', randomBytes(8 << 20));
  const path = new RegExp(`/blobs/${pushed.digest}$`);
  for (let i = 1; i <= 60; i++) {
    const res = await request(`${registry.url}/v2/lib/big/blobs/${pushed.digest}`);
    for await (const _ of res.body);
    t.is((await registry.requests({ method: 'GET', path })).length, i);
  }
});

test('a request still being handled does not hold requests() up for long', async (t) => {
  const registry = await startRegistry(t);
  const post = await request(`${registry.url}/v2/lib/x/blobs/uploads/`, { method: 'POST' });
  await post.body.dump();
  const body = new PassThrough();
  body.write(randomBytes(1024));
  const patch = request(new URL(String(post.headers.location)), {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream' },
    body,
  });
  let answered = false;
  void patch.then(() => {
    answered = true;
  });
  t.deepEqual(await registry.requests({ method: 'PATCH' }), []);
  t.false(answered, 'requests() returned while the PATCH was still being handled');
  body.end(randomBytes(1024));
  await (await patch).body.dump();
  t.like(await registry.requests({ method: 'PATCH' }), [{ status: 202 }]);
});

test("each view of a shared registry counts its own requests, as the registry's log does", async (t) => {
  // Two views in one test stand for two tests sharing the registry.
  const [a, b] = await Promise.all([shared(t), shared(t)]);
  t.not(a.host, b.host);
  const pushed = await pushBlob(a, 'view/a', randomBytes(100));
  t.is((await getBlob(b, 'view/a', pushed.digest)).status, 200, 'one registry behind both views');
  const mark = await b.mark();
  t.is(mark, 1);
  t.is((await getBlob(b, 'view/b', pushed.digest)).status, 404);

  t.like(await a.requests(), [
    { method: 'POST', path: '/v2/view/a/blobs/uploads/', status: 202 },
    { method: 'PUT', status: 201 },
  ]);
  t.is((await a.requests()).length, 2);
  const [put] = await a.requests({ method: 'PUT', path: /^\/v2\/view\/a\/blobs\/uploads\/./ });
  t.is(new URLSearchParams(put?.query).get('digest'), pushed.digest);
  const blobPath = `/v2/view/a/blobs/${pushed.digest}`;
  t.like(await b.requests(), [{ method: 'GET', path: blobPath, status: 200, bytes: 100 }]);
  t.deepEqual(
    (await b.requests({ since: mark })).map((e) => `${e.method} ${e.path} ${e.status}`),
    [`GET /v2/view/b/blobs/${pushed.digest} 404`],
  );
  t.is((await b.requests()).length, 2);
});

test('each view of a token registry has a token server of its own, for users of its own', async (t) => {
  const [a, b] = await Promise.all([
    sharedToken(t, { users: TOKEN_USERS }),
    sharedToken(t, {
      users: { carol: { password: 'carol-pw', grants: [{ repository: 'c/*', actions: ['*'] }] } },
    }),
  ]);
  t.not(a.tokenRealm, b.tokenRealm);
  const challenge = (await getBlob(b, 'c/x', digestBytes('x'))).challenge ?? '';
  t.true(challenge.startsWith(`Bearer realm="${b.tokenRealm}"`), challenge);
  const pushed = await pushBlob(
    b,
    'c/x',
    randomBytes(32),
    await b.authorize('carol', ['repository:c/x:pull,push']),
  );
  t.is(pushed.put, 201);
  await t.throwsAsync(b.authorize('alice', []), { message: /unknown test user/ });
  // A token of one view opens the registry through the other: one registry trusts both.
  const admin = await a.authorize('admin', ['repository:c/x:pull']);
  t.is((await getBlob(b, 'c/x', pushed.digest, admin)).status, 200);
  t.deepEqual(
    a.tokenRequests.map((r) => r.user),
    ['admin'],
  );
  t.deepEqual(b.tokenRequests, [
    {
      user: 'carol',
      scopes: ['repository:c/x:pull,push'],
      granted: [{ name: 'c/x', actions: ['pull', 'push'] }],
    },
  ]);
});

test('stop kills the registry and removes its temporary files', async (t) => {
  const registry = await startRegistry();
  await registry.stop();
  await t.throwsAsync(stat(registry.rootDir), { code: 'ENOENT' });
  await t.throwsAsync(request(`${registry.url}/v2/`), { code: 'ECONNREFUSED' });
  await registry.stop();
});

test('relativeUrls makes upload locations relative', async (t) => {
  const [absolute, relative] = await Promise.all([
    shared(),
    startRegistry(t, { relativeUrls: true }),
  ]);
  const locations = await Promise.all(
    [absolute, relative].map(async (registry) => {
      const res = await request(`${registry.url}/v2/lib/x/blobs/uploads/`, { method: 'POST' });
      await res.body.dump();
      return String(res.headers.location);
    }),
  );
  t.true(locations[0]?.startsWith(`${absolute.url}/v2/lib/x/blobs/uploads/`));
  t.true(locations[1]?.startsWith('/v2/lib/x/blobs/uploads/'));
});

test('a basic-auth registry answers 401 without credentials and accepts authorize()', async (t) => {
  const registry = await sharedBasic();
  const anonymous = await request(`${registry.url}/v2/`);
  await anonymous.body.dump();
  t.is(anonymous.statusCode, 401);
  t.regex(String(anonymous.headers['www-authenticate']), /^Basic realm=/);
  t.is((await pushBlob(registry, 'basic/x', randomBytes(10))).post, 401);

  const authorization = await registry.authorize('alice', ['repository:basic/x:pull,push']);
  t.regex(authorization ?? '', /^Basic /);
  const bytes = randomBytes(500);
  const pushed = await pushBlob(registry, 'basic/x', bytes, authorization);
  t.is(pushed.put, 201);
  t.true((await getBlob(registry, 'basic/x', pushed.digest, authorization)).body.equals(bytes));

  const wrong = `Basic ${Buffer.from('alice:not-the-password').toString('base64')}`;
  t.is((await getBlob(registry, 'basic/x', pushed.digest, wrong)).status, 401);
  await t.throwsAsync(registry.authorize('mallory', []), { message: /unknown test user/ });
});

const TOKEN_USERS: Record<string, TestUser> = {
  alice: {
    password: 'alice-secret-pw',
    grants: [
      { repository: 'a/*', actions: ['pull'] },
      { repository: 'b/*', actions: ['pull', 'push'] },
    ],
  },
  admin: { password: 'admin-secret-pw', grants: [{ repository: '*', actions: ['*'] }] },
};

test('a token registry enforces the scopes granted by the token server', async (t) => {
  const registry = await startRegistry(t, { auth: 'token', users: TOKEN_USERS });
  t.truthy(registry.tokenRealm);

  const challenge = (await getBlob(registry, 'a/x', digestBytes('x'))).challenge ?? '';
  t.true(challenge.startsWith(`Bearer realm="${registry.tokenRealm}"`));
  t.true(challenge.includes(`service="${registry.tokenService}"`));
  t.true(challenge.includes('scope="repository:a/x:pull"'));

  const bToken = await registry.authorize('alice', ['repository:b/x:pull,push']);
  t.regex(bToken ?? '', /^Bearer /);
  t.is((await pushBlob(registry, 'b/x', randomBytes(64), bToken)).put, 201);

  const aToken = await registry.authorize('alice', ['repository:a/x:pull,push']);
  const denied = await pushBlob(registry, 'a/x', randomBytes(64), aToken);
  t.true(denied.post === 401 || denied.post === 403, `push to a/x answered ${denied.post}`);

  const bytes = randomBytes(256);
  const adminToken = await registry.authorize('admin', ['repository:a/x:pull,push']);
  const seeded = await pushBlob(registry, 'a/x', bytes, adminToken);
  t.is(seeded.put, 201);
  const pulled = await getBlob(registry, 'a/x', seeded.digest, aToken);
  t.is(pulled.status, 200);
  t.true(pulled.body.equals(bytes));
  // A token for b/x does not open a/x.
  t.is((await getBlob(registry, 'a/x', seeded.digest, bToken)).status, 401);

  t.deepEqual(registry.tokenRequests, [
    {
      user: 'alice',
      scopes: ['repository:b/x:pull,push'],
      granted: [{ name: 'b/x', actions: ['pull', 'push'] }],
    },
    {
      user: 'alice',
      scopes: ['repository:a/x:pull,push'],
      granted: [{ name: 'a/x', actions: ['pull'] }],
    },
    {
      user: 'admin',
      scopes: ['repository:a/x:pull,push'],
      granted: [{ name: 'a/x', actions: ['pull', 'push'] }],
    },
  ]);
});

test('one token can carry scopes for two repositories, as a mount needs', async (t) => {
  const registry = await sharedToken(t, { users: TOKEN_USERS });
  const realm = new URL(registry.tokenRealm ?? '');
  realm.searchParams.set('service', registry.tokenService ?? '');
  realm.searchParams.append('scope', 'repository:b/dst:pull,push');
  realm.searchParams.append('scope', 'repository:a/src:pull repository:c/other:pull');
  const basic = `Basic ${Buffer.from('alice:alice-secret-pw').toString('base64')}`;
  const res = await request(realm, { headers: { authorization: basic } });
  const body = (await res.body.json()) as { token: string; access_token: string };
  t.is(res.statusCode, 200);
  t.is(body.access_token, body.token);
  t.deepEqual(registry.tokenRequests[0], {
    user: 'alice',
    scopes: ['repository:b/dst:pull,push', 'repository:a/src:pull', 'repository:c/other:pull'],
    granted: [
      { name: 'b/dst', actions: ['pull', 'push'] },
      { name: 'a/src', actions: ['pull'] },
    ],
  });
  const pushed = await pushBlob(registry, 'b/dst', randomBytes(32), `Bearer ${body.token}`);
  t.is(pushed.put, 201);
});

test('the token server rejects a wrong password and issues nothing', async (t) => {
  const registry = await sharedToken(t, { users: TOKEN_USERS });
  const realm = `${registry.tokenRealm}?service=${registry.tokenService}&scope=repository:b/x:pull`;
  const wrong = `Basic ${Buffer.from('alice:wrong-password').toString('base64')}`;
  const get = await request(realm, { headers: { authorization: wrong } });
  await get.body.dump();
  t.is(get.statusCode, 401);
  const unknown = `Basic ${Buffer.from('mallory:alice-secret-pw').toString('base64')}`;
  const getUnknown = await request(realm, { headers: { authorization: unknown } });
  await getUnknown.body.dump();
  t.is(getUnknown.statusCode, 401);
  const post = await request(registry.tokenRealm ?? '', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'password',
      username: 'alice',
      password: 'wrong-password',
      service: registry.tokenService ?? '',
      scope: 'repository:b/x:pull',
    }).toString(),
  });
  await post.body.dump();
  t.is(post.statusCode, 401);
  t.deepEqual(registry.tokenRequests, []);
});

test('anonymous token requests get a token with no access', async (t) => {
  const registry = await sharedToken(t, { users: TOKEN_USERS });
  const res = await request(
    `${registry.tokenRealm}?service=${registry.tokenService}&scope=repository:a/x:pull`,
  );
  const { token } = (await res.body.json()) as { token: string };
  t.is(res.statusCode, 200);
  t.deepEqual(registry.tokenRequests, [{ scopes: ['repository:a/x:pull'], granted: [] }]);
  t.is((await getBlob(registry, 'a/x', digestBytes('x'), `Bearer ${token}`)).status, 401);
});

test("a user named '' gives anonymous token requests its grants", async (t) => {
  const registry = await sharedToken(t, {
    users: { '': { password: '', grants: [{ repository: 'public/*', actions: ['pull'] }] } },
  });
  const authorization = await registry.authorize('', ['repository:public/x:pull,push']);
  t.deepEqual(registry.tokenRequests, [
    {
      scopes: ['repository:public/x:pull,push'],
      granted: [{ name: 'public/x', actions: ['pull'] }],
    },
  ]);
  t.is((await getBlob(registry, 'public/x', digestBytes('x'), authorization)).status, 404);
});

test('OAuth2 password and refresh_token grants mint tokens the registry accepts', async (t) => {
  const registry = await sharedToken(t, { users: TOKEN_USERS });
  const postForm = async (form: Record<string, string>) => {
    const res = await request(registry.tokenRealm ?? '', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ service: registry.tokenService ?? '', ...form }).toString(),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  const first = await postForm({
    grant_type: 'password',
    username: 'alice',
    password: 'alice-secret-pw',
    client_id: 'ociferry-test',
    access_type: 'offline',
    scope: 'repository:b/x:pull,push',
  });
  t.is(first.status, 200);
  t.is(typeof first.body.access_token, 'string');
  t.is(typeof first.body.refresh_token, 'string');

  const refreshed = await postForm({
    grant_type: 'refresh_token',
    refresh_token: String(first.body.refresh_token),
    client_id: 'ociferry-test',
    scope: 'repository:b/y:pull,push',
  });
  t.is(refreshed.status, 200);
  t.is(refreshed.body.refresh_token, undefined, 'no new refresh token without access_type=offline');
  const pushed = await pushBlob(
    registry,
    'b/y',
    randomBytes(16),
    `Bearer ${refreshed.body.access_token}`,
  );
  t.is(pushed.put, 201);

  const bogus = await postForm({ grant_type: 'refresh_token', refresh_token: 'bogus', scope: '' });
  t.is(bogus.status, 401);
  const unsupported = await postForm({ grant_type: 'client_credentials' });
  t.is(unsupported.status, 400);
  t.deepEqual(
    registry.tokenRequests.map((r) => r.user),
    ['alice', 'alice'],
  );
});

test('OCI_REGISTRY_BIN pointing at a missing file fails clearly and never installs', async (t) => {
  const missing = join(tmpdir(), `ociferry-no-such-registry-${randomBytes(4).toString('hex')}`);
  let installs = 0;
  const error = await t.throwsAsync(
    resolveRegistryBinary({
      env: { OCI_REGISTRY_BIN: missing, PATH: process.env.PATH },
      install: async () => {
        installs++;
      },
    }),
    { instanceOf: RegistryBinaryMissingError },
  );
  t.true(error?.message.includes(REGISTRY_INSTALL_COMMAND));
  t.true(error?.message.includes(missing));
  t.is(error?.code, 'REGISTRY_BINARY_MISSING');
  t.is(installs, 0);
});

test('a registry missing from PATH without apt-get fails with the install command', async (t) => {
  const emptyDir = await mkdtemp(join(tmpdir(), 'ociferry-empty-path-'));
  t.teardown(() => rm(emptyDir, { recursive: true, force: true }));
  let installs = 0;
  const error = await t.throwsAsync(
    resolveRegistryBinary({
      env: { PATH: emptyDir },
      install: async () => {
        installs++;
      },
    }),
    { instanceOf: RegistryBinaryMissingError },
  );
  t.true(error?.message.includes(REGISTRY_INSTALL_COMMAND));
  t.is(installs, 0);
});

test('the registry binary is found through OCI_REGISTRY_BIN or PATH', async (t) => {
  const fake = await fakeBinary(t, 'exit 0');
  t.is(await resolveRegistryBinary({ env: { OCI_REGISTRY_BIN: fake, PATH: '' } }), fake);
  t.is(await resolveRegistryBinary({ env: { PATH: join(fake, '..') } }), fake);
});
