import { checkDigest, checkRepository, checkTag, presentParts } from './components.ts';
import { InvalidReferenceError } from './errors.ts';
import { DOCKER_HUB, parseRegistryHost } from './host.ts';
import type { RegistryReference } from './types.ts';

/** Longest `host/repository` distribution accepts. */
const NAME_MAX_LENGTH = 255;
/** What Docker Hub puts in front of single-component (official image) names. */
export const OFFICIAL_PREFIX = 'library/';

/**
 * Parse `[host[:port]/]repository[:tag][@digest]` with distribution's grammar and Docker's
 * normalisation. `body` is the reference without any `docker://`; errors name `input`.
 */
export function parseRegistryBody(body: string, input: string): RegistryReference {
  if (body === '') throw new InvalidReferenceError(input, 'empty reference');
  if (/\s/.test(body)) throw new InvalidReferenceError(input, 'contains whitespace');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(body)) {
    throw new InvalidReferenceError(
      input,
      'a reference has no URL scheme: write host/repository[:tag] (or docker://host/repository)',
    );
  }
  const lastSlash = body.lastIndexOf('/');
  if (lastSlash >= 0 && body.lastIndexOf('@', lastSlash) >= 0) {
    throw new InvalidReferenceError(
      input,
      '"@" may only introduce the digest at the end; credentials (user:password@host) do not belong in a reference, log in to the registry instead',
    );
  }

  let name = body;
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = checkDigest(name.slice(at + 1), input);
    name = name.slice(0, at);
  }
  if (name.startsWith('[') && !name.includes('/')) {
    throw new InvalidReferenceError(
      input,
      'a registry host needs a repository after it, e.g. [::1]:5000/repository',
    );
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = checkTag(name.slice(colon + 1), input);
    name = name.slice(0, colon);
  }
  if (name === '') throw new InvalidReferenceError(input, 'missing repository name');
  if (/^[a-f0-9]{64}$/.test(name)) {
    throw new InvalidReferenceError(
      input,
      'a 64-character hex string is an image ID, not a repository name',
    );
  }

  const { registry, path } = splitRegistry(name, input);
  const repository =
    registry === DOCKER_HUB && !path.includes('/') ? `${OFFICIAL_PREFIX}${path}` : path;
  const length = registry.length + 1 + repository.length;
  if (length > NAME_MAX_LENGTH) {
    throw new InvalidReferenceError(
      input,
      `name "${registry}/..." is ${length} characters long, the limit is ${NAME_MAX_LENGTH}`,
    );
  }
  return {
    kind: 'registry',
    registry,
    repository,
    ...presentParts(tag, digest),
  };
}

/**
 * Docker's rule: the first component names a registry when it contains "." or ":", is
 * "localhost" or is a bracketed IPv6 address; otherwise the name is on Docker Hub.
 * Docker also takes an upper-case first component (`MyHost/app`) as a host; like crane we
 * report the upper case instead of contacting a host named by accident.
 */
function splitRegistry(name: string, input: string): { registry: string; path: string } {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  const isHost =
    slash >= 0 &&
    (first.includes('.') ||
      first.includes(':') ||
      first.startsWith('[') ||
      first.toLowerCase() === 'localhost');
  if (!isHost) return { registry: DOCKER_HUB, path: checkRepository(name, input) };
  return {
    registry: parseRegistryHost(first, input),
    path: checkRepository(name.slice(slash + 1), input),
  };
}
