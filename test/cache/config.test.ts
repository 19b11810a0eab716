import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import test from 'ava';
import fc from 'fast-check';
import {
  type CacheConfig,
  type CacheRecord,
  DEFAULT_CACHE_CONFIG_LIMIT,
  validateCacheConfig,
} from '../../src/cache/config.ts';
import { parseCacheConfig } from '../../src/cache/config-parse.ts';
import { serializeCacheConfig, sortCacheConfig } from '../../src/cache/config-write.ts';
import { CacheConfigError } from '../../src/cache/errors.ts';
import { compareGoStrings, goJsonString } from '../../src/cache/go-json.ts';
import {
  compareGoTimes,
  normalizeGoTime,
  rankGoTimes,
  ZERO_TIME,
} from '../../src/cache/go-time.ts';
import { DigestMismatchError, digestBytes } from '../../src/digest/index.ts';
import { SizeExceededError } from '../../src/errors.ts';
import { fixturePath } from '../helpers/fixtures.ts';

const parse = (json: string | Uint8Array) =>
  parseCacheConfig(typeof json === 'string' ? Buffer.from(json) : json);
const fixture = (name: string) => readFile(fixturePath(`cacheconfig/${name}`));
const hex = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

// ---- reading and writing the wire format ----

test('simple.json parses and serializes back to the identical bytes', async (t) => {
  const bytes = await fixture('simple.json');
  const { config, digest, size } = await parse(bytes);
  t.is(config.layers.length, 5);
  t.is(config.records.length, 6);
  t.is(size, bytes.length);
  t.is(digest, digestBytes(bytes));
  t.true(serializeCacheConfig(config).equals(bytes));
  t.true(serializeCacheConfig(sortCacheConfig(config)).equals(bytes), 'BuildKit output is sorted');
});

test('a config streamed in 7-byte chunks parses like one read whole', async (t) => {
  const whole = await parse(await fixture('diamond-64.json'));
  const streamed = await parseCacheConfig(
    createReadStream(fixturePath('cacheconfig/diamond-64.json'), { highWaterMark: 7 }),
  );
  t.deepEqual(streamed, whole);
});

test('legacy keys (createdat, explicit parent 0, indentation) read as BuildKit reads them', async (t) => {
  const simple = await fixture('simple.json');
  const { config } = await parse(await fixture('legacy-keys.json'));
  t.deepEqual(config, (await parse(simple)).config);
  t.true(serializeCacheConfig(config).equals(simple));
});

test('a missing parent means layer 0, not a root', async (t) => {
  const { config } = await parse(
    `{"layers":[{"blob":"${hex(1)}","parent":-1},{"blob":"${hex(2)}"}],"records":[]}`,
  );
  t.deepEqual(
    config.layers.map((l) => l.parent),
    [-1, 0],
  );
  t.is(
    serializeCacheConfig(config).toString(),
    `{"layers":[{"blob":"${hex(1)}","parent":-1},{"blob":"${hex(2)}"}]}`,
  );
});

test('decodes and re-encodes exactly as Go encoding/json does', async (t) => {
  // Expected output produced by Go's json.Unmarshal + json.Marshal on BuildKit's types.
  const input = String.raw`{"LAYERS":[{"Blob":"sha256:<a>&b","parent":-1,"annotations":{"mediaType":"m\u2028\u2029","diffID":"d\u0001\u001f\"\\/é😀","size":0,"createdAt":"2025-01-02T03:04:05.100000+00:00"}, "extra":{"x":[1,2,{"y":null}]}}],"records":[{"digest":"sha256:r","layers":[{"layer":0,"createdat":"2025-01-02T03:04:05.1234567891-07:30"}],"inputs":null,"chains":null,"Layers":null},{"digest":"sha256:q","LAYERS":[{"layer":0,"createdAt":"2025-01-02T03:04:05.000000001-00:00"}],"inputs":[[{"link":0,"selector":""},{"link":0,"selector":"a<b"}]]}]}`;
  const expected = String.raw`{"layers":[{"blob":"sha256:\u003ca\u003e\u0026b","parent":-1,"annotations":{"mediaType":"m\u2028\u2029","diffID":"d\u0001\u001f\"\\/é😀","createdAt":"2025-01-02T03:04:05.1Z"}}],"records":[{"digest":"sha256:r"},{"layers":[{"layer":0,"createdAt":"2025-01-02T03:04:05.000000001Z"}],"digest":"sha256:q","inputs":[[{"link":0},{"selector":"a\u003cb","link":0}]]}]}`;
  const { config } = await parse(input);
  t.is(serializeCacheConfig(config).toString(), expected);
  t.deepEqual(config.records[1]?.inputs[0], [{ link: 0 }, { selector: 'a<b', link: 0 }]);
});

