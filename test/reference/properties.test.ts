import assert from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import {
  familiarName,
  formatReference,
  InvalidReferenceError,
  type LayoutReference,
  parseReference,
  parseRegistryReference,
  type RegistryReference,
} from '../../src/reference/index.ts';

const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });

const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
  hex(64).map((h) => `blake3:${h}`),
);

const tag = fc.stringMatching(/^\w[\w.-]{0,127}$/);

const pathComponent = fc.stringMatching(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/);

/** Host names in normalised form; Docker Hub aliases other than docker.io are left out. */
const hostName = fc.oneof(
  fc.domain().filter((d) => d !== 'index.docker.io' && d !== 'registry-1.docker.io'),
  fc.constant('localhost'),
  fc.constant('docker.io'),
  fc.ipV4(),
  // Canonical IPv6 text as the WHATWG URL parser writes it, independent of the code under test.
  fc.ipV6().map((address) => new URL(`http://[${address}]/`).hostname),
);

const registry = fc
  .tuple(hostName, fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }))
  .map(([host, port]) => (port === undefined ? host : `${host}:${port}`));

const optional = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined });

/** Plain objects with absent parts left out, as the parser builds them. */
function withParts<T extends object>(base: T, tagValue?: string, digestValue?: string): T {
  return {
    ...base,
    ...(tagValue === undefined ? {} : { tag: tagValue }),
    ...(digestValue === undefined ? {} : { digest: digestValue }),
  };
}

const registryReference: fc.Arbitrary<RegistryReference> = fc
  .record({
    registry,
    components: fc.array(pathComponent, { minLength: 1, maxLength: 4 }),
    tag: optional(tag),
    digest: optional(digest),
  })
  .map(({ registry, components, tag, digest }) => {
    const path =
      registry === 'docker.io' && components.length === 1 ? ['library', ...components] : components;
    return withParts(
      { kind: 'registry' as const, registry, repository: path.join('/') },
      tag,
      digest,
    );
  })
  .filter((ref) => ref.registry.length + 1 + ref.repository.length <= 255);

const segment = (characters: string, minLength: number) =>
  fc.string({ unit: fc.constantFrom(...characters), minLength, maxLength: 8 });

const innerCharacters = 'abXY09._- :@';

/**
 * Layout references as the parser can produce them: inner directory components may hold ":" and
 * "@"; the last one holds ":" only when a tag follows and "@" only when no tag follows.
 */
const layoutReference: fc.Arbitrary<LayoutReference> = fc
  .record({
    prefix: fc.constantFrom('', '/', './', '../', 'C:\\'),
    inner: fc.array(fc.tuple(segment(innerCharacters, 1), fc.constantFrom('/', '\\')), {
      maxLength: 3,
    }),
    tag: optional(tag),
    digest: optional(digest),
  })
  .chain(({ prefix, inner, tag, digest }) =>
    segment(tag === undefined ? 'abXY09._- @' : 'abXY09._- :', 0).map((last) => {
      const path = prefix + inner.map(([name, separator]) => name + separator).join('') + last;
      return withParts({ kind: 'layout' as const, path }, tag, digest);
    }),
  )
  .filter((ref) => ref.path !== '' && !ref.path.endsWith(' '));

const reference = fc.oneof(registryReference, layoutReference);

/** Either a reference that formats and re-parses to itself, or an InvalidReferenceError. */
function assertParsesCleanlyOrRejects(input: string): void {
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(input);
  } catch (error) {
    assert.ok(error instanceof InvalidReferenceError, `unexpected ${String(error)}`);
    assert.equal(error.code, 'REFERENCE_INVALID');
    assert.match(error.message, /^invalid reference ".*": ./s);
    return;
  }
  assert.deepEqual(parseReference(formatReference(ref)), ref);
}

test('formatting then parsing any valid reference gives it back', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(reference, (ref) => {
        assert.deepEqual(parseReference(formatReference(ref)), ref);
      }),
      { numRuns: 2000 },
    ),
  );
});

test('the docker:// prefix changes nothing for registry references', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(registryReference, (ref) => {
        assert.deepEqual(parseRegistryReference(`docker://${formatReference(ref)}`), ref);
      }),
    ),
  );
});

test('the familiar name parses back to the same registry reference', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(registryReference, (ref) => {
        assert.deepEqual(parseReference(familiarName(ref)), ref);
      }),
      { numRuns: 2000 },
    ),
  );
});

test('the familiar name of a Docker Hub official image is the bare name', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(pathComponent, optional(tag), (name, imageTag) => {
        fc.pre(
          !/^[a-f0-9]{64}$/.test(name) &&
            ![
              'oci',
              'dir',
              'sif',
              'ostree',
              'containers-storage',
              'docker-archive',
              'docker-daemon',
              'oci-archive',
            ].includes(name),
        );
        const ref = parseRegistryReference(imageTag === undefined ? name : `${name}:${imageTag}`);
        assert.equal(familiarName(ref), imageTag === undefined ? name : `${name}:${imageTag}`);
      }),
    ),
  );
});

test('registry host case does not matter', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(registryReference, (ref) => {
        const input = `${ref.registry.toUpperCase()}/${formatReference(ref).slice(ref.registry.length + 1)}`;
        assert.deepEqual(parseReference(input), ref);
      }),
    ),
  );
});

test('parsing arbitrary unicode strings only ever throws InvalidReferenceError', (t) => {
  t.notThrows(() =>
    fc.assert(fc.property(fc.string({ unit: 'binary' }), assertParsesCleanlyOrRejects), {
      numRuns: 2000,
    }),
  );
});

test('parsing strings over the reference alphabet only ever throws InvalidReferenceError', (t) => {
  const alphabet = fc.constantFrom(
    ...'aZ09_.-:/@[]\\ \t'.split(''),
    'oci:',
    'docker://',
    'sha256:',
  );
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 40 }), assertParsesCleanlyOrRejects),
      { numRuns: 5000 },
    ),
  );
});

test('parsing a valid reference with one character changed never throws anything else', (t) => {
  const mutated = fc
    .tuple(
      reference.map(formatReference),
      fc.nat(),
      fc.nat({ max: 2 }),
      fc.constantFrom(...'aZ0_.-:/@[]% \\'.split('')),
    )
    .map(([text, at, action, character]) => {
      const i = at % (text.length + 1);
      if (action === 0) return text.slice(0, i) + character + text.slice(i);
      if (action === 1) return text.slice(0, i) + text.slice(i + 1);
      return text.slice(0, i) + character + text.slice(i + 1);
    });
  t.notThrows(() =>
    fc.assert(fc.property(mutated, assertParsesCleanlyOrRejects), { numRuns: 5000 }),
  );
});
