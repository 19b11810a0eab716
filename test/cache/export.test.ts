import test from 'ava';
import { givesForm, wrapperFormat } from '../../src/cache/export.ts';
import type { CacheExportFormat } from '../../src/cache/options.ts';
import type { CacheFormat } from '../../src/cache/source.ts';

const target = (keys: Partial<CacheExportFormat>): CacheExportFormat => ({
  ignoreError: false,
  ...keys,
});

// Each form key sets one property (wrapping or media types); the other is the source's, and
// what neither says takes BuildKit's defaults (OCI, image manifest).
for (const [keys, expected] of [
  [{}, { 'image-manifest': 'image-manifest', index: 'index', 'manifest-list': 'manifest-list' }],
  [
    { imageManifest: true },
    {
      'image-manifest': 'image-manifest',
      index: 'image-manifest',
      'manifest-list': 'image-manifest',
    },
  ],
  [
    { imageManifest: false },
    { 'image-manifest': 'index', index: 'index', 'manifest-list': 'manifest-list' },
  ],
  [
    { ociMediatypes: true },
    { 'image-manifest': 'image-manifest', index: 'index', 'manifest-list': 'index' },
  ],
  [
    { ociMediatypes: false },
    { 'image-manifest': 'manifest-list', index: 'manifest-list', 'manifest-list': 'manifest-list' },
  ],
  [
    { imageManifest: false, ociMediatypes: true },
    { 'image-manifest': 'index', index: 'index', 'manifest-list': 'index' },
  ],
] as const) {
  test(`wrapperFormat ${JSON.stringify(keys)} keeps what the keys do not name`, (t) => {
    for (const [source, form] of Object.entries(expected)) {
      t.is(wrapperFormat(target(keys), source as CacheFormat), form, `from ${source}`);
    }
  });
}

test('without a source form (a new export, an inline cache) BuildKit defaults apply', (t) => {
  for (const keep of [undefined, 'inline'] as const) {
    t.is(wrapperFormat(target({}), keep), 'image-manifest');
    t.is(wrapperFormat(target({ imageManifest: false }), keep), 'index');
    t.is(wrapperFormat(target({ ociMediatypes: false }), keep), 'manifest-list');
    t.is(wrapperFormat(target({ ociMediatypes: true }), keep), 'image-manifest');
  }
});

test('givesForm: only image-manifest= and oci-mediatypes= ask for a form', (t) => {
  t.false(givesForm(target({})));
  t.false(givesForm(target({ mode: 'max', compression: 'zstd', ignoreError: true })));
  t.true(givesForm(target({ imageManifest: true })));
  t.true(givesForm(target({ ociMediatypes: true })));
});
