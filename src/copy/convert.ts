import { digestBytes } from '../digest/index.ts';
import {
  type Descriptor,
  DOCKER_CONFIG,
  DOCKER_FOREIGN_LAYER,
  DOCKER_LAYER,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  decodeManifest,
  isIndexMediaType,
  isManifestMediaType,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
  OCI_NONDISTRIBUTABLE_LAYER,
} from '../oci/index.ts';
import type { Remote } from '../remote/remote-index.ts';
import { mapLimit } from '../util/limiter.ts';

/** Docker layer media types and their OCI spellings (BuildKit's `toOCILayerType`). */
const OCI_LAYER_TYPES: ReadonlyMap<string, string> = new Map([
  [DOCKER_LAYER, OCI_LAYER],
  [DOCKER_LAYER_GZIP, OCI_LAYER_GZIP],
  [`${DOCKER_LAYER}.zstd`, OCI_LAYER_ZSTD],
  [DOCKER_FOREIGN_LAYER, OCI_NONDISTRIBUTABLE_LAYER],
  [`${DOCKER_FOREIGN_LAYER}.gzip`, `${OCI_NONDISTRIBUTABLE_LAYER}+gzip`],
]);

/** The same pairs the other way round (BuildKit's `toDockerLayerType`). */
const DOCKER_LAYER_TYPES: ReadonlyMap<string, string> = new Map(
  [...OCI_LAYER_TYPES].map(([docker, oci]) => [oci, docker]),
);

/** A Docker layer media type in OCI spelling; any other type unchanged. The bytes stay the same. */
export function toOciLayerType(mediaType: string): string {
  return OCI_LAYER_TYPES.get(mediaType) ?? mediaType;
}

/** An OCI layer media type in Docker spelling; any other type unchanged. The bytes stay the same. */
export function toDockerLayerType(mediaType: string): string {
  return DOCKER_LAYER_TYPES.get(mediaType) ?? mediaType;
}

/** A manifest after conversion: new bytes and the descriptor that addresses them. */
export interface ConvertedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/** True when {@link toOciManifest} or {@link rewriteIndex} with `toOci` would change these bytes. */
export function needsOciConversion(mediaType: string): boolean {
  return mediaType === DOCKER_MANIFEST || mediaType === DOCKER_MANIFEST_LIST;
}

/**
 * A Docker schema 2 manifest rewritten with OCI media types (manifest, config, layers). The blobs
 * are untouched, so they can still be mounted; the manifest digest changes.
 */
export function toOciManifest(descriptor: Descriptor, bytes: Buffer): ConvertedManifest {
  const decoded = decodeManifest(bytes, descriptor.mediaType, `manifest ${descriptor.digest}`);
  if (decoded.kind !== 'image')
    throw new TypeError(`${descriptor.digest} is not an image manifest`);
  const manifest = decoded.manifest;
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
  const decoded = decodeManifest(bytes, descriptor.mediaType, `index ${descriptor.digest}`);
  if (decoded.kind !== 'index') throw new TypeError(`${descriptor.digest} is not an index`);
  const index = decoded.index;
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

/**
 * The manifest `remote` goes to a target as: its own bytes, or with `toOci` its tree's Docker
 * manifests and lists rewritten with OCI media types (an index pointing at its converted
 * children). Known before any blob moves: it reads child manifests (memoised by the remote),
 * never a blob.
 */
export async function convertedManifest(
  remote: Remote,
  toOci: boolean,
  signal?: AbortSignal,
): Promise<ConvertedManifest> {
  const original = { descriptor: remote.descriptor, bytes: remote.bytes };
  const convert = toOci && needsOciConversion(remote.mediaType);
  if (remote.kind === 'image') {
    return convert ? toOciManifest(remote.descriptor, remote.bytes) : original;
  }
  if (!toOci) return original;
  const children = new Map<string, Descriptor>();
  await mapLimit(
    remote.manifests,
    4,
    async (entry, _index, inner) => {
      if (!isManifestMediaType(entry.mediaType) && !isIndexMediaType(entry.mediaType)) return;
      const child = await convertedManifest(
        await remote.child(entry, { signal: inner }),
        true,
        inner,
      );
      if (child.descriptor.digest !== entry.digest) children.set(entry.digest, child.descriptor);
    },
    signal,
  );
  if (!convert && children.size === 0) return original;
  return rewriteIndex(remote.descriptor, remote.bytes, children, convert);
}

/** A config or layer descriptor with its OCI media type; blobs keep their bytes. */
function convertBlob(descriptor: Descriptor): Descriptor {
  const mediaType =
    descriptor.mediaType === DOCKER_CONFIG ? OCI_CONFIG : toOciLayerType(descriptor.mediaType);
  return mediaType === descriptor.mediaType ? descriptor : { ...descriptor, mediaType };
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