test('a repeated key decodes into what the first one left, as Go does', async (t) => {
  // Expected output produced by Go's json.Unmarshal + json.Marshal on BuildKit's types.
  const input = `{"layers":[{"blob":"a","parent":-1},{"blob":"c","parent":0}],"layers":[null,{"blob":"b"},{"blob":"x","parent":-1}],"records":[{"digest":"a"},{"digest":"b","inputs":[[{"selector":"s","link":0},{"link":0}],[{"link":0}]]}],"records":[{},{"inputs":[[{"link":0}]]}]}`;
  const expected = `{"layers":[{"blob":"a","parent":-1},{"blob":"b"},{"blob":"x","parent":-1}],"records":[{"digest":"a"},{"digest":"b","inputs":[[{"selector":"s","link":0}]]}]}`;
  t.is(serializeCacheConfig((await parse(input)).config).toString(), expected);
});

test('a repeated annotations key merges like a Go pointer; null clears it', async (t) => {
  const layer = (annotations: string) =>
    parse(`{"layers":[{"blob":"b","parent":-1,${annotations}}]}`).then((r) => r.config.layers[0]);
  t.deepEqual(
    (await layer('"annotations":{"size":7},"annotations":{"mediaType":"m"}'))?.annotations,
    {
      createdAt: ZERO_TIME,
      size: 7,
      mediaType: 'm',
    },
  );
  t.is((await layer('"annotations":{"size":7},"annotations":null'))?.annotations, undefined);
});

test('keys fold like Go: the Kelvin sign and long s match k and s', async (t) => {
  const { config } = await parse('{"records":[{"digeſt":"a"},{"DIGEST":"b","lin\u212a":1}]}');
  t.deepEqual(
    config.records.map((r) => r.digest),
    ['a', 'b'],
  );
});

test('top-level null is an empty config, as Go decodes it', async (t) => {
  const { config } = await parse('null');
  t.deepEqual(config, { layers: [], records: [] });
  t.is(serializeCacheConfig(config).toString(), '{}');
});

test('multi-byte characters split across chunks decode intact', async (t) => {
  const json = Buffer.from('{"records":[{"digest":"é😀€"}]}');
  const oneByteChunks = Readable.from(Array.from(json, (byte) => Buffer.from([byte])));
  const { config } = await parseCacheConfig(oneByteChunks);
  t.is(config.records[0]?.digest, 'é😀€');
});

test('a chained result with no layers is written as null, as Go writes a nil list', async (t) => {
  const { config } = await parse('{"records":[{"chains":[{"createdAt":"2025-01-01T00:00:00Z"}]}]}');
  t.is(
    serializeCacheConfig(config).toString(),
    '{"records":[{"chains":[{"layers":null,"createdAt":"2025-01-01T00:00:00Z"}]}]}',
  );
});

// ---- refusing malformed configs ----

for (const [name, pattern, record] of [
  ['loop-records.json', /record 0 \(sha256:0960b2c3.*\) is its own input \(looping records\)/, 0],
  [
    'loop-layers.json',
    /layer 0 \(sha256:43594c95.*\) is its own ancestor \(looping layers\)/,
    undefined,
  ],
  [
    'bad-index.json',
    /record 1 \(sha256:357d8de9.*\): input 0 links to record 2, out of range \(2 records\)/,
    1,
  ],
  ['bad-layer-index.json', /record 0 .*: result 0 names layer 2, out of range \(2 layers\)/, 0],
  ['bad-parent-index.json', /layer 1 .*: parent 5 is out of range \(2 layers\)/, undefined],
  ['empty-input-group.json', /record 1 \(sha256:357d8de9.*\): input 1 is empty/, 1],
  [
    'wrong-types.json',
    /record 1 .*: records\[1\]\.inputs\[0\]\[0\]\.link: expected an integer, got a string/,
    1,
  ],
  ['truncated.json', /input ends early/, undefined],
] as const) {
  test(`rejects ${name} naming what is wrong`, async (t) => {
    const error = await t.throwsAsync(parse(await fixture(name)), { instanceOf: CacheConfigError });
    t.is(error?.code, 'CACHE_CONFIG_INVALID');
    t.regex(error?.message ?? '', pattern);
    t.is(error?.record, record);
  });
}

