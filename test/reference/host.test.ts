import test from 'ava';
import {
  apiHost,
  InvalidReferenceError,
  isLoopbackRegistry,
  normalizeRegistry,
} from '../../src/reference/index.ts';

const normalised: Array<[string, string]> = [
  ['ghcr.io', 'ghcr.io'],
  ['GHCR.IO', 'ghcr.io'],
  ['docker.io', 'docker.io'],
  ['index.docker.io', 'docker.io'],
  ['Registry-1.Docker.IO', 'docker.io'],
  ['index.docker.io:443', 'index.docker.io:443'],
  ['localhost:05000', 'localhost:5000'],
  ['registry', 'registry'],
  ['10.0.0.1:1', '10.0.0.1:1'],
  ['[::1]', '[::1]'],
  ['[0000:0:0::1]:65535', '[::1]:65535'],
  ['[FE80::A:B]:5000', '[fe80::a:b]:5000'],
];

for (const [input, expected] of normalised) {
  test(`normalises registry ${input} to ${expected}`, (t) => {
    t.is(normalizeRegistry(input), expected);
  });
}

const invalid: Array<[string, string]> = [
  ['', 'invalid registry host ""'],
  ['ghcr.io/x', 'invalid registry host "ghcr.io/x"'],
  ['user@ghcr.io', 'invalid registry host'],
  ['ghcr.io:0', 'out of range 1-65535'],
  ['ghcr.io:65536', 'out of range 1-65535'],
  ['ghcr.io:', 'has an empty port'],
  ['ghcr.io:1:2', 'is not a number'],
  ['[::1', 'unclosed "["'],
  ['[::g]', 'is not an IPv6 address'],
  ['[127.0.0.1]', 'is not an IPv6 address'],
];

for (const [input, reason] of invalid) {
  test(`normalizeRegistry rejects ${JSON.stringify(input)} with "${reason}"`, (t) => {
    const error = t.throws(() => normalizeRegistry(input), { instanceOf: InvalidReferenceError });
    t.true(error.message.includes(reason), error.message);
  });
}

test('apiHost sends Docker Hub to registry-1.docker.io and leaves other hosts alone', (t) => {
  t.is(apiHost('docker.io'), 'registry-1.docker.io');
  t.is(apiHost('ghcr.io'), 'ghcr.io');
  t.is(apiHost('localhost:5000'), 'localhost:5000');
  t.is(apiHost('docker.io:5000'), 'docker.io:5000');
});

const loopback: Array<[string, boolean]> = [
  ['localhost', true],
  ['localhost:5000', true],
  ['LOCALHOST:1', true],
  ['127.0.0.1', true],
  ['127.0.0.1:5000', true],
  ['127.255.1.2:80', true],
  ['[::1]', true],
  ['[::1]:5000', true],
  ['[0:0:0:0:0:0:0:1]:5000', true],
  ['[::ffff:127.0.0.1]:5000', true],
  ['ghcr.io', false],
  ['docker.io', false],
  ['localhost.example.com', false],
  ['my-localhost:5000', false],
  ['127.0.0.1.example.com', false],
  ['128.0.0.1', false],
  ['10.0.0.1:5000', false],
  ['0.0.0.0:5000', false],
  ['[::2]:5000', false],
  ['[::ffff:10.0.0.1]', false],
  ['evil.com@127.0.0.1', false],
  ['127.0.0.1/evil', false],
  ['', false],
];

for (const [registry, expected] of loopback) {
  test(`${JSON.stringify(registry)} ${expected ? 'is' : 'is not'} a loopback registry`, (t) => {
    t.is(isLoopbackRegistry(registry), expected);
  });
}
