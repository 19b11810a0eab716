import test from 'ava';
import {
  bestPlatformMatch,
  formatPlatform,
  InvalidPlatformError,
  normalizePlatform,
  type Platform,
  parsePlatform,
  platformRank,
} from '../../src/oci/index.ts';

test('normalises architecture aliases and default variants like containerd', (t) => {
  t.is(formatPlatform(parsePlatform('linux/x86_64')), 'linux/amd64');
  t.is(formatPlatform(parsePlatform('linux/aarch64/v8')), 'linux/arm64');
  t.is(formatPlatform(parsePlatform('linux/arm64/v8')), 'linux/arm64');
  t.is(formatPlatform(parsePlatform('linux/arm')), 'linux/arm/v7');
  t.is(formatPlatform(parsePlatform('linux/armhf')), 'linux/arm/v7');
  t.is(formatPlatform(parsePlatform('Linux/AMD64/v1')), 'linux/amd64');
  t.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm', variant: '6' }), {
    os: 'linux',
    architecture: 'arm',
    variant: 'v6',
  });
});

test('rejects malformed platform strings', (t) => {
  for (const input of ['linux', 'linux/', 'a/b/c/d', 'linux/amd 64', '']) {
    t.throws(() => parsePlatform(input), { instanceOf: InvalidPlatformError }, input);
  }
});

test('arm/v7 runs v6 and v5 but not v8; arm64 runs only arm64', (t) => {
  const armV7 = parsePlatform('linux/arm/v7');
  t.is(platformRank(armV7, parsePlatform('linux/arm/v7')), 100);
  t.truthy(platformRank(armV7, parsePlatform('linux/arm/v6')));
  t.truthy(platformRank(armV7, parsePlatform('linux/arm/v5')));
  t.is(platformRank(armV7, parsePlatform('linux/arm/v8')), undefined);
  t.is(platformRank(parsePlatform('linux/arm64'), parsePlatform('linux/arm/v7')), undefined);
  t.is(
    platformRank(parsePlatform('linux/arm64'), {
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
    }),
    100,
  );
  t.is(platformRank(parsePlatform('windows/amd64'), parsePlatform('linux/amd64')), undefined);
});

test('best match prefers the exact variant, then the newest compatible one', (t) => {
  const candidates: Platform[] = [
    parsePlatform('linux/arm/v5'),
    parsePlatform('linux/arm/v6'),
    parsePlatform('linux/arm64'),
    parsePlatform('linux/amd64'),
    parsePlatform('linux/amd64/v3'),
  ];
  const pick = (wanted: string) => {
    const match = bestPlatformMatch(parsePlatform(wanted), candidates, (c) => c);
    return match && formatPlatform(match);
  };
  t.is(pick('linux/arm/v7'), 'linux/arm/v6');
  t.is(pick('linux/amd64/v2'), 'linux/amd64');
  t.is(pick('linux/amd64/v4'), 'linux/amd64/v3');
  t.is(pick('linux/arm64'), 'linux/arm64');
  t.is(pick('linux/s390x'), undefined);
});
