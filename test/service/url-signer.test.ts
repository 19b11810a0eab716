import test from 'ava';
import { CacheServiceError } from '../../src/service/errors.ts';
import { generateSigningKey, UrlSigner } from '../../src/service/url-signer.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;

function code(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof CacheServiceError) return error.code;
    throw error;
  }
  return undefined;
}

test('a minted URL verifies for its digest only, and binds namespace, direction and mount name', (t) => {
  const signer = new UrlSigner();
  const { query } = signer.mint({ op: 'mount', ns: 'team', digest: DIGEST, name: 'go-build' });
  t.deepEqual(signer.verify(DIGEST, new URLSearchParams(query)), {
    op: 'mount',
    ns: 'team',
    digest: DIGEST,
    name: 'go-build',
  });
  t.is(
    code(() => signer.verify(OTHER, new URLSearchParams(query))),
    'URL_INVALID',
  );
  for (const [field, value] of [
    ['ns', 'other'],
    ['op', 'put'],
    ['name', 'other'],
    ['exp', '99999999999'],
  ]) {
    const changed = new URLSearchParams(query);
    changed.set(field as string, value as string);
    t.is(
      code(() => signer.verify(DIGEST, changed)),
      'URL_INVALID',
      `${field} changed`,
    );
  }
});

test('rotation: URLs of a retired key fail, of an old but accepted key verify', (t) => {
  let now = 1_000_000_000_000;
  const first = generateSigningKey('k1');
  const signer = new UrlSigner({ keys: [first], ttlSeconds: 60, now: () => now });
  const old = new URLSearchParams(signer.mint({ op: 'get', ns: 'n', digest: DIGEST }).query);
  signer.rotate(generateSigningKey('k2'));
  const fresh = new URLSearchParams(signer.mint({ op: 'get', ns: 'n', digest: DIGEST }).query);
  t.is(fresh.get('kid'), 'k2');
  t.is(signer.verify(DIGEST, old).ns, 'n');
  signer.retire('k1');
  t.is(
    code(() => signer.verify(DIGEST, old)),
    'URL_INVALID',
  );
  t.is(signer.verify(DIGEST, fresh).ns, 'n');
  // A second instance with the same keys verifies the first one's URLs.
  const twin = new UrlSigner({
    keys: [generateSigningKey('k3'), { ...first, id: 'k1' }],
    now: () => now,
  });
  t.is(
    code(() => twin.verify(DIGEST, fresh)),
    'URL_INVALID',
  );
  now += 61_000;
  t.is(
    code(() => signer.verify(DIGEST, fresh)),
    'URL_EXPIRED',
  );
});
