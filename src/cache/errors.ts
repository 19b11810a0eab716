import { OciferryError } from '../errors.ts';

/**
 * A BuildKit cache config (`application/vnd.buildkit.cacheconfig.v0`) is malformed: bad JSON,
 * a wrong JSON type, an index out of range, a loop, an empty input group.
 */
export class CacheConfigError extends OciferryError {
  /** Index of the record at fault, when one is. */
  readonly record: number | undefined;
  /** Index of the layer at fault, when one is. */
  readonly layer: number | undefined;

  constructor(message: string, options: { record?: number; layer?: number; cause?: unknown } = {}) {
    super('CACHE_CONFIG_INVALID', `invalid cache config: ${message}`, { cause: options.cause });
    this.record = options.record;
    this.layer = options.layer;
  }
}

/** A `--from`/`--to` cache option string (BuildKit CSV syntax) is malformed or unsupported. */
export class CacheOptionsError extends OciferryError {
  /** The option key at fault, when one is. */
  readonly key: string | undefined;

  constructor(message: string, options: { key?: string; cause?: unknown } = {}) {
    super('CACHE_OPTIONS_INVALID', message, { cause: options.cause });
    this.key = options.key;
  }
}
