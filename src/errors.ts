/**
 * Base class of every error ociferry throws on purpose. `code` is stable and meant for
 * programs (`err.code === 'DIGEST_MISMATCH'`); the message is for people.
 */
export class OciferryError extends Error {
  /** Stable machine-readable code, e.g. `MANIFEST_UNKNOWN` or `INVALID_REFERENCE`. */
  readonly code: string;
  /** What went wrong, without the advice: the message is this, then `; ` and the hint, if any. */
  readonly summary: string;
  /** What to do about it, when the error knows (`check the host and port`). */
  readonly hint: string | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; hint?: string }) {
    const { hint, ...errorOptions } = options ?? {};
    super(
      hint ? `${message}; ${hint}` : message,
      'cause' in errorOptions ? errorOptions : undefined,
    );
    this.name = new.target.name;
    this.code = code;
    this.summary = message;
    this.hint = hint || undefined;
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
    super('SIZE_EXCEEDED', `${args.what} ${over} the limit of ${args.limit} bytes`, {
      hint: 'raise the limit if it is genuine',
    });
    this.what = args.what;
    this.size = args.size;
    this.limit = args.limit;
  }
}
