import type { Readable } from 'node:stream';

const VERIFIES = Symbol('ociferry.verifies');

/** A stream carrying the digest it verifies, see {@link markVerified}. */
type Marked = Readable & { [VERIFIES]?: string };

/**
 * Declare that `stream` verifies `digest`: it fails (rather than ends) when its bytes do not hash
 * to `digest`, so a consumer that sees it end cleanly got exactly that blob. A store writing the
 * stream then checks the size only, instead of hashing the bytes a second time. Only a stream
 * that really fails on a mismatch may carry the mark: a verifying stream itself, or a stage fed
 * through `pipeline` by one (an upstream error destroys it with that error).
 */
export function markVerified<T extends Readable>(stream: T, digest: string): T {
  (stream as Marked)[VERIFIES] = digest;
  return stream;
}

/** The digest `stream` verifies (see {@link markVerified}), or undefined for unverified bytes. */
export function verifiedDigest(stream: Readable): string | undefined {
  return (stream as Marked)[VERIFIES];
}

/** True when `stream` verifies exactly `digest`: its bytes need no second hash. */
export function verifies(stream: Readable, digest: string): boolean {
  return verifiedDigest(stream) === digest;
}
