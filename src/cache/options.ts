import { parseDigest } from '../digest/index.ts';
import { parseRegistryReference, type RegistryReference, withTag } from '../reference/index.ts';
import { parseCsvFields } from './csv.ts';
import { CacheOptionsError } from './errors.ts';

/** `min` exports the final result's records only; `max` every intermediate result too. */
export type CacheMode = 'min' | 'max';

/** Layer compressions BuildKit's cache exporters accept (`compression=`). */
export type CacheCompression = 'uncompressed' | 'gzip' | 'estargz' | 'zstd';

/** Import from a registry: `type=registry,ref=HOST/REPO:TAG[,registry.insecure=true]`. */
export interface RegistryCacheImport {
  readonly type: 'registry';
  /** Normalised; `:latest` added when the ref has neither tag nor digest, as BuildKit does. */
  readonly ref: RegistryReference;
  /**
   * `registry.insecure`: skip TLS certificate verification for this registry (as BuildKit does;
   * a registry client setting, see `RegistryClientOptions.insecure`); absent when not given.
   */
  readonly insecure?: boolean;
}

/** Import from an OCI layout directory: `type=local,src=DIR[,tag=T][,digest=D]`. */
export interface LocalCacheImport {
  readonly type: 'local';
  /** `src` (or its old name `store`). */
  readonly src: string;
  /** Tag looked up in `index.json` when no digest is given; default `latest`. */
  readonly tag: string;
  readonly digest?: string;
}

/**
 * An ociferry cache service namespace (`ociferry cache serve`):
 * `type=service,url=URL,token-env=VAR` (or `token=TOKEN` when the user insists). The namespace is
 * the one the token is bound to. The same shape imports and exports; an export takes no format key.
 */
export interface ServiceCache {
  readonly type: 'service';
  /** Base URL of the service, e.g. `http://127.0.0.1:7450`. */
  readonly url: string;
  /** `token-env`: the environment variable holding the token, read when the cache is opened. */
  readonly tokenEnv?: string;
  /** `token`: the token itself (it then shows in the process list: prefer `token-env`). */
  readonly token?: string;
}

/** Where a cache is read from (`--from`, BuildKit's `--import-cache`). */
export type CacheImportSource = RegistryCacheImport | LocalCacheImport | ServiceCache;

/**
 * How an exported cache is written; shared by both export types. `mode`, `imageManifest` and
 * `ociMediatypes` are absent when not given: a cache copy then keeps the source as it is (see
 * `copyCache`), and a new export takes BuildKit's defaults (`mode=min`, see `wrapperFormat`).
 */
export interface CacheExportFormat {
  /** `mode=`: `min` keeps the final result's records only, `max` every record. */
  readonly mode?: CacheMode;
  /** `image-manifest=`: an OCI image manifest wrapping the config (true) or an index/list (false). */
  readonly imageManifest?: boolean;
  /** `oci-mediatypes=`: OCI media types (true) or Docker ones (false). */
  readonly ociMediatypes?: boolean;
  /** `compression=`: for blobs an export creates; a cache copy creates none and keeps blobs as they are. */
  readonly compression?: CacheCompression;
  readonly compressionLevel?: number;
  /** `force-compression`; an empty value means true. A cache copy cannot honour true (no layers read). */
  readonly forceCompression?: boolean;
  /** Report an export failure without failing the operation. Default false. */
  readonly ignoreError: boolean;
}

/** Export to a registry: `type=registry,ref=HOST/REPO:TAG[,mode=max]...`. */
export interface RegistryCacheExport extends CacheExportFormat {
  readonly type: 'registry';
  /** Normalised; `:latest` added when the ref has neither tag nor digest, as BuildKit does. */
  readonly ref: RegistryReference;
  /** `registry.insecure`, as for {@link RegistryCacheImport.insecure}. */
  readonly insecure?: boolean;
}

/** Export to an OCI layout directory: `type=local,dest=DIR[,tag=T][,reset=true]...`. */
export interface LocalCacheExport extends CacheExportFormat {
  readonly type: 'local';
  /** `dest` (or its old name `store`). */
  readonly dest: string;
  /** Default `latest`. */
  readonly tag: string;
  /** Delete blobs no manifest in the store references any more; absent when not given. */
  readonly reset?: boolean;
}

