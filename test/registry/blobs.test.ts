import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import test, { type ExecutionContext } from 'ava';
import { DigestMismatchError } from '../../src/digest/index.ts';
import { RegistryError } from '../../src/registry/errors.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import type { AuthMode } from '../helpers/registry.ts';
import {
  ALICE_PASSWORD,
  clientFor,
  generated,
  generatedDescriptor,
  registriesPerAuth,
  smallBlob,
  streamDigest,
  withClient,
} from './_support.ts';

const MiB = 1024 * 1024;
const BLOB_GET = /\/blobs\/sha256:/;

/** One registry per auth mode for every test here; each test reads or writes a repository of its own. */
const registries = registriesPerAuth(test);
const BIG_REPO = 'blobs/big';
const bigBlobs = new Map<AuthMode, Promise<{ digest: string; size: number }>>();

/** The 4 MiB blob in `blobs/big` of the `auth` registry, uploaded by the first test that asks. */
function bigBlob(t: ExecutionContext, auth: AuthMode): Promise<{ digest: string; size: number }> {
  let uploaded = bigBlobs.get(auth);
  if (uploaded === undefined) {
    uploaded = (async () => {
      const { registry, client } = withClient(t, await registries[auth]());
      const size = 4 * MiB;
      const blob = await generatedDescriptor('proxied', size);
      await client.repository(registry.host, BIG_REPO).uploadBlob(blob, generated('proxied', size));
      return blob;
    })();
    bigBlobs.set(auth, uploaded);
  }
  return uploaded;
}

/** The registry in `auth` mode with a 4 MiB blob in `blobs/big`, behind a fault proxy of the test's own. */
async function proxiedBlob(t: ExecutionContext, auth: AuthMode) {
  const blob = await bigBlob(t, auth);
  const registry = await registries[auth]();
  const proxy = await startFaultProxy(t, registry.url, []);
  const credential =
    auth === 'none'
      ? undefined
      : ({ kind: 'basic', username: 'alice', password: ALICE_PASSWORD } as const);
  const client = clientFor(t, proxy.host, credential);
  const repo = client.repository(proxy.host, BIG_REPO);
  return { registry, proxy, client, repo, blob };
}

for (const auth of ['none', 'basic', 'token'] as const) {
  test(`blob HEAD, GET, ranged GET and DELETE with ${auth} auth`, async (t) => {
    const { registry, client } = withClient(t, await registries[auth]());
    const repo = client.repository(registry.host, 'blobs/crud');
    const blob = smallBlob('0123456789abcdef');
    t.is(await repo.headBlob(blob.digest), undefined);
    await repo.uploadBlob(blob, () => Readable.from([blob.bytes]));
    t.is((await repo.headBlob(blob.digest))?.size, 16);
    t.deepEqual(await streamDigest(await repo.fetchBlob({ digest: blob.digest })), {
      digest: blob.digest,
      size: 16,
    });
    const part = await repo.fetchBlob(blob, { range: { start: 4, end: 9 } });
    t.is(Buffer.concat(await part.toArray()).toString(), '456789');
    await repo.deleteBlob(blob.digest);
    t.is(await repo.headBlob(blob.digest), undefined);
    const err = await t.throwsAsync(repo.fetchBlob(blob), { instanceOf: RegistryError });
    t.is(err?.code, 'BLOB_UNKNOWN');
  });
}

for (const fault of ['resetAfterBytes', 'truncateAfterBytes'] as const) {
  test(`a blob download cut by ${fault} resumes with Range and is still verified`, async (t) => {
    const { proxy, repo, blob } = await proxiedBlob(t, 'token');
    const rule = {
      method: 'GET',
      path: BLOB_GET,
      times: 1,
      action: { [fault]: MiB } as { resetAfterBytes: number },
    };
    proxy.rules.push(rule);
    t.deepEqual(await streamDigest(await repo.fetchBlob(blob)), blob);
    t.is(proxy.hits(rule), 1);
    const gets = proxy.forwarded.filter((r) => r.method === 'GET' && BLOB_GET.test(r.path));
    t.is(gets.length, 2);
    t.is(gets[0]?.headers.range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(String(gets[1]?.headers.range))?.[1]);
    t.true(resumedAt > 0 && resumedAt <= MiB, `resumed at ${resumedAt}`);
  });
}

