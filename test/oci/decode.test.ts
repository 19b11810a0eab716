import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { InvalidDigestError } from '../../src/digest/index.ts';
import {
  checkDescriptor,
  checkIndex,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  decodeImageConfig,
  decodeJson,
  decodeManifest,
  detectManifestMediaType,
  ImageConfigInvalidError,
  JsonInvalidError,
  ManifestInvalidError,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
} from '../../src/oci/index.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const layer = { mediaType: OCI_LAYER_GZIP, digest: DIGEST, size: 3 };
const image = {
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: { mediaType: OCI_CONFIG, digest: DIGEST, size: 2 },
  layers: [layer],
};

const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));

test('bytes that are not JSON fail with JSON_INVALID keeping the SyntaxError', (t) => {
  const error = t.throws(() => decodeJson(Buffer.from('{"a":'), 'page 1'), {
    instanceOf: JsonInvalidError,
  });
  t.is(error?.code, 'JSON_INVALID');
  t.true(error?.cause instanceof SyntaxError);
  t.regex(error?.message ?? '', /^page 1 is not valid JSON: /);
});

test('manifest bytes that are not JSON fail with MANIFEST_INVALID keeping the parser error', (t) => {
  const error = t.throws(() => decodeManifest(Buffer.from('<html>'), OCI_MANIFEST, 'm'), {
    instanceOf: ManifestInvalidError,
  });
  t.is(error?.code, 'MANIFEST_INVALID');
  t.true(error?.cause instanceof JsonInvalidError);
  t.true((error?.cause as Error | undefined)?.cause instanceof SyntaxError);
});

test('a manifest decodes by the media type it was served as, unknown fields kept', (t) => {
  const decoded = decodeManifest(bytes({ ...image, extra: { kept: true } }), OCI_MANIFEST, 'm');
  t.is(decoded.kind, 'image');
  t.deepEqual((decoded as { manifest: unknown }).manifest, { ...image, extra: { kept: true } });
  const list = { schemaVersion: 2, manifests: [{ ...layer, mediaType: DOCKER_MANIFEST }] };
  t.is(decodeManifest(bytes(list), DOCKER_MANIFEST_LIST, 'l').kind, 'index');
});

test('a manifest whose mediaType field contradicts how it was served is refused', (t) => {
  const error = t.throws(() => decodeManifest(bytes(image), DOCKER_MANIFEST, 'm'), {
    instanceOf: ManifestInvalidError,
  });
  t.is(error?.reason, `mediaType ${OCI_MANIFEST} does not match the announced ${DOCKER_MANIFEST}`);
});

test('a mediaType field that is not a string is refused, even one whose toString is not a function', (t) => {
  for (const mediaType of [{ toString: false }, { a: 1 }, 7, null]) {
    const error = t.throws(
      () => decodeManifest(bytes({ ...image, mediaType }), OCI_MANIFEST, 'm'),
      {
        instanceOf: ManifestInvalidError,
      },
    );
    t.is(
      error?.reason,
      `mediaType ${JSON.stringify(mediaType)} does not match the announced ${OCI_MANIFEST}`,
    );
  }
  const error = t.throws(
    () => checkDescriptor({ ...layer, digest: { toString: false } }, 'd', 'config'),
    { instanceOf: ManifestInvalidError },
  );
  t.is(error?.reason, 'config.digest is not a supported digest');
});

test('every descriptor rule names the field at fault', (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ...layer, mediaType: '' }, 'layers[0].mediaType must be a non-empty string'],
    [{ ...layer, size: -1 }, 'layers[0].size must be a non-negative integer'],
    [{ ...layer, size: 1.5 }, 'layers[0].size must be a non-negative integer'],
    [{ ...layer, urls: [1] }, 'layers[0].urls must be a list of strings'],
    [{ ...layer, annotations: { a: 1 } }, 'layers[0].annotations must be an object of strings'],
    [{ ...layer, artifactType: 2 }, 'layers[0].artifactType must be a string'],
    [
      { ...layer, platform: { os: 'linux' } },
      'layers[0].platform needs os and architecture strings',
    ],
  ];
  for (const [entry, reason] of cases) {
    const error = t.throws(
      () => decodeManifest(bytes({ ...image, layers: [entry] }), OCI_MANIFEST, 'm'),
      { instanceOf: ManifestInvalidError },
    );
    t.is(error?.reason, reason);
  }
});

test('a descriptor digest that does not parse keeps the digest error as cause', (t) => {
  const error = t.throws(
    () => checkDescriptor({ ...layer, digest: 'sha256:../x' }, 'd', 'subject'),
    {
      instanceOf: ManifestInvalidError,
    },
  );
  t.is(error?.reason, 'subject.digest is not a supported digest');
  t.true(error?.cause instanceof InvalidDigestError);
});