/** Export to a cache service; `mode` selects records as for the other types. */
export interface ServiceCacheExport extends ServiceCache, CacheExportFormat {}

/** Where a cache is written (`--to`, BuildKit's `--export-cache`). */
export type CacheExportTarget = RegistryCacheExport | LocalCacheExport | ServiceCacheExport;

type Direction = 'import' | 'export';
type CacheType = 'registry' | 'local' | 'service';

const UNSUPPORTED_TYPES = new Set(['gha', 's3', 'azblob', 'inline']);
const FORMAT_KEYS = [
  'mode',
  'image-manifest',
  'oci-mediatypes',
  'compression',
  'compression-level',
  'force-compression',
  'ignore-error',
];
const VALID_KEYS: Record<Direction, Record<CacheType, readonly string[]>> = {
  import: {
    registry: ['ref', 'registry.insecure'],
    local: ['src', 'tag', 'digest'],
    service: ['url', 'token-env', 'token'],
  },
  export: {
    registry: ['ref', 'registry.insecure', ...FORMAT_KEYS],
    local: ['dest', 'tag', 'reset', ...FORMAT_KEYS],
    service: ['url', 'token-env', 'token', 'mode', 'ignore-error'],
  },
};
const COMPRESSIONS: readonly string[] = ['uncompressed', 'gzip', 'estargz', 'zstd'];
/** Go's `strconv.ParseBool`. */
const BOOLEANS = new Map([
  ...['1', 't', 'T', 'TRUE', 'true', 'True'].map((v) => [v, true] as const),
  ...['0', 'f', 'F', 'FALSE', 'false', 'False'].map((v) => [v, false] as const),
]);

/**
 * Parse a cache source in BuildKit's `--import-cache` syntax: CSV `key=value` fields (keys
 * case-insensitive, values as given), `type=registry|local`, or a bare reference for the legacy
 * `type=registry,ref=VALUE`. Stricter than BuildKit: unknown keys, repeated keys and bad values
 * are errors. Throws {@link CacheOptionsError}.
 */
export function parseCacheImport(csv: string): CacheImportSource {
  const { type, attrs } = readOptions(csv, 'import');
  if (type === 'registry') {
    const insecure = attrs.bool('registry.insecure');
    return { type, ref: attrs.ref(), ...(insecure === undefined ? {} : { insecure }) };
  }
  if (type === 'service') return attrs.service();
  const digest = attrs.get('digest');
  return {
    type,
    src: attrs.required('src'),
    tag: attrs.tag(),
    ...(digest === undefined ? {} : { digest: attrs.digest(digest) }),
  };
}

/**
 * Parse a cache target in BuildKit's `--export-cache` syntax (see {@link parseCacheImport}).
 * `mode`, `image-manifest` and `oci-mediatypes` are left out when not given (a copy keeps what
 * the source has; `wrapperFormat` gives BuildKit's defaults); `image-manifest=true` with
 * `oci-mediatypes=false` is an error as in BuildKit. `tag` defaults to `latest`.
 */
export function parseCacheExport(csv: string): CacheExportTarget {
  const { type, attrs } = readOptions(csv, 'export');
  const format = readFormat(attrs);
  if (type === 'service') return { ...attrs.service(), ...format };
  if (type === 'registry') {
    const insecure = attrs.bool('registry.insecure');
    return { type, ref: attrs.ref(), ...format, ...(insecure === undefined ? {} : { insecure }) };
  }
  const reset = attrs.bool('reset');
  return {
    type,
    dest: attrs.required('dest'),
    tag: attrs.tag(),
    ...format,
    ...(reset === undefined ? {} : { reset }),
  };
}

