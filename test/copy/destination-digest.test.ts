import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { buildIndex, copy } from '../../src/copy/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry, type WatchedRegistry } from '../helpers/registry.ts';

const OTHER_DIGEST = `sha256:${'0'.repeat(64)}`;
/** The registry of every test here, sources and destinations in repositories of each test's own. */
const shared = sharedRegistry(test);

function client(t: ExecutionContext): RegistryClient {
  const c = new RegistryClient();
  t.teardown(() => c.close());
  return c;
}

/** Requests since `mark` that write: uploads, mounts, manifest PUTs. */
async function writes(registry: WatchedRegistry, mark: number) {
  const all = await registry.requests({ since: mark });
  return all.filter((r) => !['GET', 'HEAD'].includes(r.method));
}

test('a destination @digest the source does not have is refused before any write', async (t) => {
  const from = await shared();
  const to = await shared(t);
  const pushed = await pushFixture(from, 'oci-image', 'refused/src');
  const c = client(t);
  const source = await resolve(`${from.host}/refused/src:v1`, { client: c });
  const mark = await to.mark();
  await t.throwsAsync(copy(source, `${to.host}/refused/dst@${OTHER_DIGEST}`, { client: c }), {
    code: 'DESTINATION_DIGEST_MISMATCH',
    message: `${to.host}/refused/dst@${OTHER_DIGEST} names ${OTHER_DIGEST}, but the source is ${pushed.digest} and a copy keeps its digest; drop the digest or name the source's`,
  });
  t.deepEqual(await writes(to, mark), []);
  const dir = path.join(await mkdtemp(path.join(tmpdir(), 'ociferry-digest-')), 'layout');
  t.teardown(() => rm(path.dirname(dir), { recursive: true, force: true }));
  await t.throwsAsync(copy(source, `oci:${dir}@${OTHER_DIGEST}`, { client: c }), {
    code: 'DESTINATION_DIGEST_MISMATCH',
  });
  t.false(existsSync(dir), 'no layout was created');
  const copied = await copy(source, `${to.host}/refused/dst@${pushed.digest}`, { client: c });
  t.is(copied.digest, pushed.digest);
});

test('with --oci-mediatypes the digest checked is the converted one, list and children alike, before any write', async (t) => {
  const from = await shared();
  const to = await shared(t);
  await pushFixture(from, 'docker-image', 'converted/amd64');
  await pushFixture(from, 'docker-image-arm64', 'converted/arm64');
  const c = client(t);
  const images = await Promise.all(
    ['amd64', 'arm64'].map((arch) => resolve(`${from.host}/converted/${arch}:v1`, { client: c })),
  );
  const list = await buildIndex(`${from.host}/converted/list:v1`, images, { client: c });
  const source = await resolve(`${from.host}/converted/list:v1`, { client: c });
  t.is(source.digest, list.digest);

  const mark = await to.mark();
  const error = await t.throwsAsync(
    copy(source, `${to.host}/converted/dst@${list.digest}`, { client: c, ociMediatypes: true }),
    { code: 'DESTINATION_DIGEST_MISMATCH' },
  );
  t.regex(
    error?.message ?? '',
    /but converted to OCI media types the copy is sha256:[0-9a-f]{64};/,
  );
  t.deepEqual(await writes(to, mark), [], 'nothing was written to the destination');

  const converted = /the copy is (sha256:[0-9a-f]{64})/.exec(error?.message ?? '')?.[1] ?? '';
  const copied = await copy(source, `${to.host}/converted/dst@${converted}`, {
    client: c,
    ociMediatypes: true,
  });
  t.is(copied.digest, converted, 'the digest announced is the one the copy produces');
});

test('an index build whose destination names another digest is refused before any write', async (t) => {
  const from = await shared();
  const to = await shared(t);
  await pushFixture(from, 'docker-image', 'index/amd64');
  await pushFixture(from, 'docker-image-arm64', 'index/arm64');
  const c = client(t);
  const images = await Promise.all(
    ['amd64', 'arm64'].map((arch) => resolve(`${from.host}/index/${arch}:v1`, { client: c })),
  );
  const mark = await to.mark();
  const error = await t.throwsAsync(
    buildIndex(`${to.host}/index/list@${OTHER_DIGEST}`, images, { client: c, ociMediatypes: true }),
    { code: 'DESTINATION_DIGEST_MISMATCH' },
  );
  t.deepEqual(await writes(to, mark), [], 'no child manifest or blob was pushed');
  const built = /the index built is (sha256:[0-9a-f]{64});/.exec(error?.message ?? '')?.[1] ?? '';
  const list = await buildIndex(`${to.host}/index/list@${built}`, images, {
    client: c,
    ociMediatypes: true,
  });
  t.is(list.digest, built, 'the digest announced is the one the build produces');
  t.true(list.blobs.uploaded > 0, 'the blobs went up');
});
