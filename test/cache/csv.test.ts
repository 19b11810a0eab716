import test from 'ava';
import fc from 'fast-check';
import { formatCsvFields, parseCsvFields } from '../../src/cache/csv.ts';
import { CacheOptionsError } from '../../src/cache/errors.ts';

// Expectations checked against tonistiigi/go-csvvalue, the parser buildctl uses.
for (const [line, fields] of [
  ['type=registry,ref=r.example/app:cache', ['type=registry', 'ref=r.example/app:cache']],
  ['"ref=a,b",mode=max', ['ref=a,b', 'mode=max']],
  ['"a""b",c', ['a"b', 'c']],
  ['"a""",""""', ['a"', '"']],
  ['"a\nb\r",c', ['a\nb\r', 'c']],
  ['a,', ['a', '']],
  [',', ['', '']],
  ['""', ['']],
  ['"",""', ['', '']],
  ['"a",', ['a', '']],
  [' a , b ', [' a ', ' b ']],
  ['a\n', ['a']],
  ['a\r\n', ['a']],
  ['"a"\n', ['a']],
  ['é,😀', ['é', '😀']],
] as const) {
  test(`splits ${JSON.stringify(line)}`, (t) => {
    t.deepEqual(parseCsvFields(line), [...fields]);
  });
}

for (const [line, pattern] of [
  ['', /empty cache option string/],
  ['\n', /empty cache option string/],
  ['a"b', /column 2: bare " in a non-quoted field/],
  ['x,a"b', /column 4: bare "/],
  ['"ab', /column 1: quoted field has no closing "/],
  ['"a"b', /column 3: extraneous " in a quoted field/],
  ['"a" ,b', /column 3: extraneous "/],
] as const) {
  test(`rejects ${JSON.stringify(line)} naming the column`, (t) => {
    const error = t.throws(() => parseCsvFields(line), { instanceOf: CacheOptionsError });
    t.is(error?.code, 'CACHE_OPTIONS_INVALID');
    t.regex(error?.message ?? '', pattern);
  });
}

test('formatCsvFields quotes only what needs quoting', (t) => {
  t.is(
    formatCsvFields(['type=registry', 'ref=a,b', 'say="hi"', '']),
    'type=registry,"ref=a,b","say=""hi""",',
  );
  t.is(formatCsvFields(['']), '""');
});

test('property: formatted fields split back into the same fields', (t) => {
  const field = fc.string({
    unit: fc.constantFrom('a', '=', ',', '"', '\n', '\r', ' ', 'é', '😀'),
  });
  fc.assert(
    fc.property(
      fc.array(fc.oneof(field, fc.string()), { minLength: 1, maxLength: 6 }),
      (fields) => {
        t.deepEqual(parseCsvFields(formatCsvFields(fields)), fields);
      },
    ),
  );
});

test('property: splitting never throws anything but CacheOptionsError', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', '\r', ' ') }), (line) => {
      try {
        const fields = parseCsvFields(line);
        t.true(fields.length >= 1);
      } catch (error) {
        t.true(error instanceof CacheOptionsError);
      }
    }),
  );
});
