import test from 'ava';
import {
  formatReference,
  InvalidReferenceError,
  type LayoutReference,
  parseReference,
} from '../../src/reference/index.ts';

const SHA256 = `sha256:${'a'.repeat(64)}`;

function layout(path: string, parts: { tag?: string; digest?: string } = {}): LayoutReference {
  return { kind: 'layout', path, ...parts };
}

const valid: Array<[string, LayoutReference]> = [
  ['oci:dir', layout('dir')],
  ['oci:dir:v1', layout('dir', { tag: 'v1' })],
  [`oci:dir@${SHA256}`, layout('dir', { digest: SHA256 })],
  [`oci:dir:v1@${SHA256}`, layout('dir', { tag: 'v1', digest: SHA256 })],
  ['oci:/abs/path/to/layout:latest', layout('/abs/path/to/layout', { tag: 'latest' })],
  ['oci:./rel', layout('./rel')],
  ['oci:../up/dir', layout('../up/dir')],
  ['oci:/', layout('/')],
  ['oci:dir/', layout('dir/')],
  ['oci:My Images/app:1.0', layout('My Images/app', { tag: '1.0' })],
  // The tag is what follows the last ":" after the last separator; earlier ":" belong to DIR.
  ['oci:a:b:c', layout('a:b', { tag: 'c' })],
  ['oci:host:5000/dir:t', layout('host:5000/dir', { tag: 't' })],
  ['oci:odd:name/', layout('odd:name/')],
  ['oci:C:\\images\\app', layout('C:\\images\\app')],
  ['oci:C:\\images\\app:v2', layout('C:\\images\\app', { tag: 'v2' })],
  // "@" without a ":" after it belongs to DIR; with a digest it introduces the digest.
  ['oci:user@example', layout('user@example')],
  ['oci:a@b/dir:t', layout('a@b/dir', { tag: 't' })],
  [`oci:x@y@${SHA256}`, layout('x@y', { digest: SHA256 })],
  ['oci:dir@', layout('dir@')],
  ['oci:latest', layout('latest')],
];

for (const [input, expected] of valid) {
  test(`parses ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parseReference(input), expected);
  });
}

const invalid: Array<[string, string]> = [
  ['oci:', 'missing layout directory after "oci:"'],
  ['oci::v1', 'missing layout directory after "oci:"'],
  [`oci:@${SHA256}`, 'missing layout directory after "oci:"'],
  ['oci:dir:', 'empty tag after ":"'],
  ['oci:dir:bad+tag', 'invalid tag "bad+tag"'],
  ['oci:dir@sha256:abc', 'invalid digest "sha256:abc"'],
  ['oci:dir@v1:x', 'invalid digest "v1:x"'],
  ['oci:di\u0000r', 'layout directory contains control characters'],
  ['oci:dir ', 'leading or trailing whitespace'],
];

for (const [input, reason] of invalid) {
  test(`rejects ${JSON.stringify(input)} with "${reason}"`, (t) => {
    const error = t.throws(() => parseReference(input), { instanceOf: InvalidReferenceError });
    t.true(error.message.includes(reason), error.message);
  });
}

test('only the lower-case "oci:" prefix marks a layout', (t) => {
  t.throws(() => parseReference('OCI:dir'), { message: /repository name "OCI" must be lowercase/ });
  t.is(parseReference('oci:dir').kind, 'layout');
});

const formatted: Array<[LayoutReference, string]> = [
  [layout('dir'), 'oci:dir'],
  [layout('a:b', { tag: 't' }), 'oci:a:b:t'],
  [layout('/x', { tag: 't', digest: SHA256 }), `oci:/x:t@${SHA256}`],
  // Paths the parser would misread get a trailing "/", which names the same directory.
  [layout('a:b'), 'oci:a:b/'],
  [layout('a:b', { digest: SHA256 }), `oci:a:b/@${SHA256}`],
  [layout('x@y', { tag: 't' }), 'oci:x@y/:t'],
  [layout('x@y:z', { tag: 't' }), 'oci:x@y:z/:t'],
  [layout('x@y', { digest: SHA256 }), `oci:x@y@${SHA256}`],
];

for (const [ref, expected] of formatted) {
  test(`formats ${JSON.stringify(ref)} as ${expected}`, (t) => {
    const text = formatReference(ref);
    t.is(text, expected);
    const back = parseReference(text) as LayoutReference;
    t.is(back.path.replace(/\/$/, ''), ref.path);
    t.is(back.tag, ref.tag);
    t.is(back.digest, ref.digest);
  });
}
