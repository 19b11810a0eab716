import { OciferryError } from '../errors.ts';
import type { LayoutStore } from '../layout/index.ts';
import { type Descriptor, MANIFEST_MEDIA_TYPES } from '../oci/index.ts';
import type { Repository } from '../registry/index.ts';

/** Default cap on manifest size, as the registry client's. */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

/** Reads verified manifest bytes by descriptor from wherever a remote came from. */
export interface ManifestLoader {
  /** Where manifests come from, for messages. */
  readonly description: string;
  load(descriptor: Descriptor, options?: { signal?: AbortSignal }): Promise<Buffer>;
}

/** A manifest was announced as one media type and served as another. */
export class ManifestMediaTypeError extends OciferryError {
  constructor(digest: string, announced: string, served: string) {
    super(
      'MEDIA_TYPE_MISMATCH',
      `manifest ${digest} is listed as ${announced} but was served as ${served}`,
    );
  }
}

/** Loads child manifests from a registry repository by digest. */
export function registryManifestLoader(repository: Repository): ManifestLoader {
  return {
    description: `${repository.registry}/${repository.name}`,
    async load(descriptor, options = {}) {
      const fetched = await repository.getManifest(descriptor.digest, {
        accept: [descriptor.mediaType, ...MANIFEST_MEDIA_TYPES],
        signal: options.signal,
      });
      if (fetched.descriptor.mediaType !== descriptor.mediaType) {
        throw new ManifestMediaTypeError(
          descriptor.digest,
          descriptor.mediaType,
          fetched.descriptor.mediaType,
        );
      }
      return fetched.bytes;
    },
  };
}

/** Loads manifests from an OCI layout (verified against their digest by the store). */
export function layoutManifestLoader(
  store: LayoutStore,
  limit = MANIFEST_SIZE_LIMIT,
): ManifestLoader {
  return {
    description: `oci:${store.dir}`,
    async load(descriptor) {
      // readBytes verifies the digest itself.
      return store.readBytes(descriptor.digest, { limit });
    },
  };
}
