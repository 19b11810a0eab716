import { digestBytes } from '../digest/index.ts';
import {
  type Descriptor,
  DOCKER_CONFIG,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../registry/oci.ts';

/** Docker blob media types and their OCI equivalents; blobs keep their bytes. */
const BLOB_TYPES: Readonly<Record<string, string>> = {
  [DOCKER_CONFIG]: OCI_CONFIG,
  'application/vnd.docker.image.rootfs.diff.tar.gzip':
    'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.image.rootfs.diff.tar.zstd':
    'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip':
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
};

/** A manifest after conversion: new bytes and the descriptor that addresses them. */
export interface ConvertedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/** True when {@link toOciManifest} / {@link toOciIndex} would change these bytes. */
export function needsOciConversion(mediaType: string): boolean {
  return mediaType === DOCKER_MANIFEST || mediaType === DOCKER_MANIFEST_LIST;
}

/**
 * A Docker schema 2 manifest rewritten with OCI media types (manifest, config, layers). The blobs
 * are untouched, so they can still be mounted; the manifest digest changes.
 */
export function toOciManifest(descriptor: Descriptor, bytes: Buffer): ConvertedManifest {
  const manifest = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> & {
    config: Descriptor;
    layers: Descriptor[];
  };
  const converted = {
    ...manifest,
    mediaType: OCI_MANIFEST,
    config: convertBlob(manifest.config),
    layers: manifest.layers.map(convertBlob),
  };
  return encode(descriptor, OCI_MANIFEST, converted);
}

/**
 * An index rewritten so its entries point at converted children (`children` maps old child
 * digests to their new descriptors); with `toOci`, a Docker manifest list also becomes an OCI index.
 */
export function rewriteIndex(
  descriptor: Descriptor,
  bytes: Buffer,
  children: ReadonlyMap<string, Descriptor>,
  toOci: boolean,
): ConvertedManifest {
  const index = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> & {
    manifests: Descriptor[];
  };
  const mediaType = toOci ? OCI_INDEX : descriptor.mediaType;
  const rewritten = {
    ...index,
    ...(index.mediaType === undefined && !toOci ? {} : { mediaType }),
    manifests: index.manifests.map((entry) => {
      const child = children.get(entry.digest);
      return child
        ? { ...entry, mediaType: child.mediaType, digest: child.digest, size: child.size }
        : entry;
    }),
  };
  return encode(descriptor, mediaType, rewritten);
}

function convertBlob(descriptor: Descriptor): Descriptor {
  const mediaType = BLOB_TYPES[descriptor.mediaType];
  return mediaType ? { ...descriptor, mediaType } : descriptor;
}

function encode(original: Descriptor, mediaType: string, json: unknown): ConvertedManifest {
  const bytes = Buffer.from(JSON.stringify(json));
  const descriptor: Descriptor = {
    ...original,
    mediaType,
    digest: digestBytes(bytes),
    size: bytes.length,
  };
  return { descriptor, bytes };
}
