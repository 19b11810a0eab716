import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import test from 'ava';
import fc from 'fast-check';
import {
  createHasher,
  DigestMismatchError,
  DigestVerifier,
  digestBytes,
  ensureVerified,
  InvalidDigestError,
  isDigest,
  parseDigest,
  SizeMismatchError,
  verifiedDigest,
  verifiedStream,
} from '../../src/digest/index.ts';

const HELLO_SHA256 = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';

test('parses the three supported algorithms', (t) => {
  t.deepEqual(parseDigest(HELLO_SHA256), {
    algorithm: 'sha256',
    hex: HELLO_SHA256.slice(7),
    digest: HELLO_SHA256,
  });
  t.is(parseDigest(digestBytes('x', 'sha512')).algorithm, 'sha512');
  t.is(parseDigest(digestBytes('x', 'blake3')).algorithm, 'blake3');
});

for (const [input, reason] of [
  ['', 'algorithm:hex'],
  ['sha256', 'algorithm:hex'],
  ['md5:d41d8cd98f00b204e9800998ecf8427e', 'unsupported algorithm'],
  [`sha256:${'A'.repeat(64)}`, 'lower-case hex'],
  [`sha256:${'a'.repeat(63)}`, '64 lower-case hex'],
  [`sha256:../../${'a'.repeat(58)}`, 'hex'],
  [`sha256:${'a'.repeat(64)}/x`, 'hex'],
  [`sha512:${'a'.repeat(64)}`, '128 lower-case hex'],
  [`SHA256:${'a'.repeat(64)}`, 'unsupported algorithm'],
] as const) {
  test(`rejects ${JSON.stringify(input)}`, (t) => {
    const error = t.throws(() => parseDigest(input), { instanceOf: InvalidDigestError });
    t.true(error.message.includes(reason), error.message);
    t.is(error.code, 'DIGEST_INVALID');
  });
}

/** Hex lengths of the supported algorithms. */
const HEX_LENGTH = { sha256: 64, sha512: 128, blake3: 64 } as const;

/** Valid digests of every supported algorithm. */
const validDigest = fc
  .constantFrom(...(Object.keys(HEX_LENGTH) as (keyof typeof HEX_LENGTH)[]))
  .chain((algorithm) =>
    fc
      .string({
        unit: fc.constantFrom(...'0123456789abcdef'),
        minLength: HEX_LENGTH[algorithm],
        maxLength: HEX_LENGTH[algorithm],
      })
      .map((hex) => `${algorithm}:${hex}`),
  );

/** What an attacker or a typo puts into a digest: separators, dot segments, case, other bytes. */
const intruder = fc.constantFrom('/', '\\', '.', '..', '../', '%2f', 'A', 'g', ':', ' ', '\0');

/** One edit of a string: none, or an intruder inserted at, or replacing the character at, a place. */
const edit = fc.oneof(
  fc.constant((s: string) => s),
  fc.tuple(fc.nat(), intruder).map(([at, text]) => (s: string) => {
    const i = at % (s.length + 1);
    return s.slice(0, i) + text + s.slice(i);
  }),
  fc.tuple(fc.nat(), intruder).map(([at, text]) => (s: string) => {
    const i = at % s.length;
    return s.slice(0, i) + text + s.slice(i + 1);
  }),
);

/** Valid digests and near misses of them (a separator in place of one hex character, ...). */
const nearDigest = fc
  .tuple(validDigest, fc.array(edit, { maxLength: 2 }))
  .map(([digest, edits]) => edits.reduce((s, apply) => apply(s), digest));

test('a valid digest never contains a path separator or dot segment', (t) => {
  let valid = 0;
  let refusedWithSeparator = 0;
  fc.assert(
    fc.property(nearDigest, (s) => {
      const separated = s.includes('/') || s.includes('\\') || s.includes('..');
      if (!isDigest(s)) {
        if (separated) refusedWithSeparator++;
        return true;
      }
      valid++;
      return !separated;
    }),
    { numRuns: 1000 },
  );
  // The property says something only if both sides of it were exercised.
  t.true(valid >= 100, `${valid} valid digests generated`);
  t.true(refusedWithSeparator >= 100, `${refusedWithSeparator} near misses with a separator`);
});