const L = (parent: number, blob = 'b') => `{"blob":"${blob}","parent":${parent}}`;
for (const [why, json, pattern] of [
  ['empty input', '', /ends early/],
  ['trailing garbage', '{} x', /not valid JSON/],
  ['a top-level array', '[]', /top level: expected an object, got an array/],
  ['layers as an object', '{"layers":{}}', /layers: expected an array, got an object/],
  [
    'a fractional index',
    `{"layers":[{"blob":"b","parent":1.0}]}`,
    /layers\[0\]\.parent: expected an integer, got 1\.0/,
  ],
  ['an exponent index', `{"layers":[{"blob":"b","parent":1e0}]}`, /expected an integer, got 1e0/],
  ['an unsafe integer', `{"layers":[{"blob":"b","parent":9007199254740993}]}`, /out of range/],
  [
    'a boolean parent',
    `{"layers":[{"blob":"b","parent":true}]}`,
    /expected an integer, got a boolean/,
  ],
  [
    'a numeric blob',
    '{"layers":[{"blob":1,"parent":-1}]}',
    /layers\[0\]\.blob: expected a string, got the number 1/,
  ],
  [
    'a numeric time',
    `{"layers":[${L(-1)}],"records":[{"layers":[{"layer":0,"createdAt":5}]}]}`,
    /record 0: records\[0\]\.layers\[0\]\.createdAt: expected an RFC 3339 time string/,
  ],
  [
    'an impossible date',
    `{"layers":[${L(-1)}],"records":[{"layers":[{"layer":0,"createdAt":"2025-02-29T00:00:00Z"}]}]}`,
    /"2025-02-29T00:00:00Z" is not an RFC 3339 time/,
  ],
  [
    'a zone hour of 24',
    `{"layers":[${L(-1)}],"records":[{"layers":[{"layer":0,"createdAt":"2025-01-01T00:00:00+24:00"}]}]}`,
    /is not an RFC 3339 time/,
  ],
  ['a parent of -2', `{"layers":[${L(-2)}]}`, /layer 0 \(b\): parent -2 is out of range/],
  [
    'a layer that is its own parent',
    `{"layers":[${L(-1)},${L(1, 'c')}]}`,
    /layer 1 \(c\) is its own ancestor/,
  ],
  ['a three-layer parent loop', `{"layers":[${L(-1)},${L(3)},${L(1)},${L(2)}]}`, /looping layers/],
  [
    'a chain naming a missing layer',
    `{"layers":[${L(-1)}],"records":[{"digest":"d","chains":[{"layers":[0,1],"createdAt":"${ZERO_TIME}"}]}]}`,
    /record 0 \(d\): chain 0 names layer 1, out of range/,
  ],
  [
    'a negative link',
    '{"records":[{"digest":"d","inputs":[[{"link":-1}]]}]}',
    /record 0 \(d\): input 0 links to record -1/,
  ],
  [
    'a record linking itself',
    '{"records":[{"digest":"d","inputs":[[{"link":0}]]}]}',
    /record 0 \(d\) is its own input/,
  ],
  [
    'a three-record loop',
    '{"records":[{"inputs":[[{"link":2}]]},{"inputs":[[{"link":0}]]},{"inputs":[[{"link":1}]]}]}',
    /looping records/,
  ],
  [
    'a null input group',
    '{"records":[{"digest":"d"},{"digest":"e","inputs":[[{"link":0}],null]}]}',
    /record 1 \(e\): input 1 is empty/,
  ],
] as const) {
  test(`rejects ${why}`, async (t) => {
    const error = await t.throwsAsync(parse(json), { instanceOf: CacheConfigError });
    t.regex(error?.message ?? '', pattern);
  });
}

