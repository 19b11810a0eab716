import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { DigestMismatchError, SizeMismatchError } from '../../src/digest/index.ts';
import type { UploadMode } from '../../src/registry/uploads.ts';
import { type FaultAction, startFaultProxy } from '../helpers/fault-proxy.ts';
import {
  clientFor,
  generated,
  generatedDescriptor,
  registriesPerAuth,
  registryWithClient,
  smallBlob,
  streamDigest,
  withClient,
} from './_support.ts';

const MiB = 1024 * 1024;
const UPLOADS = /\/blobs\/uploads\//;
/** One registry per auth mode for the tests here; each test has a repository of its own. */
const registries = registriesPerAuth(test);

for (const auth of ['none', 'basic', 'token'] as const) {
  test(`blobs uploaded in every mode read back verified with ${auth} auth`, async (t) => {
    const { registry, client } = withClient(t, await registries[auth](t));
    const repo = client.repository(registry.host, 'up/modes');
    for (const mode of ['monolithic', 'single-request', 'chunked'] satisfies UploadMode[]) {
      const blob = smallBlob(`blob uploaded ${mode} with ${auth} auth`);
      let opened = 0;
      await repo.uploadBlob(
        blob,
        () => {
          opened++;
          return Readable.from([blob.bytes]);
        },
        { mode, chunkSize: 7 },
      );
      // distribution opens a session for POST ?digest= without taking the bytes: they go again with the PUT.
      t.is(opened, mode === 'single-request' ? 2 : 1, mode);
      t.deepEqual(await repo.headBlob(blob.digest), {
        mediaType: 'application/octet-stream',
        digest: blob.digest,
        size: blob.size,
      });
      const read = await streamDigest(await repo.fetchBlob(blob));
      t.deepEqual(read, { digest: blob.digest, size: blob.size }, mode);
    }
    const patches = await registry.requests({ method: 'PATCH', path: UPLOADS });
    t.is(patches.length, Math.ceil(smallBlob(`blob uploaded chunked with ${auth} auth`).size / 7));
  });
}

for (const mode of ['monolithic', 'chunked'] as const) {
  test(`a 64 MiB blob uploaded ${mode} is fetched back and verified`, async (t) => {
    const size = 64 * MiB;
    // A registry of its own: through a view's proxy, 128 MiB would cost more than a start.
    const { registry, client } = await registryWithClient(
      t,
      mode === 'chunked' ? 'basic' : 'token',
    );
    const repo = client.repository(registry.host, `big/${mode}`);
    const source = generated(`big ${mode}`, size);
    const expected = await generatedDescriptor(`big ${mode}`, size);
    await repo.uploadBlob(expected, source, { mode, chunkSize: 16 * MiB });
    t.deepEqual(await streamDigest(await repo.fetchBlob(expected)), expected);
    const patches = await registry.requests({ method: 'PATCH', path: UPLOADS });
    t.is(patches.length, mode === 'chunked' ? 4 : 0);
    const puts = await registry.requests({ method: 'PUT', path: UPLOADS, status: 201 });
    t.is(puts.length, 1);
  });
}

test('an upload whose bytes do not match the digest fails and cancels its session', async (t) => {
  const { registry, client } = withClient(t, await registries.basic(t));
  const repo = client.repository(registry.host, 'up/bad');
  const claimed = smallBlob('the bytes we claim');
  await t.throwsAsync(
    repo.uploadBlob(claimed, () => Readable.from([Buffer.from('other bytes, same size!')])),
    { instanceOf: SizeMismatchError },
  );
  const wrong = Buffer.from('the bytes we cheat');
  t.is(wrong.length, claimed.size);
  for (const mode of ['monolithic', 'chunked'] as const) {
    await t.throwsAsync(
      repo.uploadBlob(claimed, () => Readable.from([wrong]), { mode, chunkSize: 4 }),
      {
        instanceOf: DigestMismatchError,
      },
    );
  }
  t.is(await repo.headBlob(claimed.digest), undefined);
  const cancels = await registry.requests({ method: 'DELETE', path: UPLOADS });
  t.is(cancels.length, 3);
});

test('a failed upload attempt is retried with a new session and a reopened body', async (t) => {
  const busy = { method: 'PUT', path: UPLOADS, times: 1, action: { status: 503, body: 'busy' } };
  const { registry, client } = withClient(t, await registries.basic(t, { rules: [busy] }));
  const repo = client.repository(registry.host, 'up/retry');
  const blob = smallBlob('retried upload');
  let opened = 0;
  await repo.uploadBlob(blob, () => {
    opened++;
    return Readable.from([blob.bytes]);
  });
  t.is(opened, 2);
  t.is((await registry.requests({ method: 'POST', path: UPLOADS })).length, 2);
  t.is((await registry.requests({ method: 'DELETE', path: UPLOADS })).length, 1);
  t.is((await repo.headBlob(blob.digest))?.size, blob.size);
});

/**
 * The registry (the test's view of it) behind a fault proxy, and a client whose second PATCH
 * meets `action` once: the fault is armed when the first chunk has been stored.
 */
