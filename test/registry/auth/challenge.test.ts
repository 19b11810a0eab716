import { deepStrictEqual } from 'node:assert/strict';
import test from 'ava';
import fc from 'fast-check';
import {
  type Challenge,
  parseChallenges,
  preferredChallenge,
} from '../../../src/registry/auth/challenge.ts';

const bearer = (params: Record<string, string>): Challenge => ({ scheme: 'bearer', params });
const basic = (params: Record<string, string>): Challenge => ({ scheme: 'basic', params });

/** Headers as registries send them (registry-quirks.md §3-4), and what they must parse to. */
const fixtures: Array<{ name: string; header: string | string[] | undefined; want: Challenge[] }> =
  [
    {
      name: 'Docker Hub, comma inside the quoted scope',
      header:
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push"',
      want: [
        bearer({
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/ubuntu:pull,push',
        }),
      ],
    },
    {
      name: 'GHCR',
      header: 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:u/i:pull"',
      want: [
        bearer({
          realm: 'https://ghcr.io/token',
          service: 'ghcr.io',
          scope: 'repository:u/i:pull',
        }),
      ],
    },
    {
      name: 'ECR answers Basic with realm and service',
      header:
        'Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com"',
      want: [
        basic({
          realm: 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/',
          service: 'ecr.amazonaws.com',
        }),
      ],
    },
    {
      name: 'Quay',
      header: 'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
      want: [bearer({ realm: 'https://quay.io/v2/auth', service: 'quay.io' })],
    },
    {
      name: 'Harbor after a token with too little scope',
      header: 'Basic realm="harbor"',
      want: [basic({ realm: 'harbor' })],
    },
    {
      name: 'ACR',
      header: 'Bearer realm="https://myreg.azurecr.io/oauth2/token",service="myreg.azurecr.io"',
      want: [
        bearer({ realm: 'https://myreg.azurecr.io/oauth2/token', service: 'myreg.azurecr.io' }),
      ],
    },
    {
      name: 'Artifactory, space inside the realm',
      header: 'Basic realm="Artifactory Realm"',
      want: [basic({ realm: 'Artifactory Realm' })],
    },
    {
      name: 'Codeberg, Bearer and Basic in one line',
      header:
        'Bearer realm="https://codeberg.org/v2/token",service="container_registry",scope="*",Basic realm="https://codeberg.org/v2/token",service="container_registry",scope="*"',
      want: [
        bearer({
          realm: 'https://codeberg.org/v2/token',
          service: 'container_registry',
          scope: '*',
        }),
        basic({
          realm: 'https://codeberg.org/v2/token',
          service: 'container_registry',
          scope: '*',
        }),
      ],
    },
    {
      name: 'Basic first, then Bearer',
      header:
        'Basic realm="https://r.example/",service="x", Bearer realm="https://r.example/token",service="y"',
      want: [
        basic({ realm: 'https://r.example/', service: 'x' }),
        bearer({ realm: 'https://r.example/token', service: 'y' }),
      ],
    },
    {
      name: 'repeated header lines as an array',
      header: ['Basic realm="a"', 'Bearer realm="https://r.example/token",service="s"'],
      want: [basic({ realm: 'a' }), bearer({ realm: 'https://r.example/token', service: 's' })],
    },
    {
      name: 'spaces before commas and around =',
      header: 'Bearer realm = "https://a/token" , service= "s" ,scope ="x"  ',
      want: [bearer({ realm: 'https://a/token', service: 's', scope: 'x' })],
    },
    {
      name: 'RFC quoted-pairs',
      header: 'Bearer realm="a\\"b",service="c\\\\d",scope="\\x,y"',
      want: [bearer({ realm: 'a"b', service: 'c\\d', scope: 'x,y' })],
    },
    {
      name: 'scheme-only challenge',
      header: 'Negotiate',
      want: [{ scheme: 'negotiate', params: {} }],
    },
    {
      name: 'scheme-only and token68 challenges next to Basic',
      header: 'Negotiate, NTLM TlRMTVNTUAABAAAA==, Basic realm="x"',
      want: [
        { scheme: 'negotiate', params: {} },
        { scheme: 'ntlm', params: {} },
        basic({ realm: 'x' }),
      ],
    },
    {
      name: 'unquoted values and a lower-case scheme',
      header: 'bearer realm=https://a/token,service=s',
      want: [bearer({ realm: 'https://a/token', service: 's' })],
    },
    {
      name: 'upper-case scheme and param names are lower-cased',
      header: 'BEARER Realm="https://a/token", SERVICE="S"',
      want: [bearer({ realm: 'https://a/token', service: 'S' })],
    },
    {
      name: 'insufficient_scope with space-separated scopes',
      header:
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull repository:c/d:pull,push",error="insufficient_scope"',
      want: [
        bearer({
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:a/b:pull repository:c/d:pull,push',
          error: 'insufficient_scope',
        }),
      ],
    },
    {
      name: 'realm with a query string',
      header: 'Bearer realm="https://a.example/token?x=1&y=2",service="a.example"',
      want: [bearer({ realm: 'https://a.example/token?x=1&y=2', service: 'a.example' })],
    },
    {
      name: 'a scheme with characters outside \\w',
      header: 'AWS4-HMAC-SHA256 realm="r"',
      want: [{ scheme: 'aws4-hmac-sha256', params: { realm: 'r' } }],
    },
    { name: 'no header', header: undefined, want: [] },
    { name: 'empty array', header: [], want: [] },
    { name: 'empty and blank lines', header: ['', '  ', ',,, ,'], want: [] },
    {
      name: 'a broken challenge is dropped, its neighbours kept',
      header: 'Bearer realm="x" junk, Basic realm="ok"',
      want: [basic({ realm: 'ok' })],
    },
    {
      name: 'garbage before a challenge is skipped',
      header: '???, "quoted", =, Basic realm="ok"',
      want: [basic({ realm: 'ok' })],
    },
    {
      name: 'params after garbage do not attach to the challenge before it',
      header: 'Basic realm="a", }{, service="stray"',
      want: [basic({ realm: 'a' })],
    },
    {
      name: 'an unterminated quote loses its own line only',
      header: ['Bearer realm="x", service="unterminated', 'Basic realm="ok"'],
      want: [basic({ realm: 'ok' })],
    },
    { name: 'params without a scheme', header: 'realm="x",service="y"', want: [] },
  ];

