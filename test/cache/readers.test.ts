import test from 'ava';
import { formRefusalWarning, isHarborChallenge } from '../../src/cache/readers.ts';
import { parseChallenges, preferredChallenge } from '../../src/registry/index.ts';

const challenge = (header: string) => preferredChallenge(parseChallenges(header)) ?? null;

// As Harbor's core writes them (its v2 auth middleware): Bearer to anonymous requests,
// Basic realm="harbor" to requests that carried credentials.
const HARBOR_BEARER = challenge(
  'Bearer realm="https://harbor.example/service/token",service="harbor-registry"',
);
const HARBOR_BASIC = challenge('Basic realm="harbor"');

test('Harbor is recognised by its token service or its Basic realm', (t) => {
  t.true(isHarborChallenge(HARBOR_BEARER));
  t.true(isHarborChallenge(HARBOR_BASIC));
  for (const other of [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:u/i:pull"',
    'Basic realm="Artifactory Realm"',
    'Basic realm="harbor-registry-basic-realm"',
  ]) {
    t.false(isHarborChallenge(challenge(other)), other);
  }
  t.false(isHarborChallenge(null));
});

test('only the index and Docker-list forms warn, and only for Harbor', (t) => {
  const target = 'type=registry,ref=harbor.example/app:cache';
  t.regex(
    formRefusalWarning(target, 'index', HARBOR_BEARER) ?? '',
    /^type=registry,ref=harbor.example\/app:cache is a Harbor registry, which refuses BuildKit caches in OCI index form .*image-manifest=true/,
  );
  t.regex(formRefusalWarning(target, 'manifest-list', HARBOR_BASIC) ?? '', /Docker manifest list/);
  t.is(formRefusalWarning(target, 'image-manifest', HARBOR_BEARER), undefined);
  t.is(formRefusalWarning(target, 'inline', HARBOR_BEARER), undefined);
  t.is(formRefusalWarning(target, 'index', null), undefined);
});