async function faultOnSecondChunk(t: ExecutionContext, action: FaultAction) {
  const registry = await registries.none(t);
  const rule = { method: 'PATCH', path: UPLOADS, times: 1, action };
  const proxy = await startFaultProxy(t, registry.url, []);
  const client = clientFor(t, proxy.host, undefined, {
    onRequest: (event) => {
      if (event.method === 'PATCH' && event.status === 202 && proxy.rules.length === 0)
        proxy.rules.push(rule);
    },
  });
  return { registry, proxy, client, fired: () => proxy.hits(rule) };
}

test('a chunked upload resumes from the session status after a 416', async (t) => {
  const { registry, proxy, client, fired } = await faultOnSecondChunk(t, { status: 416 });
  const repo = client.repository(proxy.host, 'up/resume');
  const size = 3 * MiB + 5;
  const expected = await generatedDescriptor('resume', size);
  await repo.uploadBlob(expected, generated('resume', size), { mode: 'chunked', chunkSize: MiB });
  t.is(fired(), 1);
  t.is((await registry.requests({ method: 'GET', path: UPLOADS, status: 204 })).length, 1);
  t.is((await registry.requests({ method: 'PATCH', path: UPLOADS, status: 202 })).length, 4);
  t.is((await registry.requests({ method: 'POST', path: UPLOADS })).length, 1);
  t.deepEqual(await streamDigest(await repo.fetchBlob(expected)), expected);
});

test('a chunked upload whose PATCH answer is lost starts over and completes', async (t) => {
  // distribution's session token carries the offset: once the chunk has landed, the token the
  // lost answer would have replaced is refused, so the session cannot be resumed; start over.
  const { registry, proxy, client, fired } = await faultOnSecondChunk(t, { dropAnswer: true });
  const repo = client.repository(proxy.host, 'up/lost');
  const size = 3 * MiB + 5;
  const expected = await generatedDescriptor('lost', size);
  const source = generated('lost', size);
  let opened = 0;
  const open = () => {
    opened++;
    return source();
  };
  await repo.uploadBlob(expected, open, { mode: 'chunked', chunkSize: MiB });
  t.is(fired(), 1);
  t.is(opened, 2, 'the source was read again for the new session');
  t.is((await registry.requests({ method: 'POST', path: UPLOADS })).length, 2);
  t.is((await registry.requests({ method: 'DELETE', path: UPLOADS })).length, 1);
  t.deepEqual(await streamDigest(await repo.fetchBlob(expected)), expected);
});

test('chunks are at least the OCI-Chunk-Min-Length the registry asks for', async (t) => {
  const registry = await registries.none(t);
  const proxy = await startFaultProxy(t, registry.url, []);
  // What the client sent and got, to tell why if it started over (once, on a busy machine).
  const exchanges: string[] = [];
  const client = clientFor(t, proxy.host, undefined, {
    onRequest: (e) => exchanges.push(`${e.method} ${e.url} -> ${e.status || 'no response'}`),
  });
  const repo = client.repository(proxy.host, 'up/min');
  // A real session, handed out by the proxy together with a minimum chunk length.
  const opened = await fetch(`${registry.url}/v2/up/min/blobs/uploads/`, { method: 'POST' });
  const location = new URL(opened.headers.get('location') ?? '', registry.url);
  proxy.rules.push({
    method: 'POST',
    path: UPLOADS,
    times: 1,
    action: {
      status: 202,
      headers: {
        location: `${proxy.url}${location.pathname}${location.search}`,
        'oci-chunk-min-length': String(3 * MiB),
      },
    },
  });
  const size = 8 * MiB;
  const expected = await generatedDescriptor('min', size);
  await repo.uploadBlob(expected, generated('min', size), { mode: 'chunked', chunkSize: MiB });
  const patches = await registry.requests({ method: 'PATCH', path: UPLOADS });
  t.is(patches.length, 3, exchanges.join('\n'));
  t.deepEqual(await streamDigest(await repo.fetchBlob(expected)), expected);
});

test('relative upload Locations are resolved against the request and used as given', async (t) => {
  const { registry, client } = await registryWithClient(t, 'token', { relativeUrls: true });
  const repo = client.repository(registry.host, 'up/relative');
  for (const mode of ['monolithic', 'chunked'] as const) {
    const blob = smallBlob(`relative ${mode}`);
    await repo.uploadBlob(blob, () => Readable.from([blob.bytes]), { mode, chunkSize: 5 });
    t.is((await repo.headBlob(blob.digest))?.digest, blob.digest);
  }
  const puts = await registry.requests({ method: 'PUT', path: UPLOADS, status: 201 });
  t.is(puts.length, 2);
  // Every PUT carried the session state query the registry issued, plus our digest.
  for (const put of puts) t.regex(put.query, /_state=.*&digest=sha256%3A/);
});

test('an empty blob uploads and reads back', async (t) => {
  const { registry, client } = withClient(t, await registries.none());
  const repo = client.repository(registry.host, 'up/empty');
  const empty = { digest: `sha256:${createHash('sha256').digest('hex')}`, size: 0 };
  await repo.uploadBlob(empty, () => Readable.from([]));
  t.deepEqual(await streamDigest(await repo.fetchBlob(empty)), empty);
});
