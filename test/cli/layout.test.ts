import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { digestBytes } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { fixturePath } from '../helpers/fixtures.ts';
import { killHard, startSlowWriter } from '../layout/support/child.ts';
import { ociferry, tempDir } from './support/cli.ts';

test('copy into an oci: layout says written, not uploaded', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const result = await ociferry([
    'copy',
    '--progress',
    'plain',
    `oci:${fixturePath('oci-image')}:v1`,
    `oci:${dir}:v1`,
  ]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /^written sha256:[0-9a-f]{12}… /m);
  t.regex(result.stderr, /^wrote manifest sha256:[0-9a-f]{12}… as v1 /m);
  t.regex(result.stderr, /^copied .*: 4 written \([\d.]+ k?B\), 0 mounted, 0 skipped, /m);
  t.notRegex(result.stderr, /upload/);
});

test('gc deletes unreferenced blobs and a killed writer’s temp file, and keeps the image', async (t) => {
  const dir = path.join(await tempDir(t), 'layout');
  const copied = await ociferry(['copy', `oci:${fixturePath('oci-image')}:v1`, `oci:${dir}:v1`]);
  t.is(copied.code, 0, copied.stderr);
  const store = await LayoutStore.open(dir, { create: false });
  const orphan = Buffer.from('nothing refers to this');
  const orphanDigest = digestBytes(orphan);
  await store.writeBytes({ digest: orphanDigest, size: orphan.length }, orphan);
  const { child } = await startSlowWriter(dir);
  await killHard(child);
  const blobs = path.join(dir, 'blobs', 'sha256');
  const temps = async () => (await readdir(blobs)).filter((name) => name.startsWith('.tmp-'));
  const [temp = ''] = await temps();
  const tempSize = (await stat(path.join(blobs, temp))).size;

  const result = await ociferry(['gc', '--json', `oci:${dir}`]);
  t.is(result.code, 0, result.stderr);
  t.deepEqual(JSON.parse(result.stdout), {
    deleted: [orphanDigest],
    bytesFreed: orphan.length + tempSize,
    tempFilesRemoved: 1,
  });
  t.deepEqual(await temps(), []);
  t.false(await store.has(orphanDigest));
  const inspect = await ociferry(['inspect', '--json', `oci:${dir}:v1`]);
  t.is(inspect.code, 0, inspect.stderr);
  const copyBack = await ociferry([
    'copy',
    `oci:${dir}:v1`,
    `oci:${path.join(dir, '..', 'again')}`,
  ]);
  t.is(copyBack.code, 0, 'every blob of the image is still there');

  const nothing = await ociferry(['gc', `oci:${dir}`]);
  t.is(nothing.code, 0, nothing.stderr);
  t.is(nothing.stdout, '');
  t.is(nothing.stderr, 'deleted 0 blobs and 0 temp files, 0 B freed\n');
});

test('gc takes only a whole oci: layout', async (t) => {
  const dir = await tempDir(t);
  for (const ref of ['127.0.0.1:5000/app', `oci:${dir}:v1`]) {
    const result = await ociferry(['gc', ref]);
    t.is(result.code, 2, ref);
    t.regex(result.stderr, /gc (works on|takes the whole)/);
  }
  const notLayout = await ociferry(['gc', `oci:${dir}`]);
  t.is(notLayout.code, 1);
  t.regex(notLayout.stderr, /oci-layout: missing/);
});
