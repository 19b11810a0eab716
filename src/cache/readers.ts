import type { Challenge } from '../registry/index.ts';
import type { CacheFormat } from './source.ts';

// Who reads which form (README and `cache copy --help` tell it): BuildKit learnt the
// image-manifest form in v0.12 (its registry exporter's default since v0.21); older BuildKit,
// Docker Engine 20.10's among them, takes such a cache for an image without inline cache and
// rebuilds every step without an error. The index and Docker-list forms are read by every
// BuildKit version, but Harbor answers 404 to their push (goharbor/harbor#14774). An inline
// cache is an image: every BuildKit version reads it, every registry takes it.

/** Harbor's token service name, hard-coded in Harbor's core (`token.Registry`). */
const HARBOR_TOKEN_SERVICE = 'harbor-registry';
/** Harbor's Basic realm, answered to requests that carried credentials. */
const HARBOR_BASIC_REALM = 'harbor';

/**
 * True when a registry's `/v2/` challenge is Harbor's: a bearer challenge for Harbor's token
 * service, or Harbor's Basic realm. Both are constants of Harbor's code, not settings, so every
 * Harbor answers so; a registry behind another auth front is not recognised.
 */
export function isHarborChallenge(challenge: Challenge | null | undefined): boolean {
  if (!challenge) return false;
  if (challenge.scheme === 'bearer') return challenge.params.service === HARBOR_TOKEN_SERVICE;
  return challenge.scheme === 'basic' && challenge.params.realm === HARBOR_BASIC_REALM;
}

/**
 * The warning for writing a cache in `form` to a registry that answered `challenge`, or
 * undefined when that registry is not known to refuse it. The one refusal known and
 * recognisable is Harbor's of the index and Docker-list forms.
 */
export function formRefusalWarning(
  target: string,
  form: CacheFormat,
  challenge: Challenge | null | undefined,
): string | undefined {
  if ((form !== 'index' && form !== 'manifest-list') || !isHarborChallenge(challenge)) {
    return undefined;
  }
  const name = form === 'index' ? 'OCI index' : 'Docker manifest list';
  return `${target} is a Harbor registry, which refuses BuildKit caches in ${name} form (404 on the manifest push, goharbor/harbor#14774); give image-manifest=true (read by BuildKit v0.12 and later)`;
}