test('a loop reached only through a long chain is found without deep recursion', async (t) => {
  const n = 50_000;
  const records = Array.from({ length: n }, (_, i) => ({
    digest: hex(i),
    results: [],
    chains: [],
    inputs: [[{ link: (i + 1) % n }]],
  }));
  const error = t.throws(() => validateCacheConfig({ layers: [], records }), {
    instanceOf: CacheConfigError,
  });
  t.regex(error?.message ?? '', /looping records/);
});

// ---- size, digest, abort ----

test('refuses a config over the limit while streaming, without reading the rest', async (t) => {
  let pulled = 0;
  const chunk = Buffer.from(`{"digest":"${hex(1)}"},`.repeat(100));
  const endless = Readable.from(
    (function* () {
      yield Buffer.from('{"records":[');
      for (;;) {
        pulled += chunk.length;
        yield chunk;
      }
    })(),
  );
  const error = await t.throwsAsync(parseCacheConfig(endless, { limit: 1 << 20 }), {
    instanceOf: SizeExceededError,
  });
  t.is(error?.code, 'SIZE_EXCEEDED');
  t.is(error?.limit, 1 << 20);
  t.true(pulled < (1 << 20) + 64 * chunk.length, `pulled ${pulled} bytes`);
  t.true(endless.destroyed);
});

test('a 1.6 MB config (too big for BuildKit 1 MiB cap) parses under the default limit', async (t) => {
  const layers = Array.from({ length: 127 }, (_, i) => ({ blob: hex(i), parent: i - 1 }));
  const records: CacheRecord[] = Array.from({ length: 6000 }, (_, i) => ({
    digest: hex(1e6 + i),
    results: [{ layer: i % 127, createdAt: '2025-01-02T03:04:05.123456789Z' }],
    chains: [],
    inputs: i === 0 ? [] : [[{ selector: hex(i), link: i - 1 }], [{ link: 0 }]],
  }));
  const bytes = serializeCacheConfig({ layers, records });
  t.true(bytes.length > 1_600_000 && bytes.length < DEFAULT_CACHE_CONFIG_LIMIT, `${bytes.length}`);
  const { config, size } = await parse(bytes);
  t.is(size, bytes.length);
  t.is(config.records.length, 6000);
  await t.notThrowsAsync(parseCacheConfig(bytes, { limit: bytes.length }));
  await t.throwsAsync(parseCacheConfig(bytes, { limit: bytes.length - 1 }), {
    instanceOf: SizeExceededError,
  });
});

test('verifies expectedDigest in the same pass, in its algorithm', async (t) => {
  const bytes = await fixture('simple.json');
  t.is(
    (await parseCacheConfig(bytes, { expectedDigest: digestBytes(bytes) })).digest,
    digestBytes(bytes),
  );
  const sha512 = digestBytes(bytes, 'sha512');
  t.is((await parseCacheConfig(bytes, { expectedDigest: sha512 })).digest, sha512);
  const error = await t.throwsAsync(
    parseCacheConfig(bytes, { expectedDigest: hex(1), origin: 'registry.test/cache' }),
    { instanceOf: DigestMismatchError },
  );
  t.is(error?.actual, digestBytes(bytes));
  t.regex(error?.message ?? '', /registry\.test\/cache/);
});

test('corrupted bytes are a digest mismatch even when they also break the JSON', async (t) => {
  const bytes = await fixture('simple.json');
  const corrupted = Buffer.from(bytes);
  corrupted[40] = 0x22; // a quote in the middle of a digest string
  await t.throwsAsync(parse(corrupted), { instanceOf: CacheConfigError });
  const stream = Readable.from([corrupted.subarray(0, 100), corrupted.subarray(100)]);
  await t.throwsAsync(parseCacheConfig(stream, { expectedDigest: digestBytes(bytes) }), {
    instanceOf: DigestMismatchError,
  });
});