function readFormat(attrs: Attributes): CacheExportFormat {
  const mode = attrs.get('mode');
  if (mode !== undefined && mode !== 'min' && mode !== 'max') {
    throw attrs.invalid('mode', 'must be min or max');
  }
  const ociMediatypes = attrs.bool('oci-mediatypes');
  const imageManifest = attrs.bool('image-manifest');
  if (imageManifest === true && ociMediatypes === false) {
    throw new CacheOptionsError(
      'image-manifest=true needs oci-mediatypes=true: an image-manifest cache is OCI only',
      { key: 'image-manifest' },
    );
  }
  const compression = attrs.get('compression');
  if (compression !== undefined && !COMPRESSIONS.includes(compression)) {
    throw attrs.invalid('compression', `must be one of ${COMPRESSIONS.join(', ')}`);
  }
  const level = attrs.get('compression-level');
  if (level !== undefined && !(/^[+-]?\d+$/.test(level) && Number.isSafeInteger(Number(level)))) {
    throw attrs.invalid('compression-level', 'must be an integer');
  }
  const force = attrs.get('force-compression') === '' ? true : attrs.bool('force-compression');
  return {
    ...(mode === undefined ? {} : { mode }),
    ...(imageManifest === undefined ? {} : { imageManifest }),
    ...(ociMediatypes === undefined ? {} : { ociMediatypes }),
    ...(compression === undefined ? {} : { compression: compression as CacheCompression }),
    ...(level === undefined ? {} : { compressionLevel: Number(level) }),
    ...(force === undefined ? {} : { forceCompression: force }),
    ignoreError: attrs.bool('ignore-error') ?? false,
  };
}

/** Split the CSV, check type and keys, and give typed access to the values. */
function readOptions(csv: string, direction: Direction): { type: CacheType; attrs: Attributes } {
  // Legacy form: a bare reference. BuildKit tests for a "type=" substring; a value with no
  // `=` at all is the same for every valid reference and does not misread `TYPE=...`.
  if (csv !== '' && !csv.includes('=')) {
    return {
      type: 'registry',
      attrs: new Attributes(new Map([['ref', csv]]), `registry cache ${direction}`),
    };
  }
  const values = new Map<string, string>();
  for (const field of parseCsvFields(csv)) {
    const eq = field.indexOf('=');
    if (eq < 0) {
      throw new CacheOptionsError(
        `invalid cache option ${JSON.stringify(field)}: expected key=value`,
      );
    }
    const key = field.slice(0, eq).toLowerCase();
    if (values.has(key)) {
      throw new CacheOptionsError(`cache option ${JSON.stringify(key)} is given twice`, { key });
    }
    values.set(key, field.slice(eq + 1));
  }

  const type = values.get('type');
  values.delete('type');
  if (!type) {
    throw new CacheOptionsError(
      `cache ${direction} options need type=registry, type=local or type=service`,
      { key: 'type' },
    );
  }
  if (type !== 'registry' && type !== 'local' && type !== 'service') {
    const problem = UNSUPPORTED_TYPES.has(type) ? 'is not supported by ociferry' : 'is unknown';
    throw new CacheOptionsError(
      `cache type ${JSON.stringify(type)} ${problem} (supported: registry, local, service)`,
      { key: 'type' },
    );
  }

  const store = values.get('store');
  const storeName = direction === 'import' ? 'src' : 'dest';
  if (type === 'local' && store !== undefined) {
    if (values.has(storeName)) {
      throw new CacheOptionsError(`give ${storeName} or its old name store, not both`, {
        key: 'store',
      });
    }
    values.delete('store');
    values.set(storeName, store);
  }

  const valid = VALID_KEYS[direction][type];
  for (const key of values.keys()) {
    if (valid.includes(key)) continue;
    const exportOnly = direction === 'import' && VALID_KEYS.export[type].includes(key);
    const hint = exportOnly
      ? 'it applies to cache exports only'
      : `valid options: type, ${valid.join(', ')}`;
    throw new CacheOptionsError(
      `unknown option ${JSON.stringify(key)} for a ${type} cache ${direction} (${hint})`,
      { key },
    );
  }
  return { type, attrs: new Attributes(values, `${type} cache ${direction}`) };
}

/** Typed readers over the option values; every error names its key. */
class Attributes {
  readonly #values: ReadonlyMap<string, string>;
  /** What the options describe, e.g. `local cache import`. */
  readonly #label: string;

