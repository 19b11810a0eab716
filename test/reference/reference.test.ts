import test from 'ava';
import { InvalidDigestError } from '../../src/digest/index.ts';
import {
  familiarName,
  formatReference,
  InvalidReferenceError,
  parseReference,
  parseRegistryReference,
  type Reference,
  type RegistryReference,
  withDigest,
  withTag,
} from '../../src/reference/index.ts';

const SHA256 = `sha256:${'a'.repeat(64)}`;
const SHA512 = `sha512:${'b'.repeat(128)}`;
const BLAKE3 = `blake3:${'c'.repeat(64)}`;

function registry(
  registry: string,
  repository: string,
  parts: { tag?: string; digest?: string } = {},
): RegistryReference {
  return { kind: 'registry', registry, repository, ...parts };
}

const valid: Array<[string, Reference]> = [
  ['alpine', registry('docker.io', 'library/alpine')],
  ['alpine:3.20', registry('docker.io', 'library/alpine', { tag: '3.20' })],
  ['library/alpine', registry('docker.io', 'library/alpine')],
  ['docker.io/alpine', registry('docker.io', 'library/alpine')],
  ['docker.io/library/alpine', registry('docker.io', 'library/alpine')],
  ['index.docker.io/alpine', registry('docker.io', 'library/alpine')],
  ['registry-1.docker.io/library/alpine', registry('docker.io', 'library/alpine')],
  ['DOCKER.IO/alpine', registry('docker.io', 'library/alpine')],
  ['user/app', registry('docker.io', 'user/app')],
  ['user/team/app:v1', registry('docker.io', 'user/team/app', { tag: 'v1' })],
  ['ghcr.io/org/app', registry('ghcr.io', 'org/app')],
  ['GHCR.io/org/app', registry('ghcr.io', 'org/app')],
  ['ghcr.io/app', registry('ghcr.io', 'app')],
  ['localhost/app', registry('localhost', 'app')],
  ['LocalHost/app', registry('localhost', 'app')],
  ['localhost:5000/app', registry('localhost:5000', 'app')],
  ['127.0.0.1:5000/a/b/c', registry('127.0.0.1:5000', 'a/b/c')],
  ['registry:5000/app', registry('registry:5000', 'app')],
  ['my-registry.local:65535/app', registry('my-registry.local:65535', 'app')],
  ['example.com:00443/app', registry('example.com:443', 'app')],
  ['docker.io:5000/app', registry('docker.io:5000', 'app')],
  ['[::1]:5000/app', registry('[::1]:5000', 'app')],
  ['[::1]/app', registry('[::1]', 'app')],
  ['[0:0:0:0:0:0:0:1]:5000/app', registry('[::1]:5000', 'app')],
  ['[2001:DB8::A]:443/app', registry('[2001:db8::a]:443', 'app')],
  ['[::ffff:127.0.0.1]:80/app', registry('[::ffff:7f00:1]:80', 'app')],
  ['a.b-c.d/g', registry('a.b-c.d', 'g')],
  ['a-b_c__d---e.f', registry('docker.io', 'library/a-b_c__d---e.f')],
  [`alpine@${SHA256}`, registry('docker.io', 'library/alpine', { digest: SHA256 })],
  [`ghcr.io/o/a@${SHA512}`, registry('ghcr.io', 'o/a', { digest: SHA512 })],
  [`ghcr.io/o/a@${BLAKE3}`, registry('ghcr.io', 'o/a', { digest: BLAKE3 })],
  [`localhost:5000/a:t@${SHA256}`, registry('localhost:5000', 'a', { tag: 't', digest: SHA256 })],
  ['alpine:_.-Z9', registry('docker.io', 'library/alpine', { tag: '_.-Z9' })],
  [`alpine:${'T'.repeat(128)}`, registry('docker.io', 'library/alpine', { tag: 'T'.repeat(128) })],
  ['localhost:5000', registry('docker.io', 'library/localhost', { tag: '5000' })],
  ['docker://alpine:3.20', registry('docker.io', 'library/alpine', { tag: '3.20' })],
  ['docker://ghcr.io/o/a', registry('ghcr.io', 'o/a')],
  ['docker://oci:1', registry('docker.io', 'library/oci', { tag: '1' })],
  ['docker://dir:1', registry('docker.io', 'library/dir', { tag: '1' })],
  ['oci-like/app', registry('docker.io', 'oci-like/app')],
  [`r.io/${'a'.repeat(250)}`, registry('r.io', 'a'.repeat(250))],
  ['oci:dir', { kind: 'layout', path: 'dir' }],
];

