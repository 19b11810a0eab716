export type { Challenge } from './auth/challenge.ts';
export { parseChallenges, preferredChallenge } from './auth/challenge.ts';
export {
  CredentialHelperError,
  eraseWithHelper,
  type HelperOptions,
  storeWithHelper,
} from './auth/credential-helper.ts';
export {
  type Credential,
  CredentialConfigError,
  type CredentialLookup,
  CredentialStore,
  type CredentialStoreOptions,
  dockerConfigPath,
  dockerServerAddress,
} from './auth/credentials.ts';
export {
  type CredentialLocation,
  describeCredentialLocation,
  removeDockerLogin,
  saveDockerLogin,
} from './auth/docker-config.ts';
export { CATALOG_SCOPE, normalizeScopes, repositoryScope, scopesWrite } from './auth/scope.ts';
export type { FetchBlobOptions } from './blobs.ts';
export type { CatalogOptions } from './catalog.ts';
export { RegistryClient, type RegistryClientOptions } from './client.ts';
export { type OciErrorEntry, RegistryError } from './errors.ts';
export type { HttpTimeouts, ProxyOptions, RequestEvent } from './http.ts';
export type {
  FetchedManifest,
  ManifestReadOptions,
  PutManifestOptions,
  PutManifestResult,
} from './manifests.ts';
export type { MountResult } from './mount.ts';
export { describeRateLimit, type RateLimit } from './rate-limit.ts';
export { redactUrl } from './redact.ts';
export { type ReferrersOptions, referrersTag } from './referrers.ts';
export type { Repository, SignalOptions } from './repository.ts';
export type { RetryOptions } from './retry.ts';
export type { ListTagsOptions } from './tags.ts';
export type {
  BlobBody,
  BlobSource,
  UploadBlobOptions,
  UploadDescriptor,
  UploadMode,
  UploadSession,
} from './uploads.ts';
