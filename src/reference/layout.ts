import { checkDigest, checkTag, formatSuffix, presentParts } from './components.ts';
import { InvalidReferenceError } from './errors.ts';
import type { LayoutReference } from './types.ts';

/** The prefix that marks an OCI image layout reference. */
export const LAYOUT_PREFIX = 'oci:';

/**
 * Parse the part after `oci:`. After the last "/" (or "\"), a final "@" followed by text with a
 * ":" introduces a digest (which must be valid), and then the last ":" introduces a tag; the rest,
 * which must not be empty, is the directory. A directory whose last component contains ":" is
 * written with a trailing "/" (`oci:./a:b/`).
 */
export function parseLayoutBody(body: string, input: string): LayoutReference {
  if ([...body].some(isControlCharacter)) {
    throw new InvalidReferenceError(input, 'layout directory contains control characters');
  }
  let path = body;
  let digest: string | undefined;
  let tag: string | undefined;
  const at = path.lastIndexOf('@');
  if (at > lastSeparator(path) && path.includes(':', at)) {
    digest = checkDigest(path.slice(at + 1), input);
    path = path.slice(0, at);
  }
  const colon = path.lastIndexOf(':');
  if (colon > lastSeparator(path)) {
    tag = checkTag(path.slice(colon + 1), input);
    path = path.slice(0, colon);
  }
  if (path === '') {
    throw new InvalidReferenceError(input, `missing layout directory after "${LAYOUT_PREFIX}"`);
  }
  return {
    kind: 'layout',
    path,
    ...presentParts(tag, digest),
  };
}

/** Format `oci:DIR[:tag][@digest]`, adding a trailing "/" to DIR where parsing would misread it. */
export function formatLayout(ref: LayoutReference): string {
  const last = ref.path.slice(lastSeparator(ref.path) + 1);
  const at = last.lastIndexOf('@');
  const misread =
    (ref.tag === undefined && last.includes(':')) ||
    (ref.digest === undefined && at >= 0 && (ref.tag !== undefined || last.includes(':', at)));
  const path = misread ? `${ref.path}/` : ref.path;
  return `${LAYOUT_PREFIX}${path}${formatSuffix(ref)}`;
}

function lastSeparator(path: string): number {
  return Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
}

function isControlCharacter(character: string): boolean {
  const code = character.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}