for (const [input, expected] of valid) {
  test(`parses ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parseReference(input), expected);
  });
}

const invalid: Array<[string, string]> = [
  ['', 'empty reference'],
  ['   ', 'only whitespace'],
  [' alpine', 'leading or trailing whitespace'],
  ['alpine\n', 'leading or trailing whitespace'],
  ['alp ine', 'contains whitespace'],
  ['docker://', 'empty reference'],
  ['docker://a b', 'contains whitespace'],
  ['Alpine', 'repository name "Alpine" must be lowercase'],
  ['MyOrg/app', 'repository name "MyOrg/app" must be lowercase'],
  ['ghcr.io/Org/app', 'repository name "Org/app" must be lowercase'],
  ['ghcr.io/org/a$b', 'invalid path component "a$b" in repository "org/a$b"'],
  ['ghcr.io/org/-app', 'invalid path component "-app"'],
  ['ghcr.io/org/app.', 'invalid path component "app."'],
  ['ghcr.io/a..b', 'invalid path component "a..b"'],
  ['ghcr.io/a___b', 'invalid path component "a___b"'],
  ['ghcr.io/a/é', 'invalid path component "é"'],
  ['a//b', 'empty path component in repository "a//b"'],
  ['ghcr.io/app/', 'empty path component in repository "app/"'],
  ['ghcr.io/', 'missing repository name'],
  [':tag', 'missing repository name'],
  [`@${SHA256}`, 'missing repository name'],
  ['alpine:', 'empty tag after ":"'],
  ['alpine:.x', 'invalid tag ".x"'],
  ['alpine:-x', 'invalid tag "-x"'],
  ['alpine:a+b', 'invalid tag "a+b"'],
  [`alpine:${'T'.repeat(129)}`, 'tag is 129 characters long, the limit is 128'],
  ['alpine@', 'empty digest after "@"'],
  ['alpine@sha256:abc', 'invalid digest "sha256:abc": sha256 needs 64 lower-case hex characters'],
  [`alpine@md5:${'a'.repeat(32)}`, 'unsupported algorithm'],
  [`alpine@${SHA256.toUpperCase()}`, 'invalid digest'],
  [`alpine@${SHA256}@${SHA256}`, 'invalid digest'],
  ['ghcr.io:0/app', 'port 0 of registry host "ghcr.io:0" is out of range 1-65535'],
  ['ghcr.io:65536/app', 'out of range 1-65535'],
  ['ghcr.io:99999999999999999999/app', 'out of range 1-65535'],
  ['ghcr.io:/app', 'registry host "ghcr.io:" has an empty port'],
  ['ghcr.io:http/app', 'port "http" of registry host "ghcr.io:http" is not a number'],
  ['ghcr.io:-1/app', 'is not a number'],
  ['-bad.io/app', 'invalid registry host "-bad.io"'],
  ['bad-.io/app', 'invalid registry host "bad-.io"'],
  ['a..io/app', 'invalid registry host "a..io"'],
  ['.io/app', 'invalid registry host ".io"'],
  ['b_ad.io/app', 'invalid registry host "b_ad.io"'],
  [':5000/app', 'invalid registry host ":5000"'],
  ['[::1/app', 'unclosed "[" in registry host "[::1"'],
  ['[fe80::1%eth0]/app', '"fe80::1%eth0" in registry host "[fe80::1%eth0]" is not an IPv6 address'],
  ['[1:2:3]/app', 'is not an IPv6 address'],
  ['[]/app', 'is not an IPv6 address'],
  ['[::1]x/app', 'unexpected "x" after the IPv6 address'],
  ['[::1]:0/app', 'out of range 1-65535'],
  ['[::1]', 'a registry host needs a repository after it'],
  ['[::1]:5000', 'a registry host needs a repository after it'],
  ['https://ghcr.io/o/a', 'a reference has no URL scheme'],
  ['docker://https://ghcr.io/o/a', 'a reference has no URL scheme'],
  ['ghcr.io/o@x/a', '"@" may only introduce the digest at the end'],
  ['a'.repeat(64), 'a 64-character hex string is an image ID'],
  [`r.io/${'a'.repeat(251)}`, 'name "r.io/..." is 256 characters long, the limit is 255'],
  ['a'.repeat(238), 'is 256 characters long, the limit is 255'],
  ['dir:/tmp/image', 'the "dir:" transport is not supported'],
  ['oci-archive:image.tar', 'the "oci-archive:" transport is not supported'],
  ['docker-daemon:alpine:latest', 'the "docker-daemon:" transport is not supported'],
  ['containers-storage:alpine', 'the "containers-storage:" transport is not supported'],
];

for (const [input, reason] of invalid) {
  test(`rejects ${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}...` : input)} with "${reason}"`, (t) => {
    const error = t.throws(() => parseReference(input), { instanceOf: InvalidReferenceError });
    t.is(error.code, 'REFERENCE_INVALID');
    t.true(error.message.includes(reason), error.message);
  });
}

test('a bad digest keeps the digest error as cause', (t) => {
  const error = t.throws(() => parseReference('alpine@sha256:abc'), {
    instanceOf: InvalidReferenceError,
  });
  t.true(error.cause instanceof InvalidDigestError);
});

test('a value that is not a string is rejected with InvalidReferenceError', (t) => {
  t.throws(() => parseReference(42 as unknown as string), {
    instanceOf: InvalidReferenceError,
    message: /not a string/,
  });
});

test('parseRegistryReference accepts registry references', (t) => {
  t.deepEqual(parseRegistryReference('ghcr.io/o/a:1'), registry('ghcr.io', 'o/a', { tag: '1' }));
});