test('an aborted signal stops the parse of a stream that never ends', async (t) => {
  const controller = new AbortController();
  const stalled = new Readable({ read() {} });
  stalled.push('{"records":[');
  const parsing = parseCacheConfig(stalled, { signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  const error = await t.throwsAsync(parsing);
  t.is(error?.name, 'AbortError');
});

// ---- sorting ----

test('sortCacheConfig orders and remaps exactly as BuildKit sortConfig', async (t) => {
  // Expected output produced by BuildKit's sortConfig algorithm and Go's json.Marshal.
  const input = `{"layers":[{"blob":"sha256:cc","parent":2},{"blob":"sha256:bb","parent":-1},{"blob":"sha256:aa","parent":1},{"blob":"sha256:aa","parent":-1}],"records":[{"digest":"sha256:r3","layers":[{"layer":0,"createdAt":"2025-01-02T03:04:05.5Z"}],"inputs":[[{"link":3},{"selector":"s","link":1}]]},{"digest":"sha256:r1","layers":[{"layer":1,"createdAt":"2025-01-01T00:00:00Z"}]},{"digest":"sha256:r3","inputs":[[{"link":1}]]},{"digest":"sha256:r0","layers":[{"layer":3,"createdAt":"2025-01-01T00:00:00Z"}]},{"digest":"sha256:r3","inputs":[[{"link":3}]]},{"digest":"sha256:r2","chains":[{"layers":[3,0],"createdAt":"2025-01-03T00:00:00Z"}],"inputs":[[{"link":1}],[{"link":2}]]}]}`;
  const expected = `{"layers":[{"blob":"sha256:aa","parent":-1},{"blob":"sha256:aa","parent":2},{"blob":"sha256:bb","parent":-1},{"blob":"sha256:cc","parent":1}],"records":[{"layers":[{"layer":0,"createdAt":"2025-01-01T00:00:00Z"}],"digest":"sha256:r0"},{"layers":[{"layer":2,"createdAt":"2025-01-01T00:00:00Z"}],"digest":"sha256:r1"},{"chains":[{"layers":[0,3],"createdAt":"2025-01-03T00:00:00Z"}],"digest":"sha256:r2","inputs":[[{"link":1}],[{"link":4}]]},{"digest":"sha256:r3","inputs":[[{"link":0}]]},{"digest":"sha256:r3","inputs":[[{"link":1}]]},{"layers":[{"layer":3,"createdAt":"2025-01-02T03:04:05.5Z"}],"digest":"sha256:r3","inputs":[[{"link":0},{"selector":"s","link":1}]]}]}`;
  const { config } = await parse(input);
  const before = serializeCacheConfig(config);
  t.is(serializeCacheConfig(sortCacheConfig(config)).toString(), expected);
  t.true(serializeCacheConfig(config).equals(before), 'the input is left alone');
});

test('strings sort by UTF-8 bytes as in Go, not by UTF-16 units', (t) => {
  t.true(compareGoStrings('\uffff', '😀') < 0);
  t.true('\uffff' > '😀', 'JavaScript order differs');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
      const expected = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      return Math.sign(compareGoStrings(a, b)) === expected;
    }),
  );
});

// ---- properties over generated configs ----

const text = fc.oneof(
  fc.constantFrom(
    'a<b>&c',
    '\u2028',
    'é',
    '\ue000',
    '😀',
    'x\u0001\n\t"\\',
    `sha256:${'a'.repeat(64)}`,
  ),
  fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme' }),
);
const time = fc
  .oneof(
    fc.constantFrom(
      ZERO_TIME,
      '2025-01-02T03:04:05.123456789+05:30',
      '2024-02-29T23:59:59.1-08:00',
    ),
    fc
      .date({ min: new Date('0001-01-01'), max: new Date('9999-12-31'), noInvalidDate: true })
      .map((d) => d.toISOString()),
  )
  .map((s) => normalizeGoTime(s) as string);
