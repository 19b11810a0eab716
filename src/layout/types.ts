import { MANIFEST_MEDIA_TYPES } from '../oci/index.ts';

export type { Descriptor, ImageIndex, Platform } from '../oci/index.ts';

/** Manifests and indexes, whose children graph walks follow; every other media type is a leaf. */
export const LINKING_MEDIA_TYPES: ReadonlySet<string> = new Set(MANIFEST_MEDIA_TYPES);

/** Annotation carrying a tag in an OCI layout's `index.json`. */
export const REF_NAME = 'org.opencontainers.image.ref.name';

/** containerd's (and BuildKit's) full image name annotation; looked up before {@link REF_NAME}. */
export const IMAGE_NAME = 'io.containerd.image.name';