test('an index without an array of manifests, or with a bad subject, is refused', (t) => {
  t.throws(() => checkIndex({ schemaVersion: 2, manifests: {} }, 'i'), {
    instanceOf: ManifestInvalidError,
    message: 'i: invalid manifest: manifests must be an array',
  });
  t.throws(
    () => checkIndex({ schemaVersion: 2, manifests: [], subject: { digest: DIGEST } }, 'i'),
    {
      message: 'i: invalid manifest: subject.mediaType must be a non-empty string',
    },
  );
  t.throws(() => checkIndex({ schemaVersion: 1, manifests: [] }, 'i'), {
    message: 'i: invalid manifest: schemaVersion must be 2',
  });
});

test('manifest bytes found by digest alone get their media type as BuildKit detects it', (t) => {
  t.is(detectManifestMediaType(bytes({ mediaType: DOCKER_MANIFEST }), 'x'), DOCKER_MANIFEST);
  t.is(detectManifestMediaType(bytes({ config: {} }), 'x'), OCI_MANIFEST);
  t.is(detectManifestMediaType(bytes({ manifests: [] }), 'x'), OCI_INDEX);
  t.throws(() => detectManifestMediaType(bytes({ layers: [] }), 'x'), {
    instanceOf: ManifestInvalidError,
  });
  t.throws(() => detectManifestMediaType('nope', 'x'), { instanceOf: ManifestInvalidError });
});

test('an image config needs os, architecture and diff_ids; bad JSON is JSON_INVALID', (t) => {
  const config = {
    os: 'linux',
    architecture: 'arm64',
    rootfs: { type: 'layers', diff_ids: [DIGEST] },
  };
  t.deepEqual(decodeImageConfig(bytes(config), 'c'), config);
  t.throws(() => decodeImageConfig(bytes({ ...config, os: 1 }), 'c'), {
    instanceOf: ImageConfigInvalidError,
    message: 'c: invalid image config: os and architecture must be strings',
  });
  t.throws(() => decodeImageConfig('{', 'c'), { instanceOf: JsonInvalidError });
});

/** Strings that are almost digests: wrong length, case, algorithm or separator. */
const nearDigest = fc
  .tuple(
    fc.constantFrom('sha256', 'SHA256', 'sha512', 'md5', ''),
    fc.constantFrom(':', '-', ''),
    fc.stringMatching(/^[0-9a-fA-F]{62,66}$/),
  )
  .map(([algorithm, separator, hex]) => `${algorithm}${separator}${hex}`);

/** Where a field of {@link image} is replaced by another value. */
const FIELDS = [
  'schemaVersion',
  'mediaType',
  'config',
  'config.digest',
  'config.size',
  'config.mediaType',
  'layers',
  'layers.0',
  'layers.0.digest',
  'layers.0.size',
  'layers.0.platform',
  'layers.0.annotations',
  'subject',
  'annotations',
];

/** A valid manifest with one field replaced by an arbitrary JSON value or a near-digest. */
const mutated = fc
  .tuple(fc.constantFrom(...FIELDS), fc.oneof(fc.jsonValue(), nearDigest))
  .map(([field, value]) => {
    const doc = structuredClone(image) as Record<string, unknown>;
    const at = field.split('.');
    let node: Record<string, unknown> = doc;
    for (const key of at.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[at.at(-1) as string] = value;
    return doc;
  });

test('decoding never throws anything but MANIFEST_INVALID, and what it returns has valid descriptors', (t) => {
  fc.assert(
    fc.property(
      fc.oneof(mutated.map(bytes), fc.uint8Array({ maxLength: 64 }).map(Buffer.from)),
      fc.constantFrom(OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST),
      (input, mediaType) => {
        let decoded: ReturnType<typeof decodeManifest>;
        try {
          decoded = decodeManifest(input, mediaType, 'p');
        } catch (error) {
          if (!(error instanceof ManifestInvalidError)) throw error;
          return;
        }
        const descriptors =
          decoded.kind === 'index'
            ? decoded.index.manifests
            : [decoded.manifest.config, ...decoded.manifest.layers];
        for (const d of descriptors) {
          if (
            !/^sha256:[a-f0-9]{64}$/.test(d.digest) ||
            !Number.isSafeInteger(d.size) ||
            d.size < 0
          ) {
            throw new Error(`kept an invalid descriptor ${JSON.stringify(d)}`);
          }
        }
      },
    ),
    { numRuns: 2000 },
  );
  t.pass();
});

test('src/oci is a leaf: it imports only the digest parser and the base error', async (t) => {
  const dir = path.resolve(import.meta.dirname, '../../src/oci');
  for (const file of await readdir(dir)) {
    const text = await readFile(path.join(dir, file), 'utf8');
    for (const [, specifier] of text.matchAll(/\bfrom '([^']+)'/g)) {
      t.true(
        specifier?.startsWith('./') ||
          specifier === '../digest/index.ts' ||
          specifier === '../errors.ts',
        `${file} imports ${specifier}`,
      );
    }
  }
});