/** Valid configs: parents and links only point backwards, so there are no loops. */
const configs: fc.Arbitrary<CacheConfig> = fc
  .tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 8 }))
  .chain(([nl, nr]) =>
    fc.record({
      layers: fc.tuple(
        ...Array.from({ length: nl }, (_, i) =>
          fc.record(
            {
              blob: text,
              parent: fc.integer({ min: -1, max: i - 1 }),
              annotations: fc.record(
                {
                  mediaType: text,
                  diffID: text,
                  size: fc.integer({ min: 1, max: 2 ** 40 }),
                  createdAt: time,
                },
                { requiredKeys: ['createdAt'] },
              ),
            },
            { requiredKeys: ['blob', 'parent'] },
          ),
        ),
      ),
      records: fc.tuple(
        ...Array.from({ length: nr }, (_, i) =>
          fc.record({
            digest: text,
            results:
              nl === 0
                ? fc.constant([])
                : fc.array(fc.record({ layer: fc.nat(nl - 1), createdAt: time }), { maxLength: 2 }),
            chains:
              nl === 0
                ? fc.constant([])
                : fc.array(
                    fc.record({
                      layers: fc.array(fc.nat(nl - 1), { minLength: 1, maxLength: 3 }),
                      createdAt: time,
                    }),
                    { maxLength: 1 },
                  ),
            inputs:
              i === 0
                ? fc.constant([])
                : fc.array(
                    fc.array(
                      fc.record(
                        { selector: text, link: fc.nat(i - 1) },
                        { requiredKeys: ['link'] },
                      ),
                      { minLength: 1, maxLength: 3 },
                    ),
                    { maxLength: 3 },
                  ),
          }),
        ),
      ),
    }),
  );

test('property: parse(serialize(config)) gives the config back, and serializes to the same bytes', async (t) => {
  await fc.assert(
    fc.asyncProperty(configs, async (config) => {
      const bytes = serializeCacheConfig(config);
      const parsed = (await parse(bytes)).config;
      t.deepEqual(parsed, config);
      t.true(serializeCacheConfig(parsed).equals(bytes));
    }),
  );
});

/** What a config means, independent of order: each record's digest, inputs and result blobs. */
function meaning(config: CacheConfig): string[] {
  const chain = (layer: number): string[] => {
    const blobs: string[] = [];
    for (let i = layer; i !== -1; i = config.layers[i]?.parent ?? -1)
      blobs.unshift(config.layers[i]?.blob ?? '');
    return blobs;
  };
  const describe = (index: number, depth: number): string => {
    const r = config.records[index] as CacheRecord;
    const inputs =
      depth > 3
        ? '…'
        : r.inputs.map((g) =>
            g
              .map((i) => `${i.selector ?? ''}>${describe(i.link, depth + 1)}`)
              .sort()
              .join('|'),
          );
    const results = r.results.map((x) => `${x.createdAt}:${chain(x.layer).join('/')}`).join(',');
    const chains = r.chains
      .map((c) => `${c.createdAt}:${c.layers.map((l) => config.layers[l]?.blob).join('/')}`)
      .join(',');
    return JSON.stringify([r.digest, inputs, results, chains]);
  };
  return config.records.map((_, i) => describe(i, 0)).sort();
}

test('property: sorting keeps the config valid and its meaning, and is deterministic', async (t) => {
  await fc.assert(
    fc.asyncProperty(configs, async (config) => {
      const sorted = sortCacheConfig(config);
      t.notThrows(() => validateCacheConfig(sorted));
      t.deepEqual(meaning(sorted), meaning(config));
      const digests = sorted.records.map((r) => r.digest);
      t.deepEqual(digests, [...digests].sort(compareGoStrings));
      for (const r of sorted.records) {
        for (const g of r.inputs)
          t.deepEqual(
            g.map((i) => i.link),
            g.map((i) => i.link).sort((a, b) => a - b),
          );
      }
    }),
  );
});

test('property: the parser only ever throws CacheConfigError on arbitrary bytes', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.json(),
        fc.string(),
        configs.map((c) => serializeCacheConfig(c).toString().slice(0, -3)),
      ),
      async (json) => {
        try {
          await parse(json);
        } catch (error) {
          t.true(error instanceof CacheConfigError, String(error));
        }
      },
    ),
  );
});

// ---- Go string and time behaviour ----

test('goJsonString writes what Go writes and JSON reads back', (t) => {
  t.is(goJsonString('<a&b>'), String.raw`"\u003ca\u0026b\u003e"`);
  t.is(goJsonString('\b\f\n\r\t\u0000\u001f\u007f'), '"\\b\\f\\n\\r\\t\\u0000\\u001f\u007f"');
  t.is(goJsonString('\u2028\u2029'), String.raw`"\u2028\u2029"`);
  t.is(goJsonString('x\ud800y\udc00'), String.raw`"x\ufffdy\ufffd"`, 'unpaired surrogates');
  t.is(goJsonString('😀é'), '"😀é"');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      const out = goJsonString(s);
      return JSON.parse(out) === s && !/[<>&\u2028\u2029]/.test(out);
    }),
  );
});