for (const { name, header, want } of fixtures) {
  test(`parses ${name}`, (t) => {
    t.deepEqual(parseChallenges(header), want);
  });
}

test('a scheme-only challenge can be followed by a parameterised one', (t) => {
  t.deepEqual(parseChallenges('Negotiate, Bearer realm="r"'), [
    { scheme: 'negotiate', params: {} },
    bearer({ realm: 'r' }),
  ]);
});

test('tolerates non-string entries in a header array', (t) => {
  const lines = ['Basic realm="a"', 42, null] as unknown as string[];
  t.deepEqual(parseChallenges(lines), [basic({ realm: 'a' })]);
});

test('preferredChallenge picks Bearer over an earlier Basic', (t) => {
  const challenges = parseChallenges('Basic realm="b", Bearer realm="t",service="s"');
  t.deepEqual(preferredChallenge(challenges), bearer({ realm: 't', service: 's' }));
});

test('preferredChallenge falls back to Basic, then to nothing', (t) => {
  t.deepEqual(
    preferredChallenge(parseChallenges('Negotiate, Basic realm="b"')),
    basic({ realm: 'b' }),
  );
  t.is(preferredChallenge(parseChallenges('Negotiate')), undefined);
  t.is(preferredChallenge([]), undefined);
});

test('params named like Object.prototype members are kept as plain params', (t) => {
  const [challenge] = parseChallenges('Bearer __proto__="x", constructor=y, realm="r"');
  t.deepEqual(Object.entries(challenge?.params ?? {}), [
    ['__proto__', 'x'],
    ['constructor', 'y'],
    ['realm', 'r'],
  ]);
  t.is(Object.getPrototypeOf(challenge?.params), Object.prototype);
});

test('parsed challenges are frozen', (t) => {
  const [challenge] = parseChallenges('Bearer realm="r"');
  t.true(Object.isFrozen(challenge));
  t.true(Object.isFrozen(challenge?.params));
});

const headerChars = fc.constantFrom(
  ...'Bearer realm="\\,= \t/:;?&*'.split(''),
  'Basic ',
  'x=',
  '"',
);
const headerLike = fc.string({ unit: headerChars, maxLength: 60 });

test('never throws, whatever the header', (t) => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        headerLike,
        fc.array(fc.oneof(fc.string(), headerLike)),
        fc.constant(undefined),
      ),
      (header) => {
        for (const challenge of parseChallenges(header)) {
          if (typeof challenge.scheme !== 'string') return false;
          if (!Object.values(challenge.params).every((v) => typeof v === 'string')) return false;
        }
        return true;
      },
    ),
    { numRuns: 2000 },
  );
  t.pass();
});

const tchar = fc.constantFrom(
  ..."!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-".split(''),
);
const token = fc.string({ unit: tchar, minLength: 1, maxLength: 10 });
const ows = fc.constantFrom('', ' ', '\t', '  ');
const arbitraryChallenge = fc.record({
  scheme: token,
  params: fc.uniqueArray(fc.tuple(token, fc.string({ maxLength: 20 })), {
    selector: ([name]) => name.toLowerCase(),
    maxLength: 4,
  }),
});

test('every challenge list serialised per RFC 9110 parses back', (t) => {
  fc.assert(
    fc.property(fc.array(arbitraryChallenge, { maxLength: 4 }), ows, ows, (challenges, a, b) => {
      const quote = (value: string) => `"${value.replace(/[\\"]/g, '\\$&')}"`;
      const header = challenges
        .map(
          ({ scheme, params }) =>
            `${scheme}${params.length ? ' ' : ''}${params
              .map(([name, value]) => `${name}${a}=${b}${quote(value)}`)
              .join(`${b},${a}`)}`,
        )
        .join(`${a},${b}`);
      const want = challenges.map(({ scheme, params }) => ({
        scheme: scheme.toLowerCase(),
        params: Object.fromEntries(params.map(([name, value]) => [name.toLowerCase(), value])),
      }));
      deepStrictEqual(parseChallenges(header), want, header);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});
