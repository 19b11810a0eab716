import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { copy, RegistryTarget } from '../../src/copy/index.ts';
import { LayoutStore, REF_NAME } from '../../src/layout/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { resolve } from '../../src/remote/resolve.ts';
import { pushFixture } from '../helpers/fixtures.ts';
import { pushReferrer, SIGNATURE_TYPE } from '../helpers/referrers.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { writeImage } from './support/image.ts';
import { tempDir, tree } from './support/tmp.ts';

const run = promisify(execFile);
const SBOM_TYPE = 'application/spdx+json';
const BLOB_GET = /\/blobs\/sha256:/;

function client(t: { teardown(fn: () => Promise<void>): void }): RegistryClient {
  const c = new RegistryClient();
  t.teardown(() => c.close());
  return c;
}

/** The registry of every test here; each test has repositories of its own. */
const shared = sharedRegistry(test);

test('referrers survive registry -> layout -> registry, recorded as unnamed index.json entries', async (t) => {
  const from = await shared();
  const to = await shared(t);
  const c = client(t);
  const pushed = await pushFixture(from, 'oci-image', 'round-trip/signed');
  const source = new RegistryTarget(c.repository(from.host, 'round-trip/signed'));
  const signature = await pushReferrer(source, pushed);
  const sbom = await pushReferrer(source, pushed, { artifactType: SBOM_TYPE, payload: 'sbom' });
  const sbomSize =
    (await c.repository(from.host, 'round-trip/signed').headManifest(sbom))?.size ?? 0;
  const sbomSignature = await pushReferrer(
    source,
    { digest: sbom, size: sbomSize },
    { payload: 'signed sbom' },
  );

  const dir = join(await tempDir(t), 'layout');
  const image = await resolve(`${from.host}/round-trip/signed:v1`, { client: c });
  await copy(image, `oci:${dir}:v1`, { client: c, referrers: true });

  const store = await LayoutStore.open(dir, { create: false });
  const entries = (await store.index()).manifests;
  t.deepEqual(
    entries
      .filter((e) => e.annotations?.[REF_NAME] === undefined)
      .map((e) => e.digest)
      .sort(),
    [signature, sbom, sbomSignature].sort(),
    'every referrer has an entry without a name',
  );
  t.deepEqual(
    (await store.referrers(pushed.digest)).map((d) => [d.digest, d.artifactType]).sort(),
    [
      [signature, SIGNATURE_TYPE],
      [sbom, SBOM_TYPE],
    ].sort(),
  );
  t.deepEqual(
    (await store.referrers(sbom)).map((d) => d.digest),
    [sbomSignature],
  );
  t.deepEqual((await store.gc()).deleted, [], 'referrers and their blobs are reachable');
  const info = JSON.parse(
    (await run('skopeo', ['--insecure-policy', 'inspect', `oci:${dir}:v1`])).stdout,
  );
  t.is(info.Digest, pushed.digest, 'skopeo still reads the layout');
  t.is(
    (await resolve(`oci:${dir}`)).digest,
    pushed.digest,
    'oci:DIR without a tag still names the one image',
  );

  const back = await resolve(`oci:${dir}:v1`);
  await copy(back, `${to.host}/round-trip/mirror:v1`, { client: c, referrers: true });
  const mirror = c.repository(to.host, 'round-trip/mirror');
  t.deepEqual(
    (await mirror.referrers(pushed.digest)).map((d) => d.digest).sort(),
    [signature, sbom].sort(),
  );
  t.deepEqual(
    (await mirror.referrers(sbom)).map((d) => d.digest),
    [sbomSignature],
  );
  for (const digest of [signature, sbom, sbomSignature]) {
    t.is((await mirror.headManifest(digest))?.digest, digest);
  }
});

