import { readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { reachable } from '../../src/layout/gc.ts';
import { type Descriptor, LayoutStore } from '../../src/layout/index.ts';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../src/oci/index.ts';
import { killHard, startSlowWriter } from './support/child.ts';
import { describe, putJson, writeImage } from './support/image.ts';
import { tempDir } from './support/tmp.ts';

async function storedDigests(store: LayoutStore): Promise<string[]> {
  const names = await readdir(join(store.dir, 'blobs', 'sha256'));
  return names
    .filter((n) => !n.startsWith('.'))
    .map((n) => `sha256:${n}`)
    .sort();
}

async function putBlob(
  store: LayoutStore,
  content: string,
  mediaType = 'application/octet-stream',
) {
  const bytes = Buffer.from(content);
  const desc = describe(mediaType, bytes);
  await store.writeBytes(desc, bytes);
  return desc;
}

function sizes(descs: readonly Descriptor[]): number {
  return descs.reduce((sum, d) => sum + d.size, 0);
}

test('gc deletes exactly the blobs no index entry reaches, shared layers survive', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const shared = Buffer.from('shared base layer');
  const amd64 = await writeImage(store, [shared, Buffer.from('amd64 top')], 'amd64');
  const arm64 = await writeImage(store, [shared, Buffer.from('arm64 top')], 'arm64');
  const multi = await putJson(store, OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm64.manifest, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  });
  const old = await writeImage(store, [shared, Buffer.from('old top')]);
  const orphan = await putBlob(store, 'never referenced');
  await store.putTag('multi', multi);
  await store.putTag('old', old.manifest);
  await store.removeTag('old');

  const before = await storedDigests(store);
  const result = await store.gc();
  const gone = [old.manifest, old.config, old.layers[1] as Descriptor, orphan];
  t.deepEqual(result.deleted, gone.map((d) => d.digest).sort());
  t.is(result.bytesFreed, sizes(gone));
  t.is(result.tempFilesRemoved, 0);
  t.deepEqual(
    await storedDigests(store),
    before.filter((d) => !result.deleted.includes(d)),
  );
  for (const image of [amd64, arm64]) {
    for (const d of [image.manifest, image.config, ...image.layers]) {
      t.true(await store.has(d.digest));
    }
  }
  t.deepEqual(await store.gc(), { deleted: [], bytesFreed: 0, tempFilesRemoved: 0 });
});

test('gc treats unknown media types as leaves, follows subject, blobs and docker types', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const behindLeaf = await putBlob(store, 'only named inside a leaf');
  const leaf = await putJson(store, 'application/vnd.example.thing+json', {
    layers: [behindLeaf],
  });
  const subject = await writeImage(store, [Buffer.from('signed image')]);
  const sbom = await putBlob(store, 'sbom', 'application/spdx+json');
  const referrer = await putJson(store, OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: 'application/spdx+json',
    config: await putJson(store, 'application/vnd.oci.empty.v1+json', {}),
    layers: [],
    blobs: [sbom],
    subject: subject.manifest,
  });
  const dockerLayer = await putBlob(
    store,
    'docker layer',
    'application/vnd.docker.image.rootfs.diff.tar.gzip',
  );
  const dockerConfig = await putBlob(store, '{}', 'application/vnd.docker.container.image.v1+json');
  const dockerManifest = await putJson(store, DOCKER_MANIFEST, {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: dockerConfig,
    layers: [dockerLayer],
  });
  const dockerList = await putJson(store, DOCKER_MANIFEST_LIST, {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_LIST,
    manifests: [dockerManifest],
  });
  await store.putTag('leaf', leaf);
  await store.putTag('sbom', referrer);
  await store.putTag('docker', dockerList);

  const result = await store.gc();
  t.deepEqual(result.deleted, [behindLeaf.digest]);
  for (const d of [
    subject.manifest,
    subject.config,
    ...subject.layers,
    sbom,
    dockerLayer,
    dockerConfig,
  ]) {
    t.true(await store.has(d.digest), d.mediaType);
  }
});

test('gc walks shared subgraphs once (visited set), even when paths are exponential', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  // 30 levels of two indexes, each pointing at both of the next level: 2^30 paths, 60 nodes.
  let level = [await putBlob(store, 'bottom-a'), await putBlob(store, 'bottom-b')];
  for (let depth = 0; depth < 30; depth++) {
    const next: Descriptor[] = [];
    for (const side of ['a', 'b']) {
      next.push(
        await putJson(store, OCI_INDEX, {
          schemaVersion: 2,
          manifests: level,
          annotations: { side, depth: String(depth) },
        }),
      );
    }
    level = next;
  }
  await store.putTag('top', level[0] as Descriptor);
  const loads: string[] = [];
  await reachable([level[0] as Descriptor], (desc) => {
    loads.push(desc.digest);
    return store.readBytes(desc.digest);
  });
  t.is(loads.length, 59, 'the top index and the 58 below it, each read once');
  t.is(new Set(loads).size, loads.length);
  const result = await store.gc();
  t.deepEqual(result.deleted, [(level[1] as Descriptor).digest]);
});

test('gc deletes nothing when a reachable manifest is malformed', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const orphan = await putBlob(store, 'unreachable');
  const layer = await putBlob(store, 'layer of a broken manifest');
  const broken = await putJson(store, OCI_MANIFEST, {
    schemaVersion: 2,
    layers: [layer, { ...layer, digest: 'sha256:../../etc' }],
  });
  await store.putTag('broken', broken);
  await t.throwsAsync(store.gc(), { code: 'LAYOUT_INVALID', message: /layers\[1\]/ });
  t.true(await store.has(orphan.digest));
  t.true(await store.has(layer.digest));
});