test('parseRegistryReference rejects OCI layout references', (t) => {
  t.throws(() => parseRegistryReference('oci:dir:tag'), {
    instanceOf: InvalidReferenceError,
    message:
      'invalid reference "oci:dir:tag": expected a registry reference (host/repository[:tag]), got an OCI layout reference',
  });
});

const formatted: Array<[Reference, string]> = [
  [registry('docker.io', 'library/alpine', { tag: '3.20' }), 'docker.io/library/alpine:3.20'],
  [registry('docker.io', 'library/alpine'), 'docker.io/library/alpine'],
  [registry('[::1]:5000', 'a/b', { tag: 't', digest: SHA256 }), `[::1]:5000/a/b:t@${SHA256}`],
  [registry('ghcr.io', 'o/a', { digest: SHA256 }), `ghcr.io/o/a@${SHA256}`],
  [{ kind: 'layout', path: 'dir', tag: 'v1' }, 'oci:dir:v1'],
  [{ kind: 'layout', path: 'dir', digest: SHA256 }, `oci:dir@${SHA256}`],
];

for (const [ref, expected] of formatted) {
  test(`formats ${expected}`, (t) => {
    t.is(formatReference(ref), expected);
  });
}

test('formatting normalises what the user typed', (t) => {
  t.is(formatReference(parseReference('alpine')), 'docker.io/library/alpine');
  t.is(formatReference(parseReference('Index.Docker.IO/user/app:1')), 'docker.io/user/app:1');
  t.is(formatReference(parseReference('[0::1]:05000/a')), '[::1]:5000/a');
});

const familiar: Array<[string, string]> = [
  ['docker.io/library/alpine:3.20', 'alpine:3.20'],
  [`docker.io/library/alpine@${SHA256}`, `alpine@${SHA256}`],
  ['docker.io/user/app', 'user/app'],
  ['docker.io/library/a/b', 'library/a/b'],
  ['ghcr.io/o/a:1', 'ghcr.io/o/a:1'],
  ['localhost:5000/a', 'localhost:5000/a'],
  // Short forms that would parse to something else keep their longer form.
  ['docker.io/a.b/c', 'docker.io/a.b/c'],
  ['docker.io/localhost/c', 'docker.io/localhost/c'],
  ['docker.io/library/oci:1', 'library/oci:1'],
  ['docker.io/library/oci', 'oci'],
  [`docker.io/library/${'a'.repeat(64)}`, `library/${'a'.repeat(64)}`],
];

for (const [input, expected] of familiar) {
  test(`the familiar name of ${input} is ${expected}`, (t) => {
    t.is(familiarName(parseRegistryReference(input)), expected);
  });
}

test('withTag sets, replaces and removes the tag and keeps the digest', (t) => {
  const ref = parseRegistryReference(`ghcr.io/o/a@${SHA256}`);
  const tagged = withTag(ref, 'v1');
  t.deepEqual(tagged, registry('ghcr.io', 'o/a', { tag: 'v1', digest: SHA256 }));
  t.deepEqual(withTag(tagged, 'v2'), registry('ghcr.io', 'o/a', { tag: 'v2', digest: SHA256 }));
  t.deepEqual(withTag(tagged, undefined), ref);
  t.false('tag' in withTag(tagged, undefined));
  t.deepEqual(ref, registry('ghcr.io', 'o/a', { digest: SHA256 }), 'the input is not changed');
});

test('withDigest sets, replaces and removes the digest and keeps the tag', (t) => {
  const ref = parseRegistryReference('ghcr.io/o/a:v1');
  const pinned = withDigest(ref, SHA256);
  t.deepEqual(pinned, registry('ghcr.io', 'o/a', { tag: 'v1', digest: SHA256 }));
  t.deepEqual(
    withDigest(pinned, SHA512),
    registry('ghcr.io', 'o/a', { tag: 'v1', digest: SHA512 }),
  );
  t.deepEqual(withDigest(pinned, undefined), ref);
  t.false('digest' in withDigest(pinned, undefined));
});

test('withTag and withDigest work on layout references', (t) => {
  const ref = parseReference('oci:dir');
  t.deepEqual(withTag(ref, 'v1'), { kind: 'layout', path: 'dir', tag: 'v1' });
  t.deepEqual(withDigest(ref, SHA256), { kind: 'layout', path: 'dir', digest: SHA256 });
});

test('withTag rejects an invalid tag naming the resulting reference', (t) => {
  t.throws(() => withTag(parseRegistryReference('ghcr.io/o/a'), 'bad tag'), {
    instanceOf: InvalidReferenceError,
    message: /^invalid reference "ghcr.io\/o\/a:bad tag": invalid tag "bad tag"/,
  });
});

test('withDigest rejects an invalid digest with the digest error as cause', (t) => {
  const error = t.throws(() => withDigest(parseRegistryReference('ghcr.io/o/a'), 'sha256:xyz'), {
    instanceOf: InvalidReferenceError,
    message: /invalid digest "sha256:xyz"/,
  });
  t.true(error.cause instanceof InvalidDigestError);
});
