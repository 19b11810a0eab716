import { parseDigest } from '../digest/index.ts';
import { InvalidReferenceError, quote } from './errors.ts';

const TAG = /^\w[\w.-]*$/;
const TAG_MAX_LENGTH = 128;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** Validate a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`); errors name `input`, the whole reference. */
export function checkTag(tag: string, input: string): string {
  if (tag === '') throw new InvalidReferenceError(input, 'empty tag after ":"');
  if (tag.length > TAG_MAX_LENGTH) {
    throw new InvalidReferenceError(
      input,
      `tag is ${tag.length} characters long, the limit is ${TAG_MAX_LENGTH}`,
    );
  }
  if (!TAG.test(tag)) {
    throw new InvalidReferenceError(
      input,
      `invalid tag ${quote(tag)}: a tag starts with a letter, digit or "_" and continues with letters, digits, "_", "." or "-"`,
    );
  }
  return tag;
}

/** Validate a digest with {@link parseDigest}, keeping its error as `cause`. */
export function checkDigest(digest: string, input: string): string {
  if (digest === '') throw new InvalidReferenceError(input, 'empty digest after "@"');
  try {
    return parseDigest(digest).digest;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidReferenceError(input, reason, { cause: error });
  }
}

/** Validate a repository path: lower-case components joined by `/`, as distribution's grammar has them. */
export function checkRepository(repository: string, input: string): string {
  if (repository === '') throw new InvalidReferenceError(input, 'missing repository name');
  for (const component of repository.split('/')) {
    if (component === '') {
      throw new InvalidReferenceError(
        input,
        `empty path component in repository ${quote(repository)}`,
      );
    }
    if (PATH_COMPONENT.test(component)) continue;
    if (PATH_COMPONENT.test(component.toLowerCase())) {
      throw new InvalidReferenceError(
        input,
        `repository name ${quote(repository)} must be lowercase`,
      );
    }
    throw new InvalidReferenceError(
      input,
      `invalid path component ${quote(component)} in repository ${quote(repository)}: components are lower-case letters and digits, separated inside by ".", "_", "__" or dashes`,
    );
  }
  return repository;
}

/** `:tag@digest` as it ends a formatted reference, either part omitted when absent. */
export function formatSuffix(ref: { readonly tag?: string; readonly digest?: string }): string {
  return (
    (ref.tag === undefined ? '' : `:${ref.tag}`) +
    (ref.digest === undefined ? '' : `@${ref.digest}`)
  );
}

/** `{ tag, digest }` with absent parts left out, so references compare equal structurally. */
export function presentParts(
  tag: string | undefined,
  digest: string | undefined,
): { tag?: string; digest?: string } {
  return {
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}
