export type { Descriptor, ImageIndex, Platform } from '../registry/oci.ts';

/** Media types whose content links to other blobs; everything else is a leaf for graph walks. */
export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** The media types of {@link MediaTypes}: manifests and indexes, whose children graph walks follow. */
export const LINKING_MEDIA_TYPES: ReadonlySet<string> = new Set(Object.values(MediaTypes));

/** Annotation carrying a tag in an OCI layout's `index.json`. */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** containerd's (and BuildKit's) full image name annotation; looked up before {@link REF_NAME}. */
export const IMAGE_NAME = 'io.containerd.image.name';
