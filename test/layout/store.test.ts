import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import test from 'ava';
import { digestBytes } from '../../src/digest/index.ts';
import { type Descriptor, IMAGE_NAME, LayoutStore, REF_NAME } from '../../src/layout/index.ts';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/index.ts';
import { canMountReadOnly, spawnSupport, succeeded } from './support/child.ts';
import { writeImage } from './support/image.ts';
import { tempDir, tree } from './support/tmp.ts';

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8'));
}

function named(desc: Descriptor, annotations: Record<string, string>): Descriptor {
  return { ...desc, annotations };
}

test('open creates oci-layout, an empty index.json and blobs/', async (t) => {
  const dir = join(await tempDir(t), 'new', 'layout');
  const store = await LayoutStore.open(dir);
  t.is(store.dir, dir);
  t.deepEqual(await readJson(join(dir, 'oci-layout')), { imageLayoutVersion: '1.0.0' });
  t.deepEqual(await readJson(join(dir, 'index.json')), {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [],
  });
  t.true((await stat(join(dir, 'blobs'))).isDirectory());
  t.deepEqual(await tree(dir), ['blobs', 'index.json', 'oci-layout']);
});

test('open without create refuses a directory that is not a layout', async (t) => {
  const dir = await tempDir(t);
  await t.throwsAsync(LayoutStore.open(dir, { create: false }), { code: 'LAYOUT_INVALID' });
  t.deepEqual(await tree(dir), []);
});

test('open refuses an unsupported imageLayoutVersion', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
  await t.throwsAsync(LayoutStore.open(dir), { code: 'LAYOUT_INVALID', message: /2\.0\.0/ });
});

test('a malformed index.json is reported as LAYOUT_INVALID', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const index = join(store.dir, 'index.json');
  const good = { mediaType: OCI_MANIFEST, digest: `sha256:${'a'.repeat(64)}`, size: 1 };
  const cases: Array<[string, RegExp]> = [
    ['{"schemaVersion":2,', /not valid JSON/],
    ['[]', /not a JSON object/],
    ['{"schemaVersion":1,"manifests":[]}', /schemaVersion/],
    ['{"schemaVersion":2}', /manifests/],
    [JSON.stringify({ schemaVersion: 2, manifests: [{ ...good, size: -1 }] }), /size/],
    [
      JSON.stringify({ schemaVersion: 2, manifests: [{ ...good, digest: 'sha256:../../x' }] }),
      /digest/,
    ],
    [
      JSON.stringify({ schemaVersion: 2, manifests: [{ ...good, annotations: { a: 1 } }] }),
      /annotations/,
    ],
  ];
  for (const [content, message] of cases) {
    await writeFile(index, content);
    await t.throwsAsync(store.index(), { code: 'LAYOUT_INVALID', message }, content);
    await t.throwsAsync(store.tags(), { code: 'LAYOUT_INVALID' }, content);
  }
});

test('putting a tag again replaces the entry that held it', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const a = await writeImage(store, [Buffer.from('a')]);
  const b = await writeImage(store, [Buffer.from('b')]);
  await store.putTag('v1', a.manifest);
  await store.putTag('stable', a.manifest);
  await store.putTag('v1', b.manifest);
  t.is((await store.resolveTag('v1'))?.digest, b.manifest.digest);
  t.is((await store.resolveTag('stable'))?.digest, a.manifest.digest);
  t.deepEqual(await store.tags(), ['stable', 'v1']);
  const { manifests } = await store.index();
  t.deepEqual(manifests, [
    named(a.manifest, { [REF_NAME]: 'stable' }),
    named(b.manifest, { [REF_NAME]: 'v1' }),
  ]);
});

