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

/**
 * Something (a blob, a config, a JSON document) is bigger than the limit the caller set. It was
 * refused before or while reading, never buffered whole.
 */
export class SizeExceededError extends OciferryError {
  /** What was too big, e.g. `blob sha256:...` or `cache config`. */
  readonly what: string;
  /** Its size in bytes when known: announced, or counted up to the point of refusal. */
  readonly size: number | undefined;
  readonly limit: number;

  constructor(args: { what: string; size?: number; limit: number }) {
    const over = args.size === undefined ? 'is larger than' : `has ${args.size} bytes, more than`;
    super(
      'SIZE_EXCEEDED',
      `${args.what} ${over} the limit of ${args.limit} bytes; raise the limit if it is genuine`,
    );
    this.what = args.what;
    this.size = args.size;
    this.limit = args.limit;
  }
}
