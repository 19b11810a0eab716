/**
 * Base class of every error ociferry throws on purpose. `code` is stable and meant for
 * programs (`err.code === 'DIGEST_MISMATCH'`); the message is for people.
 */
export class OciferryError extends Error {
  /** Stable machine-readable code, e.g. `MANIFEST_UNKNOWN` or `INVALID_REFERENCE`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
