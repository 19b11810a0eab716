import { InvalidDigestError } from './errors.ts';

/** Digest algorithms ociferry can verify. */
export type DigestAlgorithm = 'sha256' | 'sha512' | 'blake3';

/** Hex length of each algorithm's encoded part. */
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128, blake3: 64 };

/** A validated digest split into its parts. `digest` is the canonical `alg:hex` string. */
export interface ParsedDigest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  readonly digest: string;
}

/**
 * Parse and validate `alg:hex`. Only sha256, sha512 and blake3 with lower-case hex of the
 * exact length are accepted, so a valid digest can safely become a path component.
 */
export function parseDigest(value: string): ParsedDigest {
  if (typeof value !== 'string') throw new InvalidDigestError(String(value), 'not a string');
  const colon = value.indexOf(':');
  if (colon < 0) throw new InvalidDigestError(value, 'expected algorithm:hex');
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!isAlgorithm(algorithm)) {
    throw new InvalidDigestError(
      value,
      `unsupported algorithm (supported: sha256, sha512, blake3)`,
    );
  }
  const length = HEX_LENGTH[algorithm];
  if (hex.length !== length || !/^[0-9a-f]+$/.test(hex)) {
    throw new InvalidDigestError(value, `${algorithm} needs ${length} lower-case hex characters`);
  }
  return { algorithm, hex, digest: value };
}

/** True when `value` is a digest {@link parseDigest} accepts. */
export function isDigest(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** True when `value` names an algorithm ociferry supports. */
export function isAlgorithm(value: string): value is DigestAlgorithm {
  return Object.hasOwn(HEX_LENGTH, value);
}
