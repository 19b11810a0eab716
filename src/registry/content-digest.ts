import { isDigest, parseDigest } from '../digest/index.ts';

/**
 * True when a registry's `Docker-Content-Digest` names the same algorithm as `expected` but a
 * different digest. A missing or other-algorithm header contradicts nothing.
 */
export function contradicts(announced: string | undefined, expected: string): announced is string {
  return (
    isDigest(announced) &&
    parseDigest(announced).algorithm === parseDigest(expected).algorithm &&
    announced !== expected
  );
}
