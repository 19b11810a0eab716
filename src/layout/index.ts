export {
  BlobUnknownError,
  InvalidTagError,
  LayoutError,
  LayoutInvalidError,
  LockLostError,
  LockTimeoutError,
  NotFoundInLayoutError,
} from './errors.ts';
export type { GcOptions, GcResult, PruneOptions, PruneResult, StoredBlob } from './gc.ts';
export { asReferrer, type Referrer } from './referrers.ts';
export {
  type LayoutBlobBody,
  type LayoutBlobSource,
  type LayoutFetchOptions,
  LayoutStore,
  type OpenOptions,
  type ReadBytesOptions,
  type UpdateOptions,
  type WriteBlobOptions,
} from './store.ts';
export {
  type Descriptor,
  IMAGE_NAME,
  type ImageIndex,
  type Platform,
  REF_NAME,
} from './types.ts';
