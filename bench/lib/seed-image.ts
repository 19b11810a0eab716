import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from '../../src/oci/index.ts';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry.ts';
import { type BlobFile, blobFile } from './blob-data.ts';

/** An image built from generated layers, ready to push to any number of registries. */
export interface BenchImage {
  readonly layers: readonly BlobFile[];
  readonly config: Buffer;
  readonly configDigest: string;
  readonly manifest: Buffer;
  readonly digest: string;
  /** Layer bytes in total. */
  readonly layerBytes: number;
}

/** User-Agent of seeding requests, so request counts can leave them out. */
export const SEED_USER_AGENT = 'ociferry-bench-seed';

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/**
 * An OCI image of `count` gzip layers of `size` bytes each (seeded, so the same arguments give
 * the same digests every time), its config listing the layers' diffIDs.
 */
export async function benchImage(seed: string, count: number, size: number): Promise<BenchImage> {
  const layers: BlobFile[] = [];
  for (let i = 0; i < count; i++) layers.push(await blobFile(`${seed}-${i}`, size));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created_by: 'ociferry bench' })),
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
    }),
  );
  return {
    layers,
    config,
    configDigest,
    manifest,
    digest: sha256(manifest),
    layerBytes: layers.reduce((sum, l) => sum + l.size, 0),
  };
}

async function expect(
  response: Awaited<ReturnType<typeof request>>,
  status: number,
  what: string,
): Promise<void> {
  const text = await response.body.text();
  if (response.statusCode !== status) {
    throw new Error(
      `${what}: expected ${status}, got ${response.statusCode}: ${text.slice(0, 300)}`,
    );
  }
}

/** Monolithic upload (POST, then one PUT) of a blob from a file or from memory. */
async function pushBlob(
  base: string,
  repo: string,
  digest: string,
  size: number,
  body: () => Buffer | Readable,
): Promise<void> {
  const headers = { 'user-agent': SEED_USER_AGENT };
  const started = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  const location = started.headers.location;
  await expect(started, 202, `POST upload to ${repo}`);
  if (typeof location !== 'string') throw new Error(`POST upload to ${repo}: no Location`);
  const url = new URL(location, base);
  url.searchParams.set('digest', digest);
  const put = await request(url, {
    method: 'PUT',
    headers: {
      ...headers,
      'content-type': 'application/octet-stream',
      'content-length': String(size),
    },
    body: body(),
  });
  await expect(put, 201, `PUT ${digest} to ${repo}`);
}

/** Push `image` to `http://<registry>/<repo>:<tag>` with plain HTTP (independent of ociferry). */
export async function pushImage(
  registry: string,
  repo: string,
  tag: string,
  image: BenchImage,
): Promise<void> {
  const base = `http://${registry}`;
  for (const layer of image.layers) {
    await pushBlob(base, repo, layer.digest, layer.size, () => createReadStream(layer.path));
  }
  await pushBlob(base, repo, image.configDigest, image.config.length, () => image.config);
  const put = await request(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'user-agent': SEED_USER_AGENT, 'content-type': OCI_MANIFEST },
    body: image.manifest,
  });
  await expect(put, 201, `PUT manifest ${repo}:${tag}`);
}

/** A newly started registry holding `image` at `<repo>:<tag>`. */
export async function seededRegistry(
  repo: string,
  tag: string,
  image: BenchImage,
): Promise<TestRegistry> {
  const registry = await startRegistry();
  try {
    await pushImage(registry.host, repo, tag, image);
  } catch (error) {
    await registry.stop();
    throw error;
  }
  return registry;
}

/** The digest `<registry>/<repo>:<tag>` points at, or undefined when the tag is missing. */
export async function manifestDigest(
  registry: string,
  repo: string,
  tag: string,
): Promise<string | undefined> {
  const response = await request(`http://${registry}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { 'user-agent': SEED_USER_AGENT, accept: OCI_MANIFEST },
  });
  await response.body.dump();
  const digest = response.headers['docker-content-digest'];
  return response.statusCode === 200 && typeof digest === 'string' ? digest : undefined;
}