test('gc tolerates index entries whose blobs are missing', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const orphan = await putBlob(store, 'unreachable');
  const missing = {
    mediaType: OCI_MANIFEST,
    digest: `sha256:${'1'.repeat(64)}`,
    size: 10,
  };
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [missing] }),
  );
  t.deepEqual((await store.gc()).deleted, [orphan.digest]);
});

test('gc leaves foreign names and fresh temp files alone, removes old temp files', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const blobs = join(dir, 'blobs', 'sha256');
  await putBlob(store, 'unreachable');
  await writeFile(join(blobs, 'README'), 'not a blob');
  await writeFile(join(blobs, '.tmp-fresh'), 'a write in progress');
  await writeFile(join(blobs, '.tmp-old'), 'left by a killed writer');
  await writeFile(join(dir, '.tmp-index'), 'left by a killed index update');
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  await utimes(join(blobs, '.tmp-old'), twoHoursAgo, twoHoursAgo);
  await utimes(join(dir, '.tmp-index'), twoHoursAgo, twoHoursAgo);
  const result = await store.gc();
  t.is(result.deleted.length, 1);
  t.is(result.tempFilesRemoved, 2);
  t.deepEqual((await readdir(blobs)).sort(), ['.tmp-fresh', 'README']);
  t.deepEqual((await readdir(dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
  t.true((await stat(join(blobs, 'README'))).isFile());
});

test('a writer removes the temp files of writers killed with SIGKILL, never a live writer’s', async (t) => {
  const dir = await tempDir(t);
  await LayoutStore.open(dir);
  const blobs = join(dir, 'blobs', 'sha256');
  // The live writer first: it sweeps when it starts, and would take the killed one's file.
  const live = await startSlowWriter(dir, { fill: 0x62 });
  t.teardown(() => killHard(live.child));
  const killed = await startSlowWriter(dir, { fill: 0x61 });
  await killHard(killed.child);
  await writeFile(join(blobs, '.tmp-0123456789abcdef'), 'an older writer, owner unknown');
  const temps = async () => (await readdir(blobs)).filter((n) => n.startsWith('.tmp-')).sort();
  const [killedTemp, liveTemp] = await Promise.all(
    [killed.child.pid, live.child.pid].map(async (pid) =>
      (await temps()).find((name) => name.includes(`-${pid}-`)),
    ),
  );
  t.truthy(killedTemp);
  t.truthy(liveTemp);

  const writer = await LayoutStore.open(dir);
  await putBlob(writer, 'any write sweeps first');
  t.deepEqual(await temps(), ['.tmp-0123456789abcdef', liveTemp].sort());

  await killHard(live.child);
  const result = await writer.gc();
  t.is(result.tempFilesRemoved, 1, 'gc removes a dead writer’s temp file however young');
  t.deepEqual(await temps(), ['.tmp-0123456789abcdef']);
});

test('blobs lists every stored blob with its size, and no temp file', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const a = await putBlob(store, 'first blob');
  const b = await putBlob(store, 'second, longer blob');
  await writeFile(join(store.dir, 'blobs', 'sha256', '.tmp-unfinished'), 'partial');
  const listed = [];
  for await (const blob of store.blobs()) listed.push({ digest: blob.digest, size: blob.size });
  t.deepEqual(
    listed.sort((x, y) => x.digest.localeCompare(y.digest)),
    [a, b]
      .map((d) => ({ digest: d.digest, size: d.size }))
      .sort((x, y) => x.digest.localeCompare(y.digest)),
  );
});

test('deleteBlob removes one blob and says whether it was there', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const a = await putBlob(store, 'a blob to delete');
  t.true(await store.deleteBlob(a.digest));
  t.false(await store.has(a.digest));
  t.false(await store.deleteBlob(a.digest));
  await t.throwsAsync(store.deleteBlob('sha256:../../index.json'), { code: 'DIGEST_INVALID' });
});

test('prune deletes the least recently used unreachable blobs until the rest fit', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const image = await writeImage(store, [Buffer.from('a tagged layer')]);
  await store.putTag('v1', image.manifest);
  const [oldest, older, newest, kept] = await Promise.all(
    ['oldest loose blob', 'older loose blob', 'newest loose blob', 'kept loose blob'].map((c) =>
      putBlob(store, c),
    ),
  );
  const at = (seconds: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, seconds));
  for (const [i, desc] of [kept, oldest, older, newest].entries()) {
    await utimes(join(store.dir, 'blobs', 'sha256', desc!.digest.slice(7)), at(i), at(i));
  }
  // Marking a blob used makes it the newest of all.
  await store.touchBlob(oldest!.digest);
  const reachableSize = sizes([image.manifest, image.config, ...image.layers]);
  // Room for the image and two loose blobs: `kept` is never deleted, `older` goes first.
  const budget = reachableSize + kept!.size + oldest!.size;
  const result = await store.prune({ maxBytes: budget, keep: [kept!.digest] });
  t.deepEqual(result.deleted, [older!.digest, newest!.digest]);
  t.is(result.bytesFreed, older!.size + newest!.size);
  t.deepEqual(
    await storedDigests(store),
    [image.manifest, image.config, ...image.layers, oldest!, kept!].map((d) => d.digest).sort(),
  );
});
