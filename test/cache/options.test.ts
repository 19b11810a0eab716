import test from 'ava';
import fc from 'fast-check';
import { formatCsvFields } from '../../src/cache/csv.ts';
import { CacheOptionsError } from '../../src/cache/errors.ts';
import { parseCacheExport, parseCacheImport } from '../../src/cache/options.ts';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const ref = (registry: string, repository: string, tag?: string, digest?: string) => ({
  kind: 'registry',
  registry,
  repository,
  ...(tag === undefined ? {} : { tag }),
  ...(digest === undefined ? {} : { digest }),
});
/** What a target without format keys holds: mode and form are left to the copy (as the source). */
const EXPORT_DEFAULTS = { ignoreError: false };

for (const [csv, expected] of [
  [
    'type=registry,ref=r.example/app:cache',
    { type: 'registry', ref: ref('r.example', 'app', 'cache') },
  ],
  [
    'type=registry,ref=127.0.0.1:5000/app',
    { type: 'registry', ref: ref('127.0.0.1:5000', 'app', 'latest') },
  ],
  [
    `type=registry,ref=r.example/app@${DIGEST}`,
    { type: 'registry', ref: ref('r.example', 'app', undefined, DIGEST) },
  ],
  [
    'type=registry,ref=alpine,registry.insecure=true',
    { type: 'registry', ref: ref('docker.io', 'library/alpine', 'latest'), insecure: true },
  ],
  [
    'TYPE=registry,Ref=r.example/app:c,REGISTRY.INSECURE=0',
    { type: 'registry', ref: ref('r.example', 'app', 'c'), insecure: false },
  ],
  ['r.example/app:cache', { type: 'registry', ref: ref('r.example', 'app', 'cache') }],
  ['type=local,src=/var/cache/bk', { type: 'local', src: '/var/cache/bk', tag: 'latest' }],
  ['type=local,store=/old', { type: 'local', src: '/old', tag: 'latest' }],
  [
    `type=local,src=dir with spaces,tag=main,digest=${DIGEST}`,
    { type: 'local', src: 'dir with spaces', tag: 'main', digest: DIGEST },
  ],
  ['type=local,"src=a,b"', { type: 'local', src: 'a,b', tag: 'latest' }],
] as const) {
  test(`import ${csv}`, (t) => {
    t.deepEqual(parseCacheImport(csv), expected);
  });
}

for (const [csv, expected] of [
  [
    'type=registry,ref=r.example/app:cache',
    { type: 'registry', ref: ref('r.example', 'app', 'cache'), ...EXPORT_DEFAULTS },
  ],
  [
    'r.example/app:cache',
    { type: 'registry', ref: ref('r.example', 'app', 'cache'), ...EXPORT_DEFAULTS },
  ],
  [
    'type=registry,ref=r.example/app:buildcache,mode=max,compression=zstd,ignore-error=true',
    {
      type: 'registry',
      ref: ref('r.example', 'app', 'buildcache'),
      ...EXPORT_DEFAULTS,
      mode: 'max',
      compression: 'zstd',
      ignoreError: true,
    },
  ],
  [
    'type=registry,ref=r.example/a:b,compression=estargz,compression-level=-1,force-compression=,registry.insecure=T',
    {
      type: 'registry',
      ref: ref('r.example', 'a', 'b'),
      ...EXPORT_DEFAULTS,
      compression: 'estargz',
      compressionLevel: -1,
      forceCompression: true,
      insecure: true,
    },
  ],
  [
    'type=registry,ref=r.example/a:b,force-compression=False,compression-level=+9',
    {
      type: 'registry',
      ref: ref('r.example', 'a', 'b'),
      ...EXPORT_DEFAULTS,
      forceCompression: false,
      compressionLevel: 9,
    },
  ],
  [
    'type=local,dest=/cache,tag=main,image-manifest=false,oci-mediatypes=true',
    {
      type: 'local',
      dest: '/cache',
      tag: 'main',
      ...EXPORT_DEFAULTS,
      imageManifest: false,
      ociMediatypes: true,
    },
  ],
  [
    'type=local,dest=/cache,oci-mediatypes=false',
    {
      type: 'local',
      dest: '/cache',
      tag: 'latest',
      ...EXPORT_DEFAULTS,
      ociMediatypes: false,
    },
  ],
  [
    'type=local,store=/cache,reset=true',
    { type: 'local', dest: '/cache', tag: 'latest', ...EXPORT_DEFAULTS, reset: true },
  ],
  [
    'type=local,dest=/c,mode=max,ignore-error=1',
    {
      type: 'local',
      dest: '/c',
      tag: 'latest',
      ...EXPORT_DEFAULTS,
      mode: 'max',
      ignoreError: true,
    },
  ],
] as const) {
  test(`export ${csv}`, (t) => {
    t.deepEqual(parseCacheExport(csv), expected);
  });
}

