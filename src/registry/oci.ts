// Moved to src/oci; re-exported here until every importer reads from there.
export * from '../oci/media-types.ts';
export type { Descriptor, ImageIndex, ImageManifest, Platform } from '../oci/types.ts';
