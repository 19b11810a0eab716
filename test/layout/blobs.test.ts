import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import test from 'ava';
import { digestBytes, markVerified } from '../../src/digest/index.ts';
import { LayoutStore } from '../../src/layout/index.ts';
import { killHard, startSlowWriter } from './support/child.ts';
import { tempDir, tree } from './support/tmp.ts';

const content = Buffer.from('the quick brown fox jumps over the lazy dog\n');
const desc = { digest: digestBytes(content), size: content.length };

function blobFile(dir: string, digest: string): string {
  const [algorithm = '', hex = ''] = digest.split(':');
  return join(dir, 'blobs', algorithm, hex);
}

/** A stream that emits `chunks` one at a time, `delayMs` apart, then optionally fails. */
function slowStream(chunks: readonly Buffer[], delayMs: number, failWith?: Error): Readable {
  let index = 0;
  return new Readable({
    read() {
      setTimeout(() => {
        const chunk = chunks[index++];
        if (chunk) this.push(chunk);
        else if (failWith) this.destroy(failWith);
        else this.push(null);
      }, delayMs);
    },
  });
}

async function sha256Entries(dir: string): Promise<string[]> {
  return readdir(join(dir, 'blobs', 'sha256'));
}

test('a written blob reads back whole, by range and as bytes', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  t.true(await store.writeBytes(desc, content));
  t.true(await store.has(desc.digest));
  t.deepEqual(await store.info(desc.digest), desc);
  t.deepEqual(await store.readBytes(desc.digest), content);
  t.is(await text(store.readBlob(desc.digest)), content.toString());
  t.is(await text(store.readBlob(desc.digest, { start: 4, end: 8 })), 'quick');
  t.deepEqual(await readFile(blobFile(store.dir, desc.digest)), content);
});

test('writing a present blob returns false, neither opening nor consuming the source', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  await store.writeBytes(desc, content);
  let opened = false;
  const factory = () => {
    opened = true;
    return Readable.from([content]);
  };
  t.false(await store.writeBlob(desc, factory));
  t.false(opened);
  const given = Readable.from([content]);
  t.false(await store.writeBlob(desc, given));
  t.false(given.destroyed);
  t.is(given.readableFlowing, null);
  t.is(await text(given), content.toString());
});

test('progress reports the running byte count', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const chunks = [content.subarray(0, 10), content.subarray(10)];
  const seen: number[] = [];
  await store.writeBlob(desc, slowStream(chunks, 1), { onProgress: (n) => seen.push(n) });
  t.deepEqual(seen, [10, content.length]);
});

test('a digest mismatch leaves neither the final blob nor a temp file', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const wrong = Buffer.from('not the fox');
  const error = await t.throwsAsync(store.writeBytes({ digest: desc.digest }, wrong));
  t.is((error as { code?: string }).code, 'DIGEST_MISMATCH');
  t.false(await store.has(desc.digest));
  t.deepEqual(await sha256Entries(store.dir), []);
});

test('a size mismatch leaves nothing behind', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const error = await t.throwsAsync(store.writeBytes({ ...desc, size: desc.size - 1 }, content));
  t.is((error as { code?: string }).code, 'SIZE_MISMATCH');
  t.deepEqual(await sha256Entries(store.dir), []);
});

test('aborting mid-write rejects, destroys the source and removes the temp file', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const chunks = Array.from({ length: 100 }, (_, i) => content.subarray(i % 10, (i % 10) + 1));
  const source = slowStream(chunks, 10);
  const controller = new AbortController();
  const write = store.writeBlob(desc, source, {
    signal: controller.signal,
    onProgress: (bytes) => {
      if (bytes === 3) controller.abort();
    },
  });
  const error = await t.throwsAsync(write);
  t.is(error?.name, 'AbortError');
  t.true(source.destroyed);
  t.false(await store.has(desc.digest));
  t.deepEqual(await sha256Entries(store.dir), []);
});

test('a source failing mid-stream rejects with its error and removes the temp file', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const boom = new Error('connection reset');
  await t.throwsAsync(store.writeBlob(desc, slowStream([content.subarray(0, 5)], 1, boom)), {
    is: boom,
  });
  t.deepEqual(await sha256Entries(store.dir), []);
});