test('hashers agree with known vectors', (t) => {
  t.is(digestBytes('hello'), HELLO_SHA256);
  t.is(
    digestBytes('', 'blake3'),
    'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
  );
  const incremental = createHasher('sha512');
  incremental.update(Buffer.from('hel'));
  incremental.update(Buffer.from('lo'));
  t.is(incremental.digest(), digestBytes('hello', 'sha512'));
});

test('verifier passes matching bytes through unchanged', async (t) => {
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from([Buffer.from('hel'), Buffer.from('lo')]),
    new DigestVerifier(HELLO_SHA256, { size: 5 }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) chunks.push(chunk);
    },
  );
  t.is(Buffer.concat(chunks).toString(), 'hello');
});

test('verifier fails at the end on different bytes', async (t) => {
  const error = await t.throwsAsync(
    pipeline(Readable.from([Buffer.from('hellO')]), new DigestVerifier(HELLO_SHA256), async (s) => {
      for await (const _ of s);
    }),
    { instanceOf: DigestMismatchError },
  );
  t.is(error.expected, HELLO_SHA256);
  t.is(error.actual, digestBytes('hellO'));
});

test('verifier fails as soon as a stream is longer than announced', async (t) => {
  let seen = 0;
  await t.throwsAsync(
    pipeline(
      Readable.from([Buffer.from('hello'), Buffer.from('more')]),
      new DigestVerifier(HELLO_SHA256, { size: 4 }),
      async (s) => {
        for await (const chunk of s) seen += chunk.length;
      },
    ),
    { instanceOf: SizeMismatchError },
  );
  t.is(seen, 0);
});

test('verifier fails on a short stream', async (t) => {
  await t.throwsAsync(
    pipeline(
      Readable.from([Buffer.from('hell')]),
      new DigestVerifier(HELLO_SHA256, { size: 5 }),
      async (s) => {
        for await (const _ of s);
      },
    ),
    { instanceOf: SizeMismatchError },
  );
});

test('a verifier told the source hashes itself checks only the size', async (t) => {
  const drain = async (s: AsyncIterable<Buffer>) => {
    for await (const _ of s);
  };
  await pipeline(
    Readable.from([Buffer.from('other')]),
    new DigestVerifier(HELLO_SHA256, { size: 5, hash: false }),
    drain,
  );
  await t.throwsAsync(
    pipeline(
      Readable.from([Buffer.from('toolong')]),
      new DigestVerifier(HELLO_SHA256, { size: 5, hash: false }),
      drain,
    ),
    { instanceOf: SizeMismatchError },
  );
});

test('a hashing verifier says which digest it verifies; a size-only one does not', (t) => {
  t.is(verifiedDigest(new DigestVerifier(HELLO_SHA256)), HELLO_SHA256);
  t.is(verifiedDigest(new DigestVerifier(HELLO_SHA256, { hash: false })), undefined);
  t.is(verifiedDigest(Readable.from([Buffer.from('hello')])), undefined);
});

test('ensureVerified keeps a stream that verifies the digest and checks any other', async (t) => {
  const verified = verifiedStream(Readable.from([Buffer.from('hello')]), HELLO_SHA256);
  t.is(ensureVerified(verified, HELLO_SHA256), verified);
  const plain = ensureVerified(Readable.from([Buffer.from('other')]), HELLO_SHA256);
  t.is(verifiedDigest(plain), HELLO_SHA256);
  await t.throwsAsync(
    pipeline(plain, async (s: AsyncIterable<Buffer>) => {
      for await (const _ of s);
    }),
    { instanceOf: DigestMismatchError },
  );
});
