import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import test from 'ava';
import { RegistryTarget } from '../../src/copy/index.ts';
import { digestBytes } from '../../src/digest/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { fixturePath, pushFixture, readFixtureBlob } from '../helpers/fixtures.ts';
import { sharedRegistry } from '../helpers/registry.ts';
import { ociferry, tempDir } from './support/cli.ts';

/** The registry of the tests that count none of its requests. */
const shared = sharedRegistry(test);

test('blob get streams a blob to stdout and, with -o, to a file', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'oci-image', 'app/single');
  const layer = pushed.blobs[1] ?? '';
  const expected = await readFixtureBlob('oci-image', layer);

  const piped = await ociferry(['blob', 'get', `${registry.host}/app/single@${layer}`]);
  t.is(piped.code, 0, piped.stderr);
  t.deepEqual(piped.stdoutBytes, expected);

  const file = path.join(await tempDir(t), 'layer.tar.gz');
  const saved = await ociferry(['blob', 'get', `${registry.host}/app/single@${layer}`, '-o', file]);
  t.is(saved.code, 0, saved.stderr);
  t.deepEqual(await readFile(file), expected);
  t.regex(saved.stderr, new RegExp(`^wrote ${layer} to .*layer\\.tar\\.gz \\(`, 'm'));
});

test('blob get reads an oci: layout', async (t) => {
  const layer = (await readdir(path.join(fixturePath('layers-40'), 'blobs', 'sha256')))[0];
  const digest = `sha256:${layer}`;
  const result = await ociferry(['blob', 'get', `oci:${fixturePath('layers-40')}@${digest}`]);
  t.is(result.code, 0, result.stderr);
  t.deepEqual(result.stdoutBytes, await readFixtureBlob('layers-40', digest));
});

test('blob get -o leaves nothing behind when the content does not match its digest', async (t) => {
  const registry = await shared();
  const pushed = await pushFixture(registry, 'oci-image', 'app/single');
  const layer = pushed.blobs[1] ?? '';
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\/sha256:/, action: { flipByteAt: 100 } },
  ]);
  const dir = await tempDir(t);
  const file = path.join(dir, 'layer.tar.gz');
  await writeFile(file, 'old content');

  const result = await ociferry(['blob', 'get', `${proxy.host}/app/single@${layer}`, '-o', file]);
  t.is(result.code, 1);
  t.regex(
    result.stderr,
    new RegExp(
      `^error: blob get ${proxy.host}/app/single@${layer}: .*expected ${layer}; .*layer\\.tar\\.gz was not written$`,
      'm',
    ),
  );
  t.regex(result.stderr, /^hint: the content served does not match its digest/m);
  t.is(await readFile(file, 'utf8'), 'old content', 'the old file is untouched');
  t.deepEqual(await readdir(dir), ['layer.tar.gz'], 'no temp file is left');
});

test('blob get to stdout holds back the end of a blob that does not match its digest', async (t) => {
  const registry = await shared();
  // Big enough to arrive in many chunks, so that some of it does reach stdout.
  const blob = randomBytes(1024 * 1024);
  const digest = digestBytes(blob);
  const client = new RegistryClient();
  t.teardown(() => client.close());
  await new RegistryTarget(client.repository(registry.host, 'app/big')).writeBlob(
    { mediaType: 'application/octet-stream', digest, size: blob.length },
    async () => Readable.from([blob]),
  );
  const proxy = await startFaultProxy(t, registry.url, [
    { method: 'GET', path: /\/blobs\/sha256:/, action: { flipByteAt: 10 } },
  ]);

  const result = await ociferry(['blob', 'get', `${proxy.host}/app/big@${digest}`]);
  t.is(result.code, 1);
  const written = result.stdoutBytes.length;
  t.true(written < blob.length, 'the blob did not reach stdout whole');
  // Buffer.equals: ava's deepEqual walks a buffer as an object, half a second of CPU per MiB.
  t.true(
    result.stdoutBytes.subarray(11).equals(blob.subarray(11, written)),
    'what went out is its start',
  );
  t.regex(
    result.stderr,
    new RegExp(
      `^error: blob get .*expected ${digest}; stdout got only its first ${written} bytes: discard them$`,
      'm',
    ),
  );
  t.regex(result.stderr, /^hint: the content served does not match its digest/m);
});

test('blob get without a digest is a usage error', async (t) => {
  const result = await ociferry(['blob', 'get', '127.0.0.1:5000/app/single:v1']);
  t.is(result.code, 2);
  t.regex(result.stderr, /^error: 127\.0\.0\.1:5000\/app\/single:v1: expected REF@DIGEST$/m);
});
