export {
  type DigestAlgorithm,
  isAlgorithm,
  isDigest,
  type ParsedDigest,
  parseDigest,
} from './digest.ts';
export { DigestMismatchError, InvalidDigestError, SizeMismatchError } from './errors.ts';
export { createHasher, digestBytes, type Hasher } from './hasher.ts';
export { markVerified, verifiedDigest, verifies } from './verified.ts';
export {
  DigestVerifier,
  ensureVerified,
  type VerifierOptions,
  verifiedStream,
} from './verifier.ts';
