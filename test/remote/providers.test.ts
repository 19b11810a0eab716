import type { Readable } from 'node:stream';
import test from 'ava';
import { Agent } from 'undici';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import type { Descriptor } from '../../src/registry/oci.ts';
import {
  LayoutProvider,
  MultiProvider,
  ProviderMissingError,
  RegistryProvider,
  UrlFetchError,
  UrlProvider,
} from '../../src/remote/index.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
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

test('a URL provider mints a URL right before each read and re-mints an expired one', async (t) => {
  const registry = await startRegistry(t);
  const pushed = await pushFixture(registry, 'oci-image', 'cache/svc');
  const config = await configOf('oci-image');
  t.true(pushed.blobs.includes(config.digest));
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\//, times: 1, action: { status: 403, body: 'expired' } },
  ]);
  const minted: string[] = [];
  const provider = new UrlProvider(
    async (descriptor) => {
      minted.push(descriptor.digest);
      return { url: `${proxy.url}/v2/cache/svc/blobs/${descriptor.digest}?sig=${minted.length}` };
    },
    { known: [{ digest: config.digest, size: config.size }] },
  );
  t.deepEqual(await provider.info(config.digest), { digest: config.digest, size: config.size });
  t.is(await provider.info(`sha256:${'0'.repeat(64)}`), undefined);
  t.deepEqual(minted, [], 'info never mints');

  const body = JSON.parse(await text(await provider.fetch(config)));
  t.truthy(body.rootfs);
  t.deepEqual(minted, [config.digest, config.digest], 'the expired URL was minted once more');
  const partial = await text(await provider.fetch(config, { range: { start: 0, end: 0 } }));
  t.is(partial, '{');
  t.is(minted.length, 3);
});

test('a URL provider verifies whole reads and reports refusals without the URL', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'oci-image', 'cache/svc');
  const config = await configOf('oci-image');
  const secretUrl = `${registry.url}/v2/cache/svc/blobs/${config.digest}?sig=SECRET-SIGNATURE`;
  const wrong = { ...config, digest: digestBytes('something else') };
  const provider = new UrlProvider(async () => ({ url: secretUrl }));
  await t.throwsAsync(async () => text(await provider.fetch(wrong)), { code: 'DIGEST_MISMATCH' });

  const missing = new UrlProvider(async () => ({
    url: `${registry.url}/v2/cache/svc/blobs/${wrong.digest}?sig=SECRET-SIGNATURE`,
  }));
  const error = await t.throwsAsync(missing.fetch(wrong), { instanceOf: UrlFetchError });
  t.is(error.status, 404);
  t.false(error.message.includes('SECRET'));
});

test('a URL provider sends its reads through the dispatcher it is given', async (t) => {
  const registry = await startRegistry(t);
  await pushFixture(registry, 'oci-image', 'cache/svc');
  const config = await configOf('oci-image');
  const seen: string[] = [];
  const agent = new Agent();
  t.teardown(() => agent.close());
  const dispatcher = agent.compose((dispatch) => (options, handler) => {
    seen.push(`${options.origin}${options.path}`);
    return dispatch(options, handler);
  });
  const url = `${registry.url}/v2/cache/svc/blobs/${config.digest}?sig=1`;
  const provider = new UrlProvider(async () => ({ url }), { dispatcher });
  t.truthy(JSON.parse(await text(await provider.fetch(config))).rootfs);
  t.deepEqual(seen, [url]);
});

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
