/** Caches for explain tests: inline-cache images rebuilt from what real BuildKit wrote, hand-made configs. */

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { cacheManifest } from '../../src/cache/export.ts';
import {
  CACHE_CONFIG_MEDIA_TYPE,
  type CacheConfig,
  serializeCacheConfig,
} from '../../src/cache/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import type { Descriptor } from '../../src/oci/index.ts';
import { tempDir, writeImage } from './_support.ts';

const RECORDED = path.resolve(import.meta.dirname, '../../fixtures/recorded/buildkit-inline.json');
const LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** One recorded build: its inline cache records and the `created_by` of each layer. */
export interface BuildkitSample {
  readonly dockerfile: string;
  readonly note: string;
  readonly group: string;
  readonly createdBy: readonly string[];
  readonly records: readonly unknown[];
}

let samples: Promise<Record<string, BuildkitSample>> | undefined;

/** The recorded builds by name. */
export function buildkitSamples(): Promise<Record<string, BuildkitSample>> {
  samples ??= readFile(RECORDED, 'utf8').then(
    (text) => (JSON.parse(text) as { samples: Record<string, BuildkitSample> }).samples,
  );
  return samples;
}

/** Options of {@link writeSampleImages}. */
export interface SampleImageOptions {
  /** Per sample name, layer positions whose blob is left out of the layout. */
  readonly missing?: Record<string, readonly number[]>;
}

/**
 * A layout holding, for each sample named, an image tagged with its name: a small stand-in
 * blob per layer (unique to the sample), and an image config carrying the recorded inline cache
 * and history. Returns the layout directory.
 */
export async function writeSampleImages(
  t: ExecutionContext,
  names: readonly string[],
  options: SampleImageOptions = {},
): Promise<string> {
  const all = await buildkitSamples();
  const dir = await tempDir(t, 'ociferry-bk-');
  const store = await LayoutStore.open(dir);
  for (const name of names) {
    const sample = all[name];
    if (!sample) throw new Error(`no recorded sample ${name}`);
    const missing = new Set(options.missing?.[name] ?? []);
    const layers = [];
    for (let i = 0; i < sample.createdBy.length; i++) {
      const bytes = Buffer.from(`layer ${i} of ${name}\n`);
      const descriptor = { mediaType: LAYER, digest: digestBytes(bytes), size: bytes.length };
      if (!missing.has(i)) await store.writeBytes(descriptor, bytes);
      layers.push(descriptor);
    }
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
        history: sample.createdBy.map((createdBy) => ({
          created: '2026-12-03T07:38:52.979505501Z',
          ...(createdBy ? { created_by: createdBy } : {}),
        })),
        'moby.buildkit.cache.v0': Buffer.from(JSON.stringify(sample.records)).toString('base64'),
      }),
    );
    const manifestDesc = await writeImage(store, config, layers);
    await store.putTag(name, manifestDesc);
  }
  return dir;
}

/**
 * Write hand-made cache configs into one layout, each tagged with its name, as image-manifest
 * caches; every blob the configs' layers name gets a small stand-in (`blob` is the bytes' digest
 * only if the caller made it so: the layout stores the bytes under the blob's own digest).
 */
export async function writeConfigCaches(
  t: ExecutionContext,
  caches: Record<string, CacheConfig>,
  layerBytes: ReadonlyMap<string, Buffer>,
): Promise<string> {
  const dir = await tempDir(t, 'ociferry-cfg-');
  const store = await LayoutStore.open(dir);
  const written = new Map<string, Descriptor>();
  for (const [blob, bytes] of layerBytes) {
    const descriptor = { mediaType: LAYER, digest: blob, size: bytes.length };
    await store.writeBytes(descriptor, bytes);
    written.set(blob, descriptor);
  }
  for (const [name, config] of Object.entries(caches)) {
    const bytes = serializeCacheConfig(config);
    const descriptor = {
      mediaType: CACHE_CONFIG_MEDIA_TYPE,
      digest: digestBytes(bytes),
      size: bytes.length,
    };
    await store.writeBytes(descriptor, bytes);
    const layers = [...new Set(config.layers.map((layer) => layer.blob))].map(
      (blob) => written.get(blob) as Descriptor,
    );
    const manifest = cacheManifest('image-manifest', descriptor, layers);
    await store.writeBytes(manifest.descriptor, manifest.bytes);
    await store.putTag(name, manifest.descriptor);
  }
  return dir;
}
