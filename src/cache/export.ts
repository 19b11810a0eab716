import { toDockerLayerType, toOciLayerType } from '../copy/index.ts';
import { digestBytes } from '../digest/index.ts';
import {
  type Descriptor,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
  type Platform,
} from '../oci/index.ts';
import { compareGoStrings, goJsonString } from './go-json.ts';
import type { CacheExportFormat } from './options.ts';
import type { CacheFormat } from './source.ts';

/** The wrapper formats an export can write (inline caches are written by image builds only). */
export type CacheWrapperFormat = Exclude<CacheFormat, 'inline'>;

/** A manifest as bytes plus the descriptor that addresses them. */
export interface CacheManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
}

/** True when the target gives `image-manifest=` or `oci-mediatypes=`, i.e. asks for a form. */
export function givesForm(target: CacheExportFormat): boolean {
  return target.imageManifest !== undefined || target.ociMediatypes !== undefined;
}

/**
 * The wrapper an export target asks for. Each key sets one property of the form and the other
 * is kept from `keep` (the source's form): `image-manifest=` the wrapping (image manifest, or an
 * index / Docker list of the blobs), `oci-mediatypes=` the media types (OCI or Docker). What
 * neither the target nor `keep` says takes BuildKit's defaults (OCI media types, image-manifest
 * wrapping), so without `keep` this is the form BuildKit's exporter writes for these options.
 * An image manifest is OCI only: `image-manifest=true` means OCI, `oci-mediatypes=false` a list.
 */
export function wrapperFormat(target: CacheExportFormat, keep?: CacheFormat): CacheWrapperFormat {
  const kept = keep === 'inline' ? undefined : keep;
  const oci = target.imageManifest === true || (target.ociMediatypes ?? kept !== 'manifest-list');
  if (!oci) return 'manifest-list';
  const imageManifest =
    target.imageManifest ?? (kept === undefined ? true : kept === 'image-manifest');
  return imageManifest ? 'image-manifest' : 'index';
}

/**
 * The manifest BuildKit's cache exporter writes around a config and its layer blobs, byte for
 * byte as Go's `json.Marshal` writes it: an OCI image manifest whose config is the cache config,
 * or an index / Docker list of the layers with the config last. Layer media types are spelled
 * OCI or Docker to match the wrapper (blobs unchanged), as BuildKit's `ConvertAllLayerMediaTypes`.
 */
export function cacheManifest(
  format: CacheWrapperFormat,
  config: Descriptor,
  layers: readonly Descriptor[],
): CacheManifest {
  const spell = format === 'manifest-list' ? toDockerLayerType : toOciLayerType;
  const blobs = layers.map((layer) => {
    const mediaType = spell(layer.mediaType);
    return mediaType === layer.mediaType ? layer : { ...layer, mediaType };
  });
  const mediaType =
    format === 'image-manifest'
      ? OCI_MANIFEST
      : format === 'index'
        ? OCI_INDEX
        : DOCKER_MANIFEST_LIST;
  const body =
    format === 'image-manifest'
      ? `"config":${writeDescriptor(config)},"layers":${writeList(blobs)}`
      : `"manifests":${writeList([...blobs, config])}`;
  const bytes = Buffer.from(`{"schemaVersion":2,"mediaType":"${mediaType}",${body}}`, 'utf8');
  return { descriptor: { mediaType, digest: digestBytes(bytes), size: bytes.length }, bytes };
}

/** A Go slice: `null` when empty, as `json.Marshal` writes a nil slice. */
function writeList(descriptors: readonly Descriptor[]): string {
  return descriptors.length === 0 ? 'null' : `[${descriptors.map(writeDescriptor).join(',')}]`;
}

/** An OCI descriptor in the field order of image-spec's Go struct, map keys sorted. */
function writeDescriptor(descriptor: Descriptor): string {
  const { mediaType, digest, size, urls, annotations, platform, artifactType } = descriptor;
  const parts = [
    `"mediaType":${goJsonString(mediaType)}`,
    `"digest":${goJsonString(digest)}`,
    `"size":${size}`,
  ];
  if (urls?.length) parts.push(`"urls":[${urls.map(goJsonString).join(',')}]`);
  if (annotations && Object.keys(annotations).length > 0) {
    const entries = Object.entries(annotations).sort(([a], [b]) => compareGoStrings(a, b));
    const fields = entries.map(([key, value]) => `${goJsonString(key)}:${goJsonString(value)}`);
    parts.push(`"annotations":{${fields.join(',')}}`);
  }
  if (platform) parts.push(`"platform":${writePlatform(platform)}`);
  if (artifactType) parts.push(`"artifactType":${goJsonString(artifactType)}`);
  return `{${parts.join(',')}}`;
}

function writePlatform(platform: Platform): string {
  const parts = [
    `"architecture":${goJsonString(platform.architecture)}`,
    `"os":${goJsonString(platform.os)}`,
  ];
  if (platform['os.version']) parts.push(`"os.version":${goJsonString(platform['os.version'])}`);
  if (platform['os.features']?.length) {
    parts.push(`"os.features":[${platform['os.features'].map(goJsonString).join(',')}]`);
  }
  if (platform.variant) parts.push(`"variant":${goJsonString(platform.variant)}`);
  return `{${parts.join(',')}}`;
}
