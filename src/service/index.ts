export * from './api.ts';
export { type ServiceBlobStore, StoreBlobStore } from './blob-store.ts';
export {
  CacheServiceClient,
  type CacheServiceClientOptions,
  type ReplayableBody,
} from './client.ts';
export { CacheServiceError } from './errors.ts';
export { PgliteDatabase } from './pglite-database.ts';
export { PostgresDatabase, type PostgresOptions } from './postgres-database.ts';
export { CacheRecords, DEFAULT_GRACE_MS } from './records.ts';
export {
  CacheRetention,
  type NamespacePruneResult,
  type RetentionLimits,
  type RetentionRunResult,
  type StoreCollectionResult,
} from './retention.ts';
export { migrate } from './schema.ts';
export {
  type CacheServer,
  type CacheServerOptions,
  DEFAULT_RETENTION_INTERVAL_MS,
  openServiceDatabase,
  type RequestLogLine,
  type RetentionEvent,
  startCacheServer,
} from './server.ts';
export { CacheService, DEFAULT_MAX_BLOB_SIZE, LAYER_MEDIA_TYPES } from './service.ts';
export { DatabaseError, type SqlDatabase, type SqlExecutor } from './sql.ts';
export { type Access, type Principal, TokenTable } from './tokens.ts';
export { generateSigningKey, type SigningKey, type UrlGrant, UrlSigner } from './url-signer.ts';