test('a blob download whose size is unknown also resumes after a reset', async (t) => {
  const { proxy, repo, blob } = await proxiedBlob(t, 'none');
  proxy.rules.push({ method: 'GET', path: BLOB_GET, times: 2, action: { resetAfterBytes: MiB } });
  t.deepEqual(await streamDigest(await repo.fetchBlob({ digest: blob.digest })), blob);
});

test('a corrupted byte fails the download with DigestMismatchError before the stream ends', async (t) => {
  const { proxy, repo, blob } = await proxiedBlob(t, 'basic');
  proxy.rules.push({ method: 'GET', path: BLOB_GET, action: { flipByteAt: 3 * MiB } });
  const stream = await repo.fetchBlob(blob);
  let ended = false;
  stream.on('end', () => {
    ended = true;
  });
  let received = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      callback();
    },
  });
  const err = await t.throwsAsync(pipeline(stream, sink), { instanceOf: DigestMismatchError });
  t.is(err?.expected, blob.digest);
  t.false(ended);
  t.false(sink.writableFinished);
  t.true(received <= blob.size);
});

test('a blob redirected to a CDN is fetched there without the registry credentials', async (t) => {
  const { proxy, repo, blob } = await proxiedBlob(t, 'basic');
  const rule = { method: 'GET', path: BLOB_GET, action: { redirectToCdn: true as const } };
  proxy.rules.push(rule);
  t.deepEqual(await streamDigest(await repo.fetchBlob(blob)), blob);
  t.is(proxy.hits(rule), 1);
  const atRegistry = proxy.forwarded.filter((r) => r.method === 'GET' && BLOB_GET.test(r.path));
  t.regex(String(atRegistry.at(-1)?.headers.authorization), /^Basic /);
  t.is(proxy.cdn.requests.length, 1);
  t.is(proxy.cdn.requests[0]?.headers.authorization, undefined);
});

test('a redirected download that resets resumes through a fresh redirect', async (t) => {
  const { proxy, repo, blob } = await proxiedBlob(t, 'token');
  proxy.rules.push(
    { at: 'cdn', method: 'GET', times: 1, action: { resetAfterBytes: 2 * MiB } },
    { method: 'GET', path: BLOB_GET, action: { redirectToCdn: true, status: 302 } },
  );
  t.deepEqual(await streamDigest(await repo.fetchBlob(blob)), blob);
  t.is(proxy.cdn.requests.length, 2);
  t.regex(String(proxy.cdn.requests[1]?.headers.range), /^bytes=\d+-$/);
  for (const request of proxy.cdn.requests) t.is(request.headers.authorization, undefined);
});

test('a download that keeps failing without progress gives up after the retry attempts', async (t) => {
  const { proxy, repo, blob } = await proxiedBlob(t, 'none');
  const reset = { method: 'GET', path: BLOB_GET, times: 1, action: { resetAfterBytes: MiB } };
  const unavailable = { method: 'GET', path: BLOB_GET, action: { status: 503 } };
  proxy.rules.push(reset, unavailable);
  const stream = await repo.fetchBlob(blob);
  const err = await t.throwsAsync(streamDigest(stream), { instanceOf: RegistryError });
  t.is(err?.status, 503);
  // Five attempts in all: the cut one and four resumes that made no progress.
  t.is(proxy.hits(unavailable), 4);
});

test('a download that keeps making progress is resumed as often as it takes', async (t) => {
  const { proxy, repo, blob } = await proxiedBlob(t, 'none');
  const rule = {
    method: 'GET',
    path: BLOB_GET,
    times: 12,
    action: { resetAfterBytes: 256 * 1024 },
  };
  proxy.rules.push(rule);
  t.deepEqual(await streamDigest(await repo.fetchBlob(blob)), blob);
  t.is(proxy.hits(rule), 12);
});

test('aborting a download mid-stream fails the stream with the abort reason', async (t) => {
  const { repo, blob } = await proxiedBlob(t, 'none');
  const controller = new AbortController();
  const stream = await repo.fetchBlob(blob, { signal: controller.signal });
  let received = 0;
  const err = await t.throwsAsync(
    (async () => {
      for await (const chunk of stream) {
        received += (chunk as Buffer).length;
        controller.abort(new Error('enough'));
      }
    })(),
  );
  t.is(err?.message, 'enough');
  t.true(received < blob.size);
});