test('putTag refuses invalid tags, missing blobs and wrong sizes', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const image = await writeImage(store);
  for (const tag of ['', 'a b', '-lead', 'trail-', 'a//b', '../x', 'tag\n']) {
    await t.throwsAsync(store.putTag(tag, image.manifest), { code: 'TAG_INVALID' }, tag);
  }
  const missing = { ...image.manifest, digest: `sha256:${'0'.repeat(64)}` };
  await t.throwsAsync(store.putTag('v1', missing), { code: 'BLOB_UNKNOWN' });
  await t.throwsAsync(store.putTag('v1', { ...image.manifest, size: 1 }), {
    code: 'SIZE_MISMATCH',
  });
  await t.throwsAsync(store.putTag('v1', { ...image.manifest, digest: 'sha256:../x' }), {
    code: 'LAYOUT_INVALID',
  });
  t.deepEqual(await store.tags(), []);
  for (const tag of ['latest', 'v1.2.3-rc.1', 'docker.io/library/alpine:3.20', 'a--b', 'x@y+z']) {
    await store.putTag(tag, image.manifest);
  }
  t.is((await store.tags()).length, 5);
});

test('tags are looked up by io.containerd.image.name before ref.name', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const a = await writeImage(store, [Buffer.from('a')]);
  const b = await writeImage(store, [Buffer.from('b')]);
  await writeFile(
    join(store.dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        named(a.manifest, { [REF_NAME]: 'app' }),
        named(b.manifest, { [IMAGE_NAME]: 'app' }),
        named(b.manifest, { [IMAGE_NAME]: 'docker.io/library/web:1', [REF_NAME]: '1' }),
      ],
    }),
  );
  t.is((await store.resolveTag('app'))?.digest, b.manifest.digest);
  t.is((await store.resolveTag('docker.io/library/web:1'))?.digest, b.manifest.digest);
  t.is((await store.resolveTag('1'))?.digest, b.manifest.digest);
  t.is(await store.resolveTag('nope'), undefined);
  t.deepEqual(await store.tags(), ['app', 'docker.io/library/web:1', '1']);
});

test('removing one name of an entry keeps its other; removing the last drops it', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const image = await writeImage(store);
  await writeFile(
    join(store.dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        named(image.manifest, { [IMAGE_NAME]: 'docker.io/library/web:1', [REF_NAME]: '1', x: 'y' }),
      ],
    }),
  );
  t.true(await store.removeTag('1'));
  t.deepEqual((await store.index()).manifests, [
    named(image.manifest, { [IMAGE_NAME]: 'docker.io/library/web:1', x: 'y' }),
  ]);
  t.false(await store.removeTag('1'));
  t.true(await store.removeTag('docker.io/library/web:1'));
  t.deepEqual((await store.index()).manifests, []);
});

test('a tag put over a containerd name takes the name from the old entry', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const a = await writeImage(store, [Buffer.from('a')]);
  const b = await writeImage(store, [Buffer.from('b')]);
  await writeFile(
    join(store.dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [named(a.manifest, { [IMAGE_NAME]: 'app' })] }),
  );
  await store.putTag('app', {
    ...b.manifest,
    annotations: { [REF_NAME]: 'from-elsewhere', k: 'v' },
  });
  t.deepEqual((await store.index()).manifests, [named(b.manifest, { k: 'v', [REF_NAME]: 'app' })]);
});

test('addManifest adds an untagged entry once, and putTag folds it into the tag', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const image = await writeImage(store);
  await store.addManifest(image.manifest);
  await store.addManifest(image.manifest);
  t.deepEqual((await store.index()).manifests, [image.manifest]);
  await store.putTag('v1', image.manifest);
  t.deepEqual((await store.index()).manifests, [named(image.manifest, { [REF_NAME]: 'v1' })]);
  await store.addManifest(image.manifest);
  t.is((await store.index()).manifests.length, 1);
});

