import { checkDigest, checkTag, formatSuffix } from './components.ts';
import { InvalidReferenceError } from './errors.ts';
import { DOCKER_HUB } from './host.ts';
import { formatLayout, LAYOUT_PREFIX, parseLayoutBody } from './layout.ts';
import { OFFICIAL_PREFIX, parseRegistryBody } from './registry.ts';
import type { Reference, RegistryReference } from './types.ts';

/** The prefix skopeo users put before registry references; accepted and ignored. */
const DOCKER_PREFIX = 'docker://';

/** skopeo transports ociferry does not read; named so the error says so instead of misparsing. */
const UNSUPPORTED_TRANSPORT =
  /^(containers-storage|dir|docker-archive|docker-daemon|oci-archive|ostree|sif):/;

/**
 * Parse `[docker://][host[:port]/]repository[:tag][@digest]` or `oci:DIR[:tag][@digest]`.
 * Docker Hub names are normalised (`alpine` is `docker.io/library/alpine`); a Docker Hub image
 * named like `oci` or `dir` needs `docker://` or its full name. Throws {@link InvalidReferenceError}.
 */
export function parseReference(input: string): Reference {
  if (typeof input !== 'string') throw new InvalidReferenceError(String(input), 'not a string');
  if (input === '') throw new InvalidReferenceError(input, 'empty reference');
  if (input.trim() === '') throw new InvalidReferenceError(input, 'only whitespace');
  if (input.trim() !== input) {
    throw new InvalidReferenceError(input, 'leading or trailing whitespace');
  }
  if (input.startsWith(LAYOUT_PREFIX)) {
    return parseLayoutBody(input.slice(LAYOUT_PREFIX.length), input);
  }
  if (input.startsWith(DOCKER_PREFIX)) {
    return parseRegistryBody(input.slice(DOCKER_PREFIX.length), input);
  }
  const transport = UNSUPPORTED_TRANSPORT.exec(input)?.[1];
  if (transport !== undefined) {
    throw new InvalidReferenceError(
      input,
      `the "${transport}:" transport is not supported; use a registry reference (host/repository[:tag], optionally after docker://) or ${LAYOUT_PREFIX}DIR`,
    );
  }
  return parseRegistryBody(input, input);
}

/** {@link parseReference} for places that need a registry: an `oci:` reference is an error. */
export function parseRegistryReference(input: string): RegistryReference {
  const ref = parseReference(input);
  if (ref.kind !== 'registry') {
    throw new InvalidReferenceError(
      input,
      'expected a registry reference (host/repository[:tag]), got an OCI layout reference',
    );
  }
  return ref;
}

/**
 * The canonical full form: `docker.io/library/alpine:3.20`, `host/r:t@sha256:…`, `oci:DIR:tag`.
 * {@link parseReference} reads it back to an equal reference.
 */
export function formatReference(ref: Reference): string {
  if (ref.kind === 'layout') return formatLayout(ref);
  return `${ref.registry}/${ref.repository}${formatSuffix(ref)}`;
}

/**
 * The short form people type, like Docker's FamiliarString (`alpine:3.20`, `user/app`,
 * `ghcr.io/o/app`), but never ambiguous: where the short form would parse to something else
 * (`docker.io/library/oci:1`, `docker.io/a.b/c`) the longer form is kept.
 */
export function familiarName(ref: RegistryReference): string {
  const full = formatReference(ref);
  if (ref.registry !== DOCKER_HUB) return full;
  const short = full.slice(DOCKER_HUB.length + 1);
  const candidates = short.startsWith(OFFICIAL_PREFIX)
    ? [short.slice(OFFICIAL_PREFIX.length), short]
    : [short];
  return candidates.find((candidate) => parsesTo(candidate, full)) ?? full;
}

/** A copy of `ref` with `tag` set (validated), or without a tag when `tag` is undefined. */
export function withTag<R extends Reference>(ref: R, tag: string | undefined): R {
  const { tag: _, ...rest } = ref;
  if (tag === undefined) return rest as R;
  return { ...rest, tag: checkTag(tag, formatReference({ ...ref, tag })) } as R;
}

/** A copy of `ref` with `digest` set (validated), or without a digest when `digest` is undefined. */
export function withDigest<R extends Reference>(ref: R, digest: string | undefined): R {
  const { digest: _, ...rest } = ref;
  if (digest === undefined) return rest as R;
  return { ...rest, digest: checkDigest(digest, formatReference({ ...ref, digest })) } as R;
}

function parsesTo(candidate: string, full: string): boolean {
  try {
    return formatReference(parseReference(candidate)) === full;
  } catch {
    return false;
  }
}