  constructor(values: ReadonlyMap<string, string>, label: string) {
    this.#values = values;
    this.#label = label;
  }

  get(key: string): string | undefined {
    return this.#values.get(key);
  }

  required(key: string): string {
    const value = this.get(key);
    if (!value) throw new CacheOptionsError(`a ${this.#label} needs ${key}=<value>`, { key });
    return value;
  }

  bool(key: string): boolean | undefined {
    const value = this.get(key);
    if (value === undefined) return undefined;
    const parsed = BOOLEANS.get(value);
    if (parsed === undefined) throw this.invalid(key, 'must be true or false');
    return parsed;
  }

  /** `ref`, parsed, with `:latest` when it has neither tag nor digest (BuildKit's `TagNameOnly`). */
  ref(): RegistryReference {
    const raw = this.required('ref');
    try {
      const ref = parseRegistryReference(raw);
      return ref.tag === undefined && ref.digest === undefined ? withTag(ref, 'latest') : ref;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new CacheOptionsError(`ref: ${reason}`, { key: 'ref', cause: error });
    }
  }

  /**
   * `url` (http or https) and the token's origin: `token-env` naming a set environment variable,
   * or `token`. The token is never part of a message.
   */
  service(): ServiceCache {
    const url = this.required('url');
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw this.invalid('url', 'must be an http:// or https:// URL');
    }
    if (parsed.username || parsed.password || parsed.search) {
      throw new CacheOptionsError(
        'a service cache url takes no credentials or query: give the token with token-env=VAR',
        { key: 'url' },
      );
    }
    const tokenEnv = this.get('token-env');
    const token = this.get('token');
    if (tokenEnv !== undefined && token !== undefined) {
      throw new CacheOptionsError('give token-env or token, not both', { key: 'token' });
    }
    if (token !== undefined) {
      if (token === '') throw new CacheOptionsError('token must not be empty', { key: 'token' });
      return { type: 'service', url, token };
    }
    if (!tokenEnv) {
      throw new CacheOptionsError(
        'a service cache needs token-env=VAR, the environment variable holding its token',
        { key: 'token-env' },
      );
    }
    return { type: 'service', url, tokenEnv };
  }

  tag(): string {
    const tag = this.get('tag') ?? 'latest';
    if (tag === '') throw this.invalid('tag', 'must not be empty');
    return tag;
  }

  digest(value: string): string {
    try {
      return parseDigest(value).digest;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new CacheOptionsError(`digest: ${reason}`, { key: 'digest', cause: error });
    }
  }

  invalid(key: string, problem: string): CacheOptionsError {
    return new CacheOptionsError(
      `cache option ${key}=${JSON.stringify(this.get(key))} is invalid: ${key} ${problem}`,
      { key },
    );
  }
}

/** Tokens read by {@link readServiceToken}, kept beside (never on) the cache objects. */
const readTokens = new WeakMap<ServiceCache, string>();

/**
 * Read the token of a service cache from `env` now (a CLI reads its own environment, not
 * necessarily the process's); later opens of this `cache` object use it. Throws
 * {@link CacheOptionsError} when `token-env` names a variable that is unset or empty; the message
 * names the variable, never a value.
 */
export function readServiceToken(cache: ServiceCache, env: NodeJS.ProcessEnv = process.env): void {
  if (cache.token !== undefined) return;
  const name = cache.tokenEnv ?? '';
  const value = env[name];
  if (!value) {
    throw new CacheOptionsError(
      name === ''
        ? 'a service cache needs token-env=VAR, the environment variable holding its token'
        : `token-env=${name}: the environment variable ${name} is not set or is empty; set it to the cache service's token`,
      { key: 'token-env' },
    );
  }
  readTokens.set(cache, value);
}

/**
 * The token of a service cache: `token`, the one {@link readServiceToken} read, or the value of
 * its `token-env` variable in the process's environment. Throws {@link CacheOptionsError} as
 * {@link readServiceToken} does.
 */
export function serviceToken(cache: ServiceCache): string {
  if (cache.token !== undefined) return cache.token;
  if (!readTokens.has(cache)) readServiceToken(cache);
  return readTokens.get(cache) as string;
}