test('index updates keep fields written by other tools', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const a = await writeImage(store, [Buffer.from('a')]);
  const b = await writeImage(store, [Buffer.from('b')]);
  await writeFile(
    join(store.dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      annotations: { 'org.example.owner': 'ci' },
      manifests: [{ ...a.manifest, 'x-vendor': { keep: true }, annotations: { [REF_NAME]: 'a' } }],
    }),
  );
  await store.putTag('b', b.manifest);
  const index = (await readJson(join(store.dir, 'index.json'))) as Record<string, unknown>;
  t.deepEqual(index.annotations, { 'org.example.owner': 'ci' });
  t.deepEqual((index.manifests as unknown[])[0], {
    ...a.manifest,
    'x-vendor': { keep: true },
    annotations: { [REF_NAME]: 'a' },
  });
});

test('reads work where the lock cannot be taken, and never write', async (t) => {
  const dir = await tempDir(t);
  const writer = await LayoutStore.open(dir);
  const image = await writeImage(writer);
  await writer.putTag('v1', image.manifest);
  // A directory where the lock file would go: any attempt to lock fails, as on a read-only store.
  await mkdir(join(dir, 'index.json.lock'));
  const before = await tree(dir);
  const mtimes = await Promise.all(before.map(async (p) => (await stat(join(dir, p))).mtimeMs));

  const reader = await LayoutStore.open(dir, { lockTimeoutMs: 200 });
  t.deepEqual(await reader.tags(), ['v1']);
  t.is((await reader.resolveTag('v1'))?.digest, image.manifest.digest);
  t.is((await reader.index()).manifests.length, 1);
  t.true(await reader.has(image.config.digest));
  t.truthy(await reader.readBytes(image.manifest.digest));
  t.truthy(await text(reader.readBlob(image.config.digest)));
  await LayoutStore.open(dir, { create: false });

  t.deepEqual(await tree(dir), before);
  t.deepEqual(
    await Promise.all(before.map(async (p) => (await stat(join(dir, p))).mtimeMs)),
    mtimes,
  );
  await t.throwsAsync(reader.putTag('v2', image.manifest), { code: 'LOCK_TIMEOUT' });
});

const readOnlyTest = canMountReadOnly ? test : test.skip;

readOnlyTest('a store on a read-only filesystem reads, and writes fail with EROFS', async (t) => {
  const dir = await tempDir(t);
  const writer = await LayoutStore.open(dir);
  const image = await writeImage(writer);
  await writer.putTag('v1', image.manifest);
  const before = await tree(dir);
  const output = await succeeded(
    spawnSupport('read-only-reader.ts', [dir, 'v1'], { readOnly: dir }),
  );
  t.deepEqual(JSON.parse(output), {
    tags: ['v1'],
    digest: image.manifest.digest,
    bytes: image.manifest.size,
    write: 'EROFS',
  });
  t.deepEqual(await tree(dir), before);
});

readOnlyTest('a read-only layout without index.json opens and reads as empty', async (t) => {
  const dir = await tempDir(t);
  await LayoutStore.open(dir);
  await rm(join(dir, 'index.json'));
  const output = await succeeded(
    spawnSupport('read-only-reader.ts', [dir, 'v1'], { readOnly: dir }),
  );
  t.deepEqual(JSON.parse(output), { tags: [], write: 'BLOB_UNKNOWN' });
  t.deepEqual(await tree(dir), ['blobs', 'oci-layout']);
});

test('a blob of many MiB streams in chunks, flushed on the way, and lands whole', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const chunk = randomBytes(64 * 1024);
  const count = 400; // 25 MiB: several early flushes on the way
  const whole = Buffer.concat(Array.from({ length: count }, () => chunk));
  const digest = digestBytes(whole);
  const progress: number[] = [];
  const written = await store.writeBlob(
    { digest, size: whole.length },
    () => Readable.from(Array.from({ length: count }, () => chunk)),
    { onProgress: (bytes) => progress.push(bytes) },
  );
  t.true(written);
  t.is(progress.at(-1), whole.length);
  t.true((await readFile(join(dir, 'blobs', 'sha256', digest.slice(7)))).equals(whole));
});
