export {
  type CacheCheckResult,
  type CacheHit,
  CHECK_MEANING,
  type ChainBlob,
  type CheckCacheOptions,
  checkCache,
} from './check.ts';
export {
  CACHE_CONFIG_MEDIA_TYPE,
  type CacheConfig,
  type CacheInput,
  type CacheLayer,
  type CacheRecord,
  type CacheResult,
  type ChainedResult,
  DEFAULT_CACHE_CONFIG_LIMIT,
  type LayerAnnotations,
  validateCacheConfig,
} from './config.ts';
export {
  DEFAULT_CACHE_DIR_MAX_BYTES,
  type LoadCacheConfigOptions,
  loadCacheConfig,
} from './config-load.ts';
export {
  type ParseCacheConfigOptions,
  type ParsedCacheConfig,
  parseCacheConfig,
} from './config-parse.ts';
export { serializeCacheConfig, sortCacheConfig } from './config-write.ts';
export {
  type CacheConversion,
  type CacheCopyResult,
  CacheExportEmptyError,
  type CacheExportOutcome,
  type CacheTargetInput,
  type CopyCacheOptions,
  cacheTargetName,
  copyCache,
} from './copy.ts';
export { formatCsvFields, parseCsvFields } from './csv.ts';
export { CacheConfigError, CacheOptionsError } from './errors.ts';
export {
  type CacheExplanation,
  type ExplainCacheOptions,
  type ExplainedSource,
  type ExplainedStep,
  explainCache,
  type StepCode,
  type StepInput,
} from './explain.ts';
export {
  type CacheManifest,
  type CacheWrapperFormat,
  cacheManifest,
  givesForm,
  wrapperFormat,
} from './export.ts';
export {
  CacheGraph,
  type ChainLayer,
  type GraphLink,
  type GraphResult,
  type Reachable,
  type RecordKey,
} from './graph.ts';
export {
  CacheNotFoundError,
  failedImportWarning,
  isFailedImport,
  NotACacheError,
  type OpenCacheSourceOptions,
  openCacheSource,
} from './import.ts';
export {
  CacheImportCache,
  type CacheImportCacheOptions,
  importCacheOf,
} from './import-cache.ts';
export { BUILDKIT_CONFIG_LIMIT, oversizedConfigProblem } from './importable.ts';
export { INLINE_CACHE_KEY } from './inline.ts';
export {
  type CacheKey,
  type CacheKeyInput,
  contentKey,
  isRandomKey,
  type OperationKeyInit,
  operationKey,
  recordDigest,
  recordKeys,
} from './key.ts';
export {
  type CacheKeyLookupResult,
  type KeyLookup,
  type LookupCacheKeysOptions,
  lookupCacheKeys,
} from './lookup.ts';
export {
  type CacheListing,
  type ListedConfig,
  type ListedInput,
  type ListedRecord,
  type ListedResult,
  listCache,
} from './ls.ts';
export { type CacheItem, CacheKeyStore, type KeyStoreSource } from './match.ts';
export { type CacheMergeStats, type MergedCacheConfig, mergeCacheConfigs } from './merge.ts';
export { type CacheMergeResult, type MergeCachesOptions, mergeCaches } from './merge-caches.ts';
export {
  type CacheCompression,
  type CacheExportFormat,
  type CacheExportTarget,
  type CacheImportSource,
  type CacheMode,
  type LocalCacheExport,
  type LocalCacheImport,
  parseCacheExport,
  parseCacheImport,
  type RegistryCacheExport,
  type RegistryCacheImport,
  readServiceToken,
  type ServiceCache,
  type ServiceCacheExport,
} from './options.ts';
export {
  type CachePruneCounts,
  type PruneCacheOptions,
  type PrunedCacheConfig,
  pruneCacheConfig,
} from './prune.ts';
export {
  type CachePruneResult,
  type PruneCachesOptions,
  pruneCache,
  type StoreCollection,
} from './prune-cache.ts';
export { formRefusalWarning, isHarborChallenge } from './readers.ts';
export {
  type ExportToServiceOptions,
  exportToService,
  type ServiceExportResult,
} from './service-cache.ts';
export {
  type CacheFormat,
  type CacheSource,
  type CacheSourceInput,
  cacheSourceName,
} from './source.ts';
