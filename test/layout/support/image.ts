import { gzipSync } from 'node:zlib';
import { digestBytes } from '../../../src/digest/index.ts';
import type { Descriptor, LayoutStore } from '../../../src/layout/index.ts';
import { OCI_MANIFEST } from '../../../src/oci/index.ts';

/** A one-file ustar archive: a real, tiny image layer. */
export function tarWithFile(name: string, content: string): Buffer {
  const body = Buffer.from(content);
  const header = Buffer.alloc(512);
  const field = (offset: number, length: number, value: string) => {
    header.write(value, offset, length, 'ascii');
  };
  const octal = (value: number, length: number) =>
    `${value.toString(8).padStart(length - 1, '0')}\0`;
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(body.length, 12));
  field(136, 12, octal(0, 12));
  field(148, 8, '        ');
  field(156, 1, '0');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  field(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, padding, Buffer.alloc(1024)]);
}

/** Describe `bytes` with `mediaType`. */
export function describe(mediaType: string, bytes: Uint8Array): Descriptor {
  return { mediaType, digest: digestBytes(bytes), size: bytes.length };
}

/** Store `value` as JSON and return its descriptor. */
export async function putJson(
  store: LayoutStore,
  mediaType: string,
  value: unknown,
): Promise<Descriptor> {
  const bytes = Buffer.from(JSON.stringify(value));
  const desc = describe(mediaType, bytes);
  await store.writeBytes(desc, bytes);
  return desc;
}

/** The blobs of a small valid linux/amd64 image written by {@link writeImage}. */
export interface WrittenImage {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

/** Write a valid single-platform OCI image (config + gzipped `layers` + manifest) into `store`. */
export async function writeImage(
  store: LayoutStore,
  layers: readonly Uint8Array[] = [tarWithFile('hello.txt', 'hello\n')],
  architecture = 'amd64',
): Promise<WrittenImage> {
  const layerDescs: Descriptor[] = [];
  for (const layer of layers) {
    const compressed = gzipSync(layer);
    const desc = describe('application/vnd.oci.image.layer.v1.tar+gzip', compressed);
    await store.writeBytes(desc, compressed);
    layerDescs.push(desc);
  }
  const config = await putJson(store, 'application/vnd.oci.image.config.v1+json', {
    architecture,
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => digestBytes(l)) },
  });
  const manifest = await putJson(store, OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config,
    layers: layerDescs,
  });
  return { manifest, config, layers: layerDescs };
}