for (const [input, expected] of [
  ['2025-01-02T03:04:05Z', '2025-01-02T03:04:05Z'],
  ['2025-01-02T03:04:05.120000Z', '2025-01-02T03:04:05.12Z'],
  ['2025-01-02T03:04:05.000Z', '2025-01-02T03:04:05Z'],
  ['2025-01-02T03:04:05.1234567891999Z', '2025-01-02T03:04:05.123456789Z'],
  ['2025-01-02T03:04:05+00:00', '2025-01-02T03:04:05Z'],
  ['2025-01-02T03:04:05-00:00', '2025-01-02T03:04:05Z'],
  ['2025-01-02T03:04:05.5+05:30', '2025-01-02T03:04:05.5+05:30'],
  ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00Z'],
  ['0000-02-29T00:00:00Z', '0000-02-29T00:00:00Z'],
  ['1900-02-29T00:00:00Z', undefined],
  ['2025-01-02T24:00:00Z', undefined],
  ['2025-01-02T23:59:60Z', undefined],
  ['2025-01-02T03:04:05,5Z', undefined],
  ['2025-01-02t03:04:05Z', undefined],
  ['2025-01-02T03:04:05z', undefined],
  ['2025-01-02T03:04:05', undefined],
  ['2025-01-02T3:04:05Z', undefined],
  ['2025-01-02T03:04:05+23:60', undefined],
] as const) {
  test(`normalizeGoTime(${input}) is ${expected}`, (t) => {
    t.is(normalizeGoTime(input), expected);
  });
}

test('rankGoTimes orders as compareGoTimes does, equal instants sharing a rank', (t) => {
  const odd = [
    '2025-01-02T03:04:05.5+05:30',
    '1900-02-29T00:00:00Z',
    '2025-01-02T03:04:05,5Z',
    '2025-01-02T03:04:05.0000000001Z',
    '2025-01-02T03:04:05.Z',
  ];
  const time = fc.oneof(
    fc
      .date({ min: new Date('0001-01-01'), max: new Date('9999-12-31'), noInvalidDate: true })
      .map((d) => d.toISOString()),
    fc.constantFrom(...odd, ZERO_TIME, '2025-01-02T03:04:05Z', '2025-01-02T04:04:05+01:00'),
    fc
      .tuple(
        fc.nat(2),
        fc.constantFrom('', '.5', '.50', '.51', '.05', '.000000001', '.1', '.1000000001'),
      )
      .map(([second, fraction]) => `2025-01-02T03:04:0${second}${fraction}Z`),
  );
  fc.assert(
    fc.property(fc.array(time, { maxLength: 30 }), (times) => {
      const ranks = rankGoTimes(times);
      return times.every((a, i) =>
        times.every(
          (b, j) =>
            Math.sign((ranks[i] as number) - (ranks[j] as number)) ===
            Math.sign(compareGoTimes(a, b)),
        ),
      );
    }),
  );
  t.pass();
});

test('compareGoTimes orders instants across zones and nanoseconds', (t) => {
  t.true(compareGoTimes('2025-01-02T03:00:00+01:00', '2025-01-02T02:30:00Z') < 0);
  t.is(compareGoTimes('2025-01-02T03:00:00+01:00', '2025-01-02T02:00:00Z'), 0);
  t.true(compareGoTimes('2025-01-02T03:04:05.000000002Z', '2025-01-02T03:04:05.000000001Z') > 0);
  t.true(compareGoTimes(ZERO_TIME, '0001-01-01T00:00:00.000000001Z') < 0);
  t.is(compareGoTimes('garbage', ZERO_TIME), 0, 'an unreadable time counts as the zero time');
  fc.assert(
    fc.property(
      fc.date({ min: new Date('0001-01-01'), max: new Date('9999-12-31'), noInvalidDate: true }),
      fc.date({ min: new Date('0001-01-01'), max: new Date('9999-12-31'), noInvalidDate: true }),
      (a, b) =>
        Math.sign(compareGoTimes(a.toISOString(), b.toISOString())) ===
        Math.sign(a.getTime() - b.getTime()),
    ),
  );
});