for (const [what, parse, csv, key, pattern] of [
  [
    'no type',
    parseCacheImport,
    'ref=r.example/a',
    'type',
    /cache import options need type=registry, type=local or type=service/,
  ],
  ['an empty type', parseCacheExport, 'type=,ref=r.example/a', 'type', /need type=/],
  [
    'gha',
    parseCacheImport,
    'type=gha,url=x',
    'type',
    /cache type "gha" is not supported by ociferry/,
  ],
  ['s3', parseCacheExport, 'type=s3,bucket=b', 'type', /"s3" is not supported by ociferry/],
  ['azblob', parseCacheExport, 'type=azblob', 'type', /"azblob" is not supported by ociferry/],
  ['inline', parseCacheExport, 'type=inline', 'type', /"inline" is not supported by ociferry/],
  [
    'an unknown type',
    parseCacheImport,
    'type=Registry,ref=a',
    'type',
    /cache type "Registry" is unknown \(supported: registry, local, service\)/,
  ],
  [
    'a field without =',
    parseCacheImport,
    'type=registry,r.example/a',
    undefined,
    /invalid cache option "r.example\/a": expected key=value/,
  ],
  [
    'a key given twice',
    parseCacheExport,
    'type=registry,ref=a,mode=max,MODE=min',
    'mode',
    /"mode" is given twice/,
  ],
  [
    'src and store together',
    parseCacheImport,
    'type=local,src=/a,store=/b',
    'store',
    /give src or its old name store, not both/,
  ],
  [
    'store for a registry',
    parseCacheImport,
    'type=registry,ref=a,store=/b',
    'store',
    /unknown option "store" for a registry cache import/,
  ],
  [
    'an unknown key',
    parseCacheExport,
    'type=registry,ref=a,colour=blue',
    'colour',
    /unknown option "colour" for a registry cache export \(valid options: type, ref,/,
  ],
  [
    'an export key on import',
    parseCacheImport,
    'type=registry,ref=a,mode=max',
    'mode',
    /"mode" for a registry cache import \(it applies to cache exports only\)/,
  ],
  [
    'dest on import',
    parseCacheImport,
    'type=local,dest=/a',
    'dest',
    /it applies to cache exports only/,
  ],
  [
    'digest on export',
    parseCacheExport,
    'type=local,dest=/a,digest=x',
    'digest',
    /unknown option "digest" for a local cache export/,
  ],
  [
    'a missing ref',
    parseCacheImport,
    'type=registry',
    'ref',
    /a registry cache import needs ref=<value>/,
  ],
  [
    'an empty ref',
    parseCacheExport,
    'type=registry,ref=',
    'ref',
    /a registry cache export needs ref=<value>/,
  ],
  [
    'an invalid ref',
    parseCacheImport,
    'type=registry,ref=R.example/UPPER',
    'ref',
    /ref: invalid reference "R.example\/UPPER"/,
  ],
  [
    'a legacy value that is no reference',
    parseCacheExport,
    'not a ref',
    'ref',
    /ref: invalid reference/,
  ],
  [
    'an OCI layout ref',
    parseCacheImport,
    'type=registry,ref=oci:/dir',
    'ref',
    /expected a registry reference/,
  ],
  [
    'a missing src',
    parseCacheImport,
    'type=local,tag=x',
    'src',
    /a local cache import needs src=<value>/,
  ],
  [
    'a missing dest',
    parseCacheExport,
    'type=local',
    'dest',
    /a local cache export needs dest=<value>/,
  ],
  [
    'an empty tag',
    parseCacheImport,
    'type=local,src=/a,tag=',
    'tag',
    /tag="" is invalid: tag must not be empty/,
  ],
  [
    'a bad digest',
    parseCacheImport,
    'type=local,src=/a,digest=sha256:xyz',
    'digest',
    /digest: invalid digest "sha256:xyz"/,
  ],
  [
    'a bad mode',
    parseCacheExport,
    'type=registry,ref=a,mode=all',
    'mode',
    /mode="all" is invalid: mode must be min or max/,
  ],
  [
    'a bad boolean',
    parseCacheExport,
    'type=registry,ref=a,ignore-error=yes',
    'ignore-error',
    /ignore-error="yes" is invalid: ignore-error must be true or false/,
  ],
  [
    'a bad insecure flag',
    parseCacheImport,
    'type=registry,ref=a,registry.insecure=on',
    'registry.insecure',
    /registry\.insecure="on" is invalid/,
  ],
  [
    'a bad compression',
    parseCacheExport,
    'type=local,dest=/a,compression=brotli',
    'compression',
    /must be one of uncompressed, gzip, estargz, zstd/,
  ],
  [
    'a bad compression level',
    parseCacheExport,
    'type=local,dest=/a,compression-level=high',
    'compression-level',
    /compression-level must be an integer/,
  ],
  [
    'a fractional compression level',
    parseCacheExport,
    'type=local,dest=/a,compression-level=1.5',
    'compression-level',
    /must be an integer/,
  ],
  ['an empty reset', parseCacheExport, 'type=local,dest=/a,reset=', 'reset', /reset="" is invalid/],
  [
    'image-manifest without OCI media types',
    parseCacheExport,
    'type=registry,ref=a,image-manifest=true,oci-mediatypes=false',
    'image-manifest',
    /image-manifest=true needs oci-mediatypes=true/,
  ],
  [
    'a CSV quoting error',
    parseCacheImport,
    'type=registry,ref="a',
    undefined,
    /invalid CSV in cache options at column 19: bare "/,
  ],
  ['an empty string', parseCacheImport, '', undefined, /empty cache option string/],
] as const) {
  test(`rejects ${what}, naming the key`, (t) => {
    const error = t.throws(() => parse(csv), { instanceOf: CacheOptionsError });
    t.is(error?.code, 'CACHE_OPTIONS_INVALID');
    t.is(error?.key, key);
    t.regex(error?.message ?? '', pattern);
  });
}

test('credentials typed into a ref are masked in the error', (t) => {
  const error = t.throws(() => parseCacheImport('type=registry,ref=user:hunter2@r.example/a'), {
    instanceOf: CacheOptionsError,
  });
  t.false(error?.message.includes('hunter2'));
});

test('booleans accept exactly what Go strconv.ParseBool accepts', (t) => {
  for (const [value, expected] of [
    ...['1', 't', 'T', 'TRUE', 'true', 'True'].map((v) => [v, true] as const),
    ...['0', 'f', 'F', 'FALSE', 'false', 'False'].map((v) => [v, false] as const),
  ]) {
    t.is(parseCacheExport(`type=local,dest=/a,ignore-error=${value}`).ignoreError, expected, value);
  }
  for (const value of ['yes', 'no', 'tRUE', 'on', ' true', '2']) {
    t.throws(() => parseCacheExport(`type=local,dest=/a,ignore-error=${value}`), {
      instanceOf: CacheOptionsError,
    });
  }
});

test('property: option values survive CSV quoting unchanged', (t) => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, unit: fc.constantFrom('a', '/', ',', '"', '=', ' ', 'é') }),
      (dir) => {
        const csv = formatCsvFields(['type=local', `dest=${dir}`, 'mode=max']);
        const parsed = parseCacheExport(csv);
        t.is(parsed.type === 'local' ? parsed.dest : undefined, dir);
      },
    ),
  );
});

test('property: parsing never throws anything but CacheOptionsError', (t) => {
  const piece = fc.constantFrom(
    'type=registry',
    'type=local',
    'type=gha',
    'ref=r.example/a:b',
    'ref=',
    'src=/a',
    'dest=/a',
    'store=/s',
    'tag=t',
    'mode=max',
    'mode=x',
    'digest=sha256:00',
    'reset=true',
    'compression=zstd',
    'compression-level=3',
    'force-compression=',
    'image-manifest=true',
    'oci-mediatypes=false',
    'registry.insecure=1',
    '"',
    ',',
    '=',
    'x',
  );
  fc.assert(
    fc.property(
      fc.array(fc.oneof(piece, fc.string()), { maxLength: 6 }),
      fc.boolean(),
      (pieces, exporting) => {
        const csv = pieces.join(',');
        try {
          (exporting ? parseCacheExport : parseCacheImport)(csv);
        } catch (error) {
          t.true(error instanceof CacheOptionsError, `${csv}: ${String(error)}`);
        }
      },
    ),
  );
});
