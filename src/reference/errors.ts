import { OciferryError } from '../errors.ts';

/** A string that should have been an image reference is not one ociferry accepts. */
export class InvalidReferenceError extends OciferryError {
  /** The reference as given, with anything that looks like `user:password@` masked. */
  readonly input: string;

  constructor(input: string, reason: string, options?: { cause?: unknown }) {
    const shown = maskUserinfo(input);
    super('REFERENCE_INVALID', `invalid reference ${quote(shown, 200)}: ${reason}`, options);
    this.input = shown;
  }
}

/**
 * Masks `user:password@` typed in front of a host (`u:p@ghcr.io/x`, `https://u:p@host/x`).
 * A digest `@` is never followed by a `/`, so only an `@` before the last `/` can be userinfo.
 */
function maskUserinfo(input: string): string {
  if (input.startsWith('oci:')) return input;
  const lastSlash = input.lastIndexOf('/');
  if (lastSlash < 0) return input;
  const at = input.lastIndexOf('@', lastSlash);
  const schemeEnd = /^[a-z][a-z0-9+.-]*:\/\//i.exec(input)?.[0].length ?? 0;
  if (at < schemeEnd) return input;
  return `${input.slice(0, schemeEnd)}***${input.slice(at)}`;
}

/** `value` in double quotes for an error message, shortened to `limit` characters. */
export function quote(value: string, limit = 100): string {
  return JSON.stringify(value.length > limit ? `${value.slice(0, limit)}...` : value);
}
