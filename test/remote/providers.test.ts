import type { Readable } from 'node:stream';
import test from 'ava';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import type { Descriptor } from '../../src/oci/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import {
  LayoutProvider,
  MultiProvider,
  ProviderMissingError,
  RegistryProvider,
} from '../../src/remote/index.ts';
import { fixturePath, pushFixture } from '../helpers/fixtures.ts';
import { startRegistry } from '../helpers/registry.ts';

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function configOf(name: string): Promise<Descriptor> {
  const store = await LayoutStore.open(fixturePath(name), { create: false });
  const root = (await store.index()).manifests[0];
  if (!root) throw new Error(`${name} has no manifest`);
  const manifest = JSON.parse((await store.readBytes(root.digest)).toString('utf8'));
  return manifest.config as Descriptor;
}

test('a multi provider routes each digest to its own provider', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'docker-image', 'team/a');
  const client = new RegistryClient();
  t.teardown(() => client.close());
  const fromRegistry = new RegistryProvider(client.repository(registry.host, 'team/a'));
  const fromLayout = new LayoutProvider(
    await LayoutStore.open(fixturePath('oci-image'), { create: false }),
  );
  const dockerConfig = await configOf('docker-image');
  const ociConfig = await configOf('oci-image');
  const multi = new MultiProvider()
    .add(dockerConfig.digest, fromRegistry)
    .add(ociConfig.digest, fromLayout);
  t.is(multi.providerOf(dockerConfig.digest), fromRegistry);
  t.truthy(JSON.parse(await text(await multi.fetch(dockerConfig))).rootfs);
  t.truthy(JSON.parse(await text(await multi.fetch(ociConfig))).rootfs);
  t.deepEqual(await multi.info(dockerConfig.digest), {
    digest: dockerConfig.digest,
    size: dockerConfig.size,
  });
  const unknown = { ...ociConfig, digest: digestBytes('unknown') };
  await t.throwsAsync(multi.fetch(unknown), { instanceOf: ProviderMissingError });
  t.is(await multi.info(unknown.digest), undefined);
  const fallback = new MultiProvider({ fallback: fromLayout });
  t.is(fallback.providerOf(unknown.digest), fromLayout);
});

test('a layout provider refuses corrupt content on whole reads', async (t) => {
  const { mkdtemp, rm, writeFile, readdir } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-provider-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = await LayoutStore.open(dir);
  const bytes = Buffer.from('layer bytes');
  const descriptor = {
    mediaType: 'application/octet-stream',
    digest: digestBytes(bytes),
    size: bytes.length,
  };
  await store.writeBytes(descriptor, bytes);
  const [file] = await readdir(path.join(dir, 'blobs', 'sha256'));
  await writeFile(path.join(dir, 'blobs', 'sha256', file ?? ''), 'LAYER bytes');
  const provider = new LayoutProvider(store);
  await t.throwsAsync(async () => text(await provider.fetch(descriptor)), {
    code: 'DIGEST_MISMATCH',
  });
  t.is(await text(await provider.fetch(descriptor, { range: { start: 0, end: 4 } })), 'LAYER');
});
