import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { replaceFile } from '../../src/util/replace-file.ts';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-replace-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('text, bytes and streams replace a file whole, with the mode asked', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'config.json');
  t.is(await replaceFile(file, 'text\n', { mode: 0o600 }), 5);
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.is(await replaceFile(file, Buffer.from('bytes')), 5);
  t.is(await readFile(file, 'utf8'), 'bytes');
  t.is(await replaceFile(file, Readable.from([Buffer.from('str'), Buffer.from('eam')])), 6);
  t.is(await readFile(file, 'utf8'), 'stream');
  t.deepEqual(await readdir(dir), ['config.json']);
});

test('a stream that fails leaves the old file and no temp file', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'out');
  await writeFile(file, 'old content');
  const failing = new Readable({
    read() {
      this.push(Buffer.from('new '));
      this.destroy(new Error('digest mismatch at the end'));
    },
  });
  await t.throwsAsync(replaceFile(file, failing), { message: 'digest mismatch at the end' });
  t.is(await readFile(file, 'utf8'), 'old content');
  t.deepEqual(await readdir(dir), ['out']);
});

test('a store names its own temp files', async (t) => {
  const dir = await tempDir(t);
  const names: string[] = [];
  await replaceFile(join(dir, 'index.json'), '{}', {
    tempIn: (where) => {
      const path = join(where, '.tmp-mine');
      names.push(path);
      return path;
    },
  });
  t.deepEqual(names, [join(dir, '.tmp-mine')]);
  t.deepEqual(await readdir(dir), ['index.json']);
});
