import { normalizeGoTime } from '../cache/go-time.ts';
import { parseDigest } from '../digest/index.ts';
import { CacheServiceError } from './errors.ts';

/** `GET /v1/config`. */
export interface ServiceConfig {
  readonly namespace: string;
  readonly maxBlobSize: number;
  readonly urlTtlSeconds: number;
  readonly mediaTypes: readonly string[];
  readonly access: 'ro' | 'rw';
}

/** A result an engine holds for a record, by its own id (BuildKit's cache ref id). */
export interface RecordResultRef {
  readonly id: string;
  readonly createdAt?: string;
}

/** A cache key the engine holds. */
export interface RecordUpdate {
  readonly digest: string;
  readonly results?: readonly RecordResultRef[];
}

/** Input `input` of record `target` may come from record `source` through `selector`. */
export interface LinkUpdate {
  readonly source: string;
  readonly target: string;
  readonly input: number;
  readonly selector?: string;
}

/** `POST /v1/records` request. */
export interface UpdateRecordsRequest {
  readonly engineID?: string;
  readonly records: readonly RecordUpdate[];
  readonly links?: readonly LinkUpdate[];
}

/** A record whose result the service wants uploaded. */
export interface ExportRecord {
  readonly digest: string;
  readonly cacheRefID: string;
}

/** `POST /v1/records` response. */
export interface UpdateRecordsResponse {
  readonly exportRecords: readonly ExportRecord[];
}

/** A layer blob as an engine reports it. */
export interface LayerDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** One exported result: the record and its layer chain, bottom-up. */
export interface LayerUpdate {
  readonly recordDigest: string;
  readonly createdAt?: string;
  readonly layers: readonly LayerDescriptor[];
}

/** `POST /v1/layers` request. */
export interface UpdateLayersRequest {
  readonly engineID?: string;
  readonly results: readonly LayerUpdate[];
}

/** A minted URL (`layer-upload-url`, `layer-download-url`, `cache-mount-upload-url`). */
export interface MintedServiceUrl {
  readonly url: string;
  readonly method: 'GET' | 'PUT';
  readonly expiresAt: string;
  /** Uploads: the namespace already holds the blob. */
  readonly exists?: boolean;
  /** Downloads: the blob's size. */
  readonly size?: number;
}

/** A cache mount with its download URL (`GET /v1/cache-mounts`). */
export interface CacheMount {
  readonly name: string;
  readonly digest: string;
  readonly size: number;
  readonly url: string;
  readonly expiresAt: string;
}

/**
 * `POST /v1/prune` request: the limits of `ociferry cache prune`, each optional (a result stays
 * when it passes every limit given). `keepNewer` is in seconds.
 */
export interface PruneRequest {
  readonly keepLast?: number;
  readonly keepNewer?: number;
  readonly maxSize?: number;
  readonly maxConfigSize?: number;
}

/** Counts of a namespace's entries, and bytes of their distinct blobs. */
export interface PruneCounts {
  readonly records: number;
  readonly results: number;
  readonly layers: number;
  readonly bytes: number;
}

/** `POST /v1/prune` response. */
export interface PruneResponse {
  readonly kept: PruneCounts;
  /** `bytes`: blobs the dropped results referenced that no kept result references. */
  readonly dropped: PruneCounts;
  /** Results dropped by `maxConfigSize` alone. */
  readonly droppedForConfigSize: number;
  /** With `keepLast`: builds found, and builds still with a kept result. */
  readonly builds?: { readonly found: number; readonly kept: number };
  readonly blobs: {
    /** Blobs the namespace let go: named by nothing kept, unused for the grace period. */
    readonly released: number;
    readonly releasedBytes: number;
    /** Blobs then deleted from the store, which no namespace held any more. */
    readonly deleted: number;
    readonly bytesFreed: number;
  };
}

/** Annotation BuildKit and containerd use for a layer's uncompressed digest. */
export const UNCOMPRESSED_ANNOTATION = 'containerd.io/uncompressed';

