/**
 * ociferry: lazy OCI registry client. Resolve images without pulling layers, copy them between
 * registries and layouts with mounts and streams, build manifest lists from remote images, and
 * check BuildKit caches without downloading a layer.
 */

export * from './cache/index.ts';
export * from './copy/index.ts';
export * from './digest/index.ts';
export {
  ERROR_CODES,
  type ErrorCode,
  isErrorCode,
  isOciferryError,
  OciferryError,
  SizeExceededError,
} from './errors.ts';
export * from './extract/index.ts';
export * from './layout/index.ts';
export * from './oci/index.ts';
export * from './reference/index.ts';
export * from './registry/index.ts';
export * from './remote/index.ts';
export * from './service/index.ts';
