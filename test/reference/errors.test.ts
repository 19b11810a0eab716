import test from 'ava';
import { OciferryError } from '../../src/errors.ts';
import { InvalidReferenceError, parseReference } from '../../src/reference/index.ts';

test('InvalidReferenceError carries the stable code, its name and the input', (t) => {
  const error = t.throws(() => parseReference('ghcr.io/A'), { instanceOf: InvalidReferenceError });
  t.true(error instanceof OciferryError);
  t.is(error.code, 'REFERENCE_INVALID');
  t.is(error.name, 'InvalidReferenceError');
  t.is(error.input, 'ghcr.io/A');
});

const masked: Array<[string, string]> = [
  ['user:secret@ghcr.io/o/a', '***@ghcr.io/o/a'],
  ['user:se/cr@et@ghcr.io/o/b', '***@ghcr.io/o/b'],
  ['https://user:secret@ghcr.io/o/a', 'https://***@ghcr.io/o/a'],
  ['docker://user:secret@ghcr.io/o/a:1', 'docker://***@ghcr.io/o/a:1'],
];

for (const [input, shown] of masked) {
  test(`credentials typed into ${JSON.stringify(shown)} never reach the error`, (t) => {
    const error = t.throws(() => parseReference(input), { instanceOf: InvalidReferenceError });
    t.is(error.input, shown);
    t.false(error.message.includes('secret'), error.message);
    t.false(JSON.stringify(error).includes('secret'));
  });
}

test('a digest "@" and a layout path "@" are not mistaken for credentials', (t) => {
  const digest = t.throws(() => parseReference('a/b@sha256:abc'), {
    instanceOf: InvalidReferenceError,
  });
  t.is(digest.input, 'a/b@sha256:abc');
  const layout = t.throws(() => parseReference('oci:me@host/dir:bad+tag'), {
    instanceOf: InvalidReferenceError,
  });
  t.is(layout.input, 'oci:me@host/dir:bad+tag');
});

test('a very long input is shortened in the message but kept whole in the field', (t) => {
  const input = `ghcr.io/${'a/'.repeat(200)}`;
  const error = t.throws(() => parseReference(input), { instanceOf: InvalidReferenceError });
  t.is(error.input, input);
  t.true(error.message.length < 400, error.message);
  t.true(error.message.includes('..."'));
});