/** Throw BAD_REQUEST unless `ok`. */
function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new CacheServiceError('BAD_REQUEST', `malformed request: ${what}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A valid digest string, else DIGEST_INVALID. */
export function checkDigest(value: unknown, what = 'digest'): string {
  check(typeof value === 'string', `${what} must be a string`);
  try {
    parseDigest(value);
  } catch {
    throw new CacheServiceError('DIGEST_INVALID', `${what} is not a valid digest`);
  }
  return value;
}

function optionalString(value: unknown, what: string): string | undefined {
  check(value === undefined || typeof value === 'string', `${what} must be a string`);
  return value as string | undefined;
}

/** An optional RFC 3339 time as Go reads it (BuildKit parses what ImportCache echoes). */
function optionalTime(value: unknown, what: string): string | undefined {
  const text = optionalString(value, what);
  check(
    text === undefined || normalizeGoTime(text) !== undefined,
    `${what} must be an RFC 3339 time`,
  );
  return text;
}

function array(value: unknown, what: string, optional = false): unknown[] {
  if (optional && value === undefined) return [];
  check(Array.isArray(value), `${what} must be an array`);
  return value as unknown[];
}

function size(value: unknown, what: string): number {
  check(Number.isSafeInteger(value) && (value as number) >= 0, `${what} must be a size`);
  return value as number;
}

/** Validate a `POST /v1/records` body. */
export function parseUpdateRecords(body: unknown): UpdateRecordsRequest {
  check(isObject(body), 'the body must be an object');
  const records = array(body.records, 'records').map((record, i): RecordUpdate => {
    check(isObject(record), `records[${i}] must be an object`);
    const results = array(record.results, `records[${i}].results`, true).map((result, j) => {
      check(isObject(result), `records[${i}].results[${j}] must be an object`);
      check(typeof result.id === 'string' && result.id !== '', `records[${i}].results[${j}].id`);
      return {
        id: result.id as string,
        createdAt: optionalTime(result.createdAt, `records[${i}].results[${j}].createdAt`),
      };
    });
    return { digest: checkDigest(record.digest, `records[${i}].digest`), results };
  });
  const links = array(body.links, 'links', true).map((link, i): LinkUpdate => {
    check(isObject(link), `links[${i}] must be an object`);
    check(Number.isSafeInteger(link.input) && (link.input as number) >= 0, `links[${i}].input`);
    return {
      source: checkDigest(link.source, `links[${i}].source`),
      target: checkDigest(link.target, `links[${i}].target`),
      input: link.input as number,
      selector: optionalString(link.selector, `links[${i}].selector`) ?? '',
    };
  });
  return { engineID: optionalString(body.engineID, 'engineID'), records, links };
}

/** Validate a `POST /v1/layers` body. */
export function parseUpdateLayers(body: unknown): UpdateLayersRequest {
  check(isObject(body), 'the body must be an object');
  const results = array(body.results, 'results').map((result, i): LayerUpdate => {
    check(isObject(result), `results[${i}] must be an object`);
    const layers = array(result.layers, `results[${i}].layers`).map((layer, j) => {
      const what = `results[${i}].layers[${j}]`;
      check(isObject(layer), `${what} must be an object`);
      check(typeof layer.mediaType === 'string', `${what}.mediaType`);
      const annotations = layer.annotations;
      check(
        annotations === undefined ||
          (isObject(annotations) && Object.values(annotations).every((v) => typeof v === 'string')),
        `${what}.annotations must map strings to strings`,
      );
      return {
        mediaType: layer.mediaType as string,
        digest: checkDigest(layer.digest, `${what}.digest`),
        size: size(layer.size, `${what}.size`),
        annotations: annotations as Record<string, string> | undefined,
      };
    });
    check(layers.length > 0, `results[${i}].layers must not be empty`);
    return {
      recordDigest: checkDigest(result.recordDigest, `results[${i}].recordDigest`),
      createdAt: optionalTime(result.createdAt, `results[${i}].createdAt`),
      layers,
    };
  });
  return { engineID: optionalString(body.engineID, 'engineID'), results };
}

/** Validate a `POST /v1/layer-upload-url` or `layer-download-url` body. */
export function parseBlobUrlRequest(body: unknown): { digest: string; size?: number } {
  check(isObject(body), 'the body must be an object');
  const digest = checkDigest(body.digest);
  return body.size === undefined ? { digest } : { digest, size: size(body.size, 'size') };
}

/** Validate a `POST /v1/cache-mount-upload-url` body. */
export function parseMountUrlRequest(body: unknown): {
  name: string;
  digest: string;
  size: number;
} {
  check(isObject(body), 'the body must be an object');
  check(
    typeof body.name === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(body.name),
    'name must be 1-128 letters, digits, dots, dashes or underscores',
  );
  return { name: body.name, digest: checkDigest(body.digest), size: size(body.size, 'size') };
}

/** Validate a `POST /v1/prune` body. */
export function parsePruneRequest(body: unknown): PruneRequest {
  check(isObject(body), 'the body must be an object');
  const limit = (name: keyof PruneRequest, least: number, whole: boolean) => {
    const value = body[name];
    if (value === undefined) return {};
    check(
      typeof value === 'number' &&
        Number.isFinite(value) &&
        value >= least &&
        (!whole || Number.isSafeInteger(value)),
      `${name} must be a ${whole ? 'whole ' : ''}number of at least ${least}`,
    );
    return { [name]: value };
  };
  return {
    ...limit('keepLast', 1, true),
    ...limit('keepNewer', 0, false),
    ...limit('maxSize', 0, true),
    ...limit('maxConfigSize', 2, true),
  };
}