test('a wrong file under a blob name in the destination layout is replaced, not skipped', async (t) => {
  const registry = await shared();
  const c = client(t);
  const pushed = await pushFixture(registry, 'oci-image', 'wrong-file/one');
  const dir = join(await tempDir(t), 'layout');
  const store = await LayoutStore.open(dir);
  const [layer = '', other = ''] = pushed.blobs;
  await mkdir(join(dir, 'blobs', 'sha256'));
  const garbage = join(dir, 'blobs', 'sha256', layer.slice('sha256:'.length));
  await writeFile(garbage, 'garbage!');
  // A manifest file of the right size but other bytes: a size check cannot tell, bytes can.
  const manifestPath = join(dir, 'blobs', 'sha256', pushed.digest.slice('sha256:'.length));
  await writeFile(manifestPath, Buffer.alloc(pushed.size, 0x20));
  const image = await resolve(`${registry.host}/wrong-file/one:v1`, { client: c });
  const result = await copy(image, `oci:${dir}:v1`, { client: c });
  t.is(result.blobs.skipped, 0);
  t.is(result.blobs.uploaded, pushed.blobs.length);
  for (const digest of [layer, other, pushed.digest]) {
    await t.notThrowsAsync(store.readBytes(digest), `${digest} is whole`);
  }
  t.deepEqual(
    (await tree(join(dir, 'blobs'))).filter((name) => name.includes('.tmp-')),
    [],
  );
  const again = await copy(image, `oci:${dir}:v1`, { client: c });
  t.is(again.blobs.skipped, pushed.blobs.length, 'the right blobs are then skipped');
});

test('a directory with a foreign index.json is refused before any download or write', async (t) => {
  const registry = await shared(t);
  const c = client(t);
  await pushFixture(registry, 'oci-image', 'foreign/one');
  const dir = await tempDir(t);
  const foreign = JSON.stringify({ name: 'some-project', version: '1.0.0' });
  await writeFile(join(dir, 'index.json'), foreign);
  const image = await resolve(`${registry.host}/foreign/one:v1`, { client: c });
  const mark = await registry.mark();
  await t.throwsAsync(copy(image, `oci:${dir}:v1`, { client: c }), {
    code: 'LAYOUT_INVALID',
    message: /index\.json: .*not an OCI image layout, nothing was written/,
  });
  t.deepEqual(await readdir(dir), ['index.json']);
  t.is(await readFile(join(dir, 'index.json'), 'utf8'), foreign);
  t.deepEqual(await registry.requests({ method: 'GET', path: BLOB_GET, since: mark }), []);
});

test('a layout to layout copy of many blobs adds no listener per blob to the signal', async (t) => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const root = await tempDir(t);
  const source = await LayoutStore.open(join(root, 'src'));
  const layers = Array.from({ length: 24 }, (_, i) => Buffer.from(`layer ${i}`));
  const image = await writeImage(source, layers);
  await source.putTag('v1', image.manifest);
  const remote = await resolve(`oci:${source.dir}:v1`);
  const controller = new AbortController();
  const withSignal = await copy(remote, `oci:${join(root, 'a')}:v1`, {
    signal: controller.signal,
  });
  const withoutSignal = await copy(remote, `oci:${join(root, 'b')}:v1`, { concurrency: 16 });
  for (const result of [withSignal, withoutSignal]) t.is(result.blobs.uploaded, 25);
  // Warnings are emitted on a later tick.
  await new Promise((done) => setImmediate(done));
  t.deepEqual(
    warnings.map((w) => `${w.name}: ${w.message}`),
    [],
  );
});

test('unlazy into a layout replaces a wrong file under a blob name', async (t) => {
  const root = await tempDir(t);
  const source = await LayoutStore.open(join(root, 'src'));
  const written = await writeImage(source);
  await source.putTag('v1', written.manifest);
  const image = await resolve(`oci:${source.dir}:v1`);
  const store = await LayoutStore.open(join(root, 'dst'));
  const layer = written.layers[0]?.digest ?? '';
  await mkdir(join(store.dir, 'blobs', 'sha256'));
  await writeFile(join(store.dir, 'blobs', 'sha256', layer.slice('sha256:'.length)), 'garbage!');
  await image.unlazy(store, { tag: 'v1' });
  await t.notThrowsAsync(store.readBytes(layer));
});
