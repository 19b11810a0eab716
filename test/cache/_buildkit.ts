/** Inline-cache images rebuilt from the caches real BuildKit wrote (fixtures/recorded). */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { OCI_MANIFEST } from '../../src/registry/index.ts';
import { tempDir } from './_support.ts';

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
    const configDesc = {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: digestBytes(config),
      size: config.length,
    };
    await store.writeBytes(configDesc, config);
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers }),
    );
    const manifestDesc = {
      mediaType: OCI_MANIFEST,
      digest: digestBytes(manifest),
      size: manifest.length,
    };
    await store.writeBytes(manifestDesc, manifest);
    await store.putTag(name, manifestDesc);
  }
  return dir;
}
