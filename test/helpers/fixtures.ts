import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { MediaType } from '../../fixtures/generate.ts';
import type { SharedRegistry } from './registry.ts';

/** Absolute path of the generated fixtures (fixtures/data). */
export const FIXTURES: string = path.resolve(import.meta.dirname, '../../fixtures/data');

/** `fixtures/data/<name>` as an absolute path. */
export function fixturePath(name: string): string {
  return path.join(FIXTURES, name);
}

/** User-Agent of fixture pushes, so access-log assertions can tell them apart. */
export const FIXTURE_USER_AGENT = 'ociferry-test-fixtures';

/** What {@link pushFixture} put into the registry. */
export interface PushedFixture {
  /** Digest of the root manifest or index (the one tagged). */
  digest: string;
  mediaType: string;
  size: number;
  /** Digests of all non-manifest blobs, configs included, in push order. */
  blobs: string[];
  /** Digests of all manifests and indexes, children before parents (root last). */
  manifests: string[];
}

/** A descriptor as found in layout index.json, manifests and indexes. */
export interface FixtureDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

const MANIFEST_TYPES: ReadonlySet<string> = new Set([
  MediaType.ociManifest,
  MediaType.dockerManifest,
]);
const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.ociIndex, MediaType.dockerList]);
const REF_NAME = 'org.opencontainers.image.ref.name';

/** True for media types a registry stores under /manifests/. */
export function isManifestType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType) || INDEX_TYPES.has(mediaType);
}

/** Path of blob `digest` inside fixture layout `name`. */
export function fixtureBlobPath(name: string, digest: string): string {
  return path.join(FIXTURES, name, 'blobs', ...digest.split(':'));
}

/** Bytes of blob `digest` in fixture layout `name`. */
export function readFixtureBlob(name: string, digest: string): Promise<Buffer> {
  return readFile(fixtureBlobPath(name, digest));
}

/** The index.json entry of fixture layout `name` tagged `tag` (default: the only/first entry). */
export async function fixtureRoot(name: string, tag?: string): Promise<FixtureDescriptor> {
  const index = JSON.parse(await readFile(path.join(fixturePath(name), 'index.json'), 'utf8')) as {
    manifests: FixtureDescriptor[];
  };
  const root =
    tag === undefined
      ? index.manifests[0]
      : index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!root)
    throw new Error(`fixture ${name} has no ${tag === undefined ? 'entry' : `tag ${tag}`}`);
  return root;
}

/** The graph under one root: blobs and manifests (children before parents), each once. */
export interface FixtureGraph {
  blobs: FixtureDescriptor[];
  manifests: FixtureDescriptor[];
}

/** Walk fixture layout `name` from `root`, reading manifests and indexes from disk. */
export async function fixtureGraph(name: string, root: FixtureDescriptor): Promise<FixtureGraph> {
  const graph: FixtureGraph = { blobs: [], manifests: [] };
  const seen = new Set<string>();
  const visit = async (desc: FixtureDescriptor): Promise<void> => {
    if (seen.has(desc.digest)) return;
    seen.add(desc.digest);
    if (!isManifestType(desc.mediaType)) {
      graph.blobs.push(desc);
      return;
    }
    const doc = JSON.parse((await readFixtureBlob(name, desc.digest)).toString('utf8')) as {
      config?: FixtureDescriptor;
      layers?: FixtureDescriptor[];
      manifests?: FixtureDescriptor[];
    };
    const children = INDEX_TYPES.has(desc.mediaType)
      ? (doc.manifests ?? [])
      : [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])];
    for (const child of children) await visit(child);
    graph.manifests.push(desc);
  };
  await visit(root);
  return graph;
}

/** Options of {@link pushFixture}. */
export interface PushFixtureOptions {
  /** Tag in the layout's index.json to push; default the only/first entry. */
  tag?: string;
  /** Tag to set in the registry; default `tag`, or the layout's tag for the chosen entry. */
  dstTag?: string;
  /** Registry user whose credentials are used; default 'alice'. */
  user?: string;
}

/**
 * Push every blob and manifest of fixture layout `name` into `registry` as `repo[:dstTag]` with
 * plain undici HTTP (POST upload + PUT ?digest=, manifests PUT by digest, then the tag).
 * Manifest bytes go up exactly as stored, so digests are preserved; children before parents.
 */
export function pushFixture(
  registry: SharedRegistry,
  name: string,
  repo: string,
  opts: PushFixtureOptions = {},
): Promise<PushedFixture> {
  // Tests sharing a registry may push the same fixture into the same repository at once; the
  // registry fails one of two concurrent uploads of a blob (DIGEST_INVALID), so they share one push.
  const key = JSON.stringify([registry.url, name, repo, opts]);
  let pushing = pushesInFlight.get(key);
  if (!pushing) {
    pushing = pushFixtureOnce(registry, name, repo, opts).finally(() => pushesInFlight.delete(key));
    pushesInFlight.set(key, pushing);
  }
  return pushing;
}

const pushesInFlight = new Map<string, Promise<PushedFixture>>();

async function pushFixtureOnce(
  registry: SharedRegistry,
  name: string,
  repo: string,
  opts: PushFixtureOptions,
): Promise<PushedFixture> {
  const root = await fixtureRoot(name, opts.tag);
  const graph = await fixtureGraph(name, root);
  const authorization = await registry.authorize(opts.user ?? 'alice', [
    `repository:${repo}:pull,push`,
  ]);
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    'user-agent': FIXTURE_USER_AGENT,
    ...(authorization ? { authorization } : {}),
    ...extra,
  });
  const send = async (
    method: 'POST' | 'PUT',
    url: string,
    expected: number,
    body?: Buffer,
    contentType = 'application/octet-stream',
  ) => {
    const res = await request(url, {
      method,
      headers: headers(body ? { 'content-type': contentType } : {}),
      ...(body ? { body } : {}),
    });
    const text = await res.body.text();
    if (res.statusCode !== expected) {
      throw new Error(
        `${method} ${new URL(url).pathname}: ${res.statusCode} ${text.slice(0, 500)}`,
      );
    }
    return res.headers;
  };

  for (const blob of graph.blobs) {
    const data = await readFixtureBlob(name, blob.digest);
    const started = await send('POST', `${registry.url}/v2/${repo}/blobs/uploads/`, 202);
    const location = new URL(String(started.location), registry.url);
    location.searchParams.set('digest', blob.digest);
    await send('PUT', location.href, 201, data);
  }
  const manifestUrl = (reference: string) => `${registry.url}/v2/${repo}/manifests/${reference}`;
  for (const manifest of graph.manifests) {
    const data = await readFixtureBlob(name, manifest.digest);
    const res = await send('PUT', manifestUrl(manifest.digest), 201, data, manifest.mediaType);
    const digest = res['docker-content-digest'];
    if (digest !== undefined && digest !== manifest.digest) {
      throw new Error(`registry stored ${manifest.digest} as ${String(digest)}`);
    }
  }
  const dstTag = opts.dstTag ?? opts.tag ?? root.annotations?.[REF_NAME];
  if (dstTag !== undefined) {
    const data = await readFixtureBlob(name, root.digest);
    await send('PUT', manifestUrl(dstTag), 201, data, root.mediaType);
  }
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    size: root.size,
    blobs: graph.blobs.map((b) => b.digest),
    manifests: graph.manifests.map((m) => m.digest),
  };
}