test('two writers of one digest at once: one commits, the other reports it present', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  const half = content.length >> 1;
  const results = await Promise.all(
    [0, 1].map(() =>
      store.writeBlob(desc, slowStream([content.subarray(0, half), content.subarray(half)], 5)),
    ),
  );
  t.deepEqual(results.sort(), [false, true]);
  t.deepEqual(await sha256Entries(store.dir), [desc.digest.slice('sha256:'.length)]);
  t.deepEqual(await store.readBytes(desc.digest), content);
});

test('a writer killed with SIGKILL mid-write leaves no blob under its final name', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const { child, digest } = await startSlowWriter(dir);
  await killHard(child);
  t.false(await store.has(digest));
  const leftovers = await sha256Entries(dir);
  t.is(leftovers.length, 1);
  t.true(leftovers[0]?.startsWith('.tmp-'));
  t.false(await store.has(digest));
  const swept = await store.gc();
  t.is(swept.tempFilesRemoved, 1);
  t.deepEqual(swept.deleted, []);
  t.deepEqual(await sha256Entries(dir), []);
});

test('hostile or malformed digests are rejected before touching the disk', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const before = await tree(dir);
  const hex = desc.digest.slice('sha256:'.length);
  const hostile = [
    'sha256:../../x',
    `sha256:${hex.toUpperCase()}`,
    `sha256:${hex.slice(1)}`,
    `sha256:${hex}0`,
    `sha256:${hex.slice(0, 60)}/../`,
    `sha256/../../${hex}`,
    `md5:${hex.slice(0, 32)}`,
    '../../etc/passwd',
    '',
  ];
  for (const digest of hostile) {
    const code = { code: 'DIGEST_INVALID' };
    let opened = false;
    const factory = () => {
      opened = true;
      return Readable.from([content]);
    };
    await t.throwsAsync(store.has(digest), code, digest);
    await t.throwsAsync(store.info(digest), code, digest);
    await t.throwsAsync(store.writeBlob({ digest }, factory), code, digest);
    await t.throwsAsync(store.writeBytes({ digest }, content), code, digest);
    await t.throwsAsync(store.readBytes(digest), code, digest);
    t.throws(() => store.readBlob(digest), code, digest);
    t.false(opened);
  }
  t.deepEqual(await tree(dir), before);
});

test('reading a missing blob fails with BLOB_UNKNOWN', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  await t.throwsAsync(store.readBytes(desc.digest), { code: 'BLOB_UNKNOWN' });
  await t.throwsAsync(text(store.readBlob(desc.digest)), { code: 'BLOB_UNKNOWN' });
  t.is(await store.info(desc.digest), undefined);
});

test('readBytes refuses a blob over its limit before reading it', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  await store.writeBytes(desc, content);
  await t.throwsAsync(store.readBytes(desc.digest, { limit: desc.size - 1 }), {
    code: 'SIZE_EXCEEDED',
  });
  t.deepEqual(await store.readBytes(desc.digest, { limit: desc.size }), content);
});

test('readBytes detects a blob corrupted on disk', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  await store.writeBytes(desc, content);
  await writeFile(blobFile(store.dir, desc.digest), 'tampered');
  await t.throwsAsync(store.readBytes(desc.digest), { code: 'DIGEST_MISMATCH' });
});

test('bytes of a stream that does not verify itself are hashed before they are committed', async (t) => {
  const dir = await tempDir(t);
  const store = await LayoutStore.open(dir);
  const wrong = Buffer.from(content.toString().toUpperCase());
  await t.throwsAsync(
    store.writeBlob(desc, () => Readable.from([wrong])),
    {
      code: 'DIGEST_MISMATCH',
    },
  );
  t.false(await store.has(desc.digest));
  t.deepEqual(await sha256Entries(dir), []);
});

test('a stream that verifies the digest itself is not hashed a second time', async (t) => {
  const store = await LayoutStore.open(await tempDir(t));
  // A stream that claims to verify: the store checks the size and trusts the claim.
  const claimed = markVerified(
    Readable.from([Buffer.from(content.toString().toUpperCase())]),
    desc.digest,
  );
  t.true(await store.writeBlob(desc, claimed));
  // The same claim for another digest counts for nothing: the bytes are hashed.
  const wrong = Buffer.from(content.toString().toUpperCase());
  const other = markVerified(Readable.from([wrong]), digestBytes('other'));
  const second = await LayoutStore.open(await tempDir(t));
  await t.throwsAsync(second.writeBlob(desc, other), { code: 'DIGEST_MISMATCH' });
});
