import { DigestMismatchError, isDigest, parseDigest } from '../digest/index.ts';
import { type HttpResponse, headerValue } from './http.ts';
import { redactUrl } from './redact.ts';

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

/** Fail when the registry says it stored content under another digest than the one we sent. */
export function checkStoredDigest(response: HttpResponse, digest: string): void {
  const stored = headerValue(response.headers, 'docker-content-digest');
  if (contradicts(stored, digest)) {
    throw new DigestMismatchError({
      expected: digest,
      actual: stored,
      source: redactUrl(response.url),
    });
  }
}
