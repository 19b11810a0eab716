import { OciferryError } from '../errors.ts';

/** Bytes that should have held a JSON document do not; `cause` keeps the parser's error. */
export class JsonInvalidError extends OciferryError {
  /** What was read, e.g. `config sha256:… of ghcr.io/org/app:1`. */
  readonly what: string;
  readonly reason: string;

  constructor(what: string, reason: string, options?: { cause?: unknown }) {
    super('JSON_INVALID', `${what} is not valid JSON: ${reason}`, options);
    this.what = what;
    this.reason = reason;
  }
}

/**
 * Manifest or index bytes that are not a well-formed image manifest or index (bad JSON, a
 * missing field, a descriptor without a valid digest). `cause` keeps the lower-level error.
 */
export class ManifestInvalidError extends OciferryError {
  /** Which manifest, e.g. `ghcr.io/org/app:1 (sha256:…)`. */
  readonly where: string;
  /** What is wrong with it, without `where`. */
  readonly reason: string;

  constructor(where: string, reason: string, options?: { cause?: unknown }) {
    super('MANIFEST_INVALID', `${where}: invalid manifest: ${reason}`, options);
    this.where = where;
    this.reason = reason;
  }
}

/** An image config that lacks what an image config must have. */
export class ImageConfigInvalidError extends OciferryError {
  readonly where: string;
  readonly reason: string;

  constructor(where: string, reason: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', `${where}: invalid image config: ${reason}`, options);
    this.where = where;
    this.reason = reason;
  }
}
