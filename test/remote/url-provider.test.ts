import type { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import type { Descriptor } from '../../src/oci/index.ts';
import { RegistryClient, type RequestEvent } from '../../src/registry/index.ts';
import { UrlFetchError, UrlProvider } from '../../src/remote/index.ts';
import { Hold, startFaultProxy } from '../helpers/fault-proxy.ts';
import { fixturePath, pushFixture } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';

/** The registry of every test here: each reads the same image, through a fault proxy of its own or directly. */
const shared = sharedRegistry(test);

const BLOB_GET = /\/blobs\/sha256:/;

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

/** A client with quick retries whose exchanges are recorded, closed after the test. */
function recordingClient(t: ExecutionContext, options: { attempts?: number } = {}) {
  const events: RequestEvent[] = [];
  const client = new RegistryClient({
    retry: { baseDelayMs: 1, maxDelayMs: 5, attempts: options.attempts },
    onRequest: (event) => events.push(event),
  });
  t.teardown(() => client.close());
  return { client, events };
}

/** The oci-image fixture in a registry behind a fault proxy, and its config descriptor. */
async function servedConfig(t: ExecutionContext) {
  const registry = await shared();
  await pushFixture(registry, 'oci-image', 'cache/svc');
  const proxy = await startFaultProxy(t, registry.url);
  return { registry, proxy, config: await configOf('oci-image') };
}

test('a URL provider mints a URL right before each read and re-mints an expired one', async (t) => {
  const { proxy, config } = await servedConfig(t);
  proxy.rules.push({
    method: 'GET',
    path: BLOB_GET,
    times: 1,
    action: { status: 403, body: 'expired' },
  });
  const { client } = recordingClient(t);
  const minted: string[] = [];
  const provider = new UrlProvider(
    async (descriptor) => {
      minted.push(descriptor.digest);
      return { url: `${proxy.url}/v2/cache/svc/blobs/${descriptor.digest}?sig=${minted.length}` };
    },
    { known: [{ digest: config.digest, size: config.size }], client },
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
  const { registry, config } = await servedConfig(t);
  const { client } = recordingClient(t);
  const secretUrl = `${registry.url}/v2/cache/svc/blobs/${config.digest}?sig=SECRET-SIGNATURE`;
  const wrong = { ...config, digest: digestBytes('something else') };
  const provider = new UrlProvider(async () => ({ url: secretUrl }), { client });
  await t.throwsAsync(async () => text(await provider.fetch(wrong)), { code: 'DIGEST_MISMATCH' });

  const missing = new UrlProvider(
    async () => ({
      url: `${registry.url}/v2/cache/svc/blobs/${wrong.digest}?sig=SECRET-SIGNATURE`,
    }),
    { client },
  );
  const error = await t.throwsAsync(missing.fetch(wrong), { instanceOf: UrlFetchError });
  t.is(error.status, 404);
  t.false(error.message.includes('SECRET'));
  t.false(JSON.stringify(error.cause ?? '').includes('SECRET'));
});

test('a URL provider follows a 302 to another origin without the minted Authorization', async (t) => {
  const { proxy, config } = await servedConfig(t);
  proxy.rules.push({ method: 'GET', path: BLOB_GET, action: { redirectToCdn: true, status: 302 } });
  const { client } = recordingClient(t);
  const provider = new UrlProvider(
    async (descriptor) => ({
      url: `${proxy.url}/v2/cache/svc/blobs/${descriptor.digest}?sig=1`,
      headers: { authorization: 'Bearer service-token' },
    }),
    { client },
  );
  t.truthy(JSON.parse(await text(await provider.fetch(config))).rootfs);
  t.is(proxy.forwarded.at(-1)?.headers.authorization, 'Bearer service-token');
  t.is(proxy.cdn.requests.length, 1, 'the CDN served the blob');
  t.is(proxy.cdn.requests[0]?.headers.authorization, undefined);
});

test('a URL provider retries a 503 and its client counts every exchange', async (t) => {
  const { proxy, config } = await servedConfig(t);
  const rule = { method: 'GET', path: BLOB_GET, times: 2, action: { status: 503 } };
  proxy.rules.push(rule);
  const { client, events } = recordingClient(t);
  let minted = 0;
  const provider = new UrlProvider(
    async (descriptor) => {
      minted++;
      return { url: `${proxy.url}/v2/cache/svc/blobs/${descriptor.digest}?sig=SECRET` };
    },
    { client },
  );
  const before = client.requestCount;
  t.truthy(JSON.parse(await text(await provider.fetch(config))).rootfs);
  t.is(proxy.hits(rule), 2);
  t.is(proxy.forwarded.filter((r) => BLOB_GET.test(r.path)).length, 3);
  t.is(client.requestCount - before, 3);
  t.deepEqual(
    events.map((e) => e.status),
    [503, 503, 200],
  );
  t.false(events.some((e) => e.url.includes('SECRET')));
  t.is(minted, 3, 'each attempt reads a freshly minted URL');
});

test('a URL provider gives up after its attempts with the last status', async (t) => {
  const { proxy, config } = await servedConfig(t);
  proxy.rules.push({ method: 'GET', path: BLOB_GET, action: { status: 503 } });
  const { client } = recordingClient(t, { attempts: 2 });
  const provider = new UrlProvider(
    async (descriptor) => ({ url: `${proxy.url}/v2/cache/svc/blobs/${descriptor.digest}` }),
    { client },
  );
  const error = await t.throwsAsync(provider.fetch(config), { instanceOf: UrlFetchError });
  t.is(error.status, 503);
  t.is(proxy.forwarded.length, 2);
});

test('a URL provider read that outlives the header timeout is given up', async (t) => {
  const { proxy, config } = await servedConfig(t);
  const hold = new Hold();
  proxy.rules.push({ method: 'GET', path: BLOB_GET, action: { hold } });
  const client = new RegistryClient({ timeouts: { headersMs: 100 }, retry: { attempts: 1 } });
  t.teardown(() => client.close());
  const provider = new UrlProvider(
    async (descriptor) => ({ url: `${proxy.url}/v2/cache/svc/blobs/${descriptor.digest}` }),
    { client },
  );
  const error = await t.throwsAsync(provider.fetch(config), { instanceOf: UrlFetchError });
  t.is(error.code, 'TIMEOUT');
  await hold.abandoned();
});
