/** Media type of an OCI image manifest. */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** Media type of an OCI image index. */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** Media type of an OCI image config. */
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** Media type of the OCI empty descriptor (`{}`), for artifacts without a config. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
/** Media type of an uncompressed OCI layer. */
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
/** Media type of a gzip-compressed OCI layer. */
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** Media type of a zstd-compressed OCI layer. */
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** Media type of an uncompressed OCI layer that registries may refuse to host (deprecated). */
export const OCI_NONDISTRIBUTABLE_LAYER = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
/** Media type of a Docker schema 2 manifest. */
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** Media type of a Docker manifest list. */
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Media type of a Docker image config. */
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** Media type of an uncompressed Docker layer. */
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
/** Media type of a gzip-compressed Docker layer. */
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** Media type of a Docker layer fetched from its `urls` (Windows base layers), never pushed. */
export const DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar';

/**
 * `Accept` list for manifest requests: all four manifest types, so that registries return an
 * index where there is one (ECR and GHCR otherwise answer with one platform or an error).
 */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  OCI_INDEX,
  OCI_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST,
];

/** True for the media types of manifest lists (OCI index, Docker list). */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

/** True for the media types of single-image manifests (OCI, Docker schema 2). */
export function isManifestMediaType(mediaType: string): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}
