import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { parseDigest } from './digest.ts';
import { DigestMismatchError, SizeMismatchError } from './errors.ts';
import { createHasher, type Hasher } from './hasher.ts';
import { markVerified, verifies } from './verified.ts';

/** Options of {@link DigestVerifier}. */
export interface VerifierOptions {
  /** Expected total size; more bytes fail at once, fewer fail at the end. */
  size?: number;
  /** Where the bytes come from, for error messages (never include credentials). */
  source?: string;
  /**
   * Default true. False when an upstream verifier in the same pipeline already checks this
   * digest (a stream marked as verifying it): only the size is counted and checked, saving a
   * second hash. A verifier that does not hash carries no verification mark of its own.
   */
  hash?: boolean;
}

/**
 * Pass-through stream that hashes what flows through it and fails with
 * {@link DigestMismatchError} (or {@link SizeMismatchError}) at the end if the bytes do not
 * match. Consumers must treat data as good only once the stream has finished without error.
 * A hashing verifier is marked as verifying its digest ({@link markVerified}).
 */
export class DigestVerifier extends Transform {
  readonly expected: string;
  readonly #hasher: Hasher | undefined;
  #bytes: number;
  readonly #size: number | undefined;
  readonly #source: string | undefined;

  constructor(expected: string, options: VerifierOptions = {}) {
    super();
    const parsed = parseDigest(expected);
    this.expected = parsed.digest;
    this.#hasher = options.hash === false ? undefined : createHasher(parsed.algorithm);
    if (this.#hasher) markVerified(this, parsed.digest);
    this.#bytes = 0;
    this.#size = options.size;
    this.#source = options.source;
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#size !== undefined && this.#bytes > this.#size) {
      callback(this.#sizeError());
      return;
    }
    this.#hasher?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#size !== undefined && this.#bytes !== this.#size) {
      callback(this.#sizeError());
      return;
    }
    const actual = this.#hasher?.digest() ?? this.expected;
    if (actual !== this.expected) {
      callback(new DigestMismatchError({ expected: this.expected, actual, source: this.#source }));
      return;
    }
    callback();
  }

  #sizeError(): SizeMismatchError {
    return new SizeMismatchError({
      expected: this.#size ?? 0,
      actual: this.#bytes,
      digest: this.expected,
      source: this.#source,
    });
  }
}

/**
 * `source` seen through a {@link DigestVerifier}: the returned stream fails instead of ending when
 * the bytes are wrong. Joined with pipeline, so a reader that stops early releases the source too.
 */
export function verifiedStream(
  source: Readable,
  expected: string,
  options: VerifierOptions = {},
): DigestVerifier {
  const verifier = new DigestVerifier(expected, options);
  pipeline(source, verifier, () => undefined);
  return verifier;
}

/**
 * `source` as a stream that verifies `expected`: itself when it says it does (see
 * `verifiedDigest`), else seen through a {@link DigestVerifier}. What a reader that must never
 * take wrong bytes for the blob (a store, an extraction) calls on a stream of unknown origin.
 */
export function ensureVerified(
  source: Readable,
  expected: string,
  options: VerifierOptions = {},
): Readable {
  return verifies(source, expected) ? source : verifiedStream(source, expected, options);
}
