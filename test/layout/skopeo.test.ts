import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import test from 'ava';
import { LayoutStore, REF_NAME } from '../../src/layout/index.ts';
import { tarWithFile, writeImage } from './support/image.ts';
import { tempDir } from './support/tmp.ts';

const run = promisify(execFile);

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args]);
  return stdout;
}

test('skopeo inspects a layout we wrote', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const image = await writeImage(store);
  await store.putTag('v1', image.manifest);
  const info = JSON.parse(await skopeo('inspect', `oci:${dir}:v1`));
  t.is(info.Digest, image.manifest.digest);
  t.deepEqual(
    info.Layers,
    image.layers.map((l) => l.digest),
  );
  t.is(info.Architecture, 'amd64');
  t.is(info.Os, 'linux');
  const raw = await skopeo('inspect', '--raw', `oci:${dir}:v1`);
  t.deepEqual(Buffer.from(raw), await store.readBytes(image.manifest.digest));
});

test('we read a layout skopeo wrote, and skopeo keeps our tags when adding one', async (t) => {
  const source = await LayoutStore.open(join(await tempDir(t), 'src'));
  const content = 'copied by skopeo\n';
  const image = await writeImage(source, [tarWithFile('a.txt', content)]);
  await source.putTag('v1', image.manifest);

  const fresh = join(await tempDir(t), 'fresh');
  await skopeo('copy', `oci:${source.dir}:v1`, `oci:${fresh}:copied`);
  const store = await LayoutStore.open(fresh, { create: false });
  const desc = await store.resolveTag('copied');
  t.is(desc?.digest, image.manifest.digest);
  t.is(desc?.annotations?.[REF_NAME], 'copied');
  t.deepEqual(
    await store.readBytes(image.manifest.digest),
    await source.readBytes(image.manifest.digest),
  );
  const layer = await buffer(store.readBlob(image.layers[0]?.digest ?? ''));
  t.true(gunzipSync(layer).includes(content));
  t.deepEqual((await store.gc()).deleted, []);

  const other = await writeImage(store, [tarWithFile('b.txt', 'ours\n')]);
  await store.putTag('ours', other.manifest);
  await skopeo('copy', `oci:${source.dir}:v1`, `oci:${fresh}:again`);
  t.deepEqual((await store.tags()).sort(), ['again', 'copied', 'ours']);
  t.is((await store.resolveTag('ours'))?.digest, other.manifest.digest);
});
