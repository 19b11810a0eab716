import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { ExtractError, type ExtractErrorCode } from '../../src/extract/extract-error.ts';
import { readTar, type TarHeader } from '../../src/extract/tar.ts';
import {
  header,
  paxData,
  setChecksum,
  type TarSpec,
  tar,
  tarEntry,
} from '../helpers/tar-writer.ts';

interface Read extends TarHeader {
  data: string;
}

/** Feed `bytes` in chunks of the given sizes (cycled; whole when empty). */
async function* chunked(bytes: Buffer, sizes: readonly number[] = []): AsyncGenerator<Buffer> {
  if (sizes.length === 0) {
    yield bytes;
    return;
  }
  for (let pos = 0, i = 0; pos < bytes.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    yield bytes.subarray(pos, pos + size);
    pos += size;
  }
}

async function readAll(bytes: Buffer, sizes?: readonly number[]): Promise<Read[]> {
  const out: Read[] = [];
  for await (const entry of readTar(chunked(bytes, sizes))) {
    const parts: Buffer[] = [];
    for await (const piece of entry.body()) parts.push(Buffer.from(piece));
    const { body: _, ...fields } = entry;
    out.push({ ...fields, data: Buffer.concat(parts).toString('latin1') });
  }
  return out;
}

async function rejects(
  t: ExecutionContext,
  bytes: Buffer,
  code: ExtractErrorCode,
  message?: RegExp,
) {
  const err = await t.throwsAsync(readAll(bytes), { instanceOf: ExtractError });
  t.is(err?.code, code, err?.message);
  if (message) t.regex(err?.message ?? '', message);
  return err;
}

test('reads files, directories, links and devices with their metadata', async (t) => {
  const entries = await readAll(
    tar([
      { path: 'etc/' },
      {
        path: 'etc/hosts',
        data: '127.0.0.1 localhost\n',
        mode: 0o640,
        uid: 7,
        gid: 8,
        mtime: 1700000000,
      },
      { path: 'etc/link', type: 'symlink', linkpath: 'hosts', mode: 0o777 },
      { path: 'etc/hard', type: 'hardlink', linkpath: 'etc/hosts' },
      { path: 'dev/null', type: 'char-device' },
      { path: 'dev/sda', type: 'block-device' },
      { path: 'run/pipe', type: 'fifo' },
      { path: 'empty' },
    ]),
  );
  t.deepEqual(
    entries.map((e) => [e.path, e.type, e.size, e.linkpath, e.data]),
    [
      ['etc/', 'directory', 0, '', ''],
      ['etc/hosts', 'file', 20, '', '127.0.0.1 localhost\n'],
      ['etc/link', 'symlink', 0, 'hosts', ''],
      ['etc/hard', 'hardlink', 0, 'etc/hosts', ''],
      ['dev/null', 'char-device', 0, '', ''],
      ['dev/sda', 'block-device', 0, '', ''],
      ['run/pipe', 'fifo', 0, '', ''],
      ['empty', 'file', 0, '', ''],
    ],
  );
  t.like(entries[1], { mode: 0o640, uid: 7, gid: 8, mtime: 1700000000 });
  t.is(entries[2]?.mode, 0o777);
});

test('applies PAX path, linkpath, size, mtime, uid and gid records', async (t) => {
  const long = `${'deep/'.repeat(40)}file.txt`;
  const entries = await readAll(
    tar([
      { path: long, data: 'payload', pax: { mtime: '1700000000.25', uid: '4000000', gid: '5' } },
      { path: 'short', type: 'symlink', linkpath: `/${'target/'.repeat(30)}end` },
      { path: 'ignored-name', pax: { path: 'ünïcode ✓/name', 'SCHILY.xattr.user.x': 'y' } },
    ]),
  );
  t.is(entries[0]?.path, long);
  t.is(entries[0]?.data, 'payload');
  t.like(entries[0], { mtime: 1700000000.25, uid: 4000000, gid: 5 });
  t.is(entries[1]?.linkpath, `/${'target/'.repeat(30)}end`);
  t.is(entries[2]?.path, 'ünïcode ✓/name');
});

test('a PAX size record overrides the header size', async (t) => {
  const data = 'x'.repeat(700);
  const bytes = tar([
    { path: 'big', data, pax: { size: '700' }, mutate: (h) => h.write('00000000000\0', 124) },
    { path: 'next', data: 'n' },
  ]);
  const entries = await readAll(bytes);
  t.deepEqual(
    entries.map((e) => [e.path, e.size, e.data.length]),
    [
      ['big', 700, 700],
      ['next', 1, 1],
    ],
  );
});

test('reads GNU long names and long link names', async (t) => {
  const name = `${'gnu-long-name/'.repeat(12)}leaf`;
  const target = `${'gnu-long-link/'.repeat(12)}leaf`;
  const entries = await readAll(
    tar([
      { path: name, data: 'gnu', gnu: true },
      { path: `${name}.link`, type: 'symlink', linkpath: target, gnu: true },
    ]),
  );
  t.deepEqual(
    entries.map((e) => [e.path, e.linkpath, e.data]),
    [
      [name, '', 'gnu'],
      [`${name}.link`, target, ''],
    ],
  );
});

test('joins the ustar prefix and name', async (t) => {
  const bytes = Buffer.concat([
    header({ name: 'name.txt', typeflag: '0', prefix: 'some/prefix' }),
    // GNU headers use the prefix area for other fields: it must not be read as a prefix.
    header({ name: 'gnu.txt', typeflag: '0', gnu: true, prefix: 'not/a/prefix' }),
    Buffer.alloc(1024),
  ]);
  t.deepEqual(
    (await readAll(bytes)).map((e) => e.path),
    ['some/prefix/name.txt', 'gnu.txt'],
  );
});

test('treats a V7 entry with a NUL type flag and a trailing slash as a directory', async (t) => {
  const entries = await readAll(
    tar([
      { path: 'old/', typeflag: '\0' },
      { path: 'old/file', typeflag: '\0', data: 'v7' },
    ]),
  );
  t.deepEqual(
    entries.map((e) => [e.path, e.type, e.data]),
    [
      ['old/', 'directory', ''],
      ['old/file', 'file', 'v7'],
    ],
  );
});

test('reads base-256 sizes and mtimes and accepts signed-char checksums', async (t) => {
  const base256 = (h: Buffer, start: number, length: number, value: number) => {
    h.fill(0, start, start + length);
    h[start] = 0x80;
    h.writeUIntBE(value, start + length - 6, 6);
  };
  const data = 'b'.repeat(600);
  const signed = header({ name: 'café', typeflag: '0' });
  // Recompute the checksum the way old writers did: bytes as signed chars.
  signed.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of signed) sum += byte > 0x7f ? byte - 256 : byte;
  signed.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const entries = await readAll(
    Buffer.concat([
      tarEntry({
        path: 'b256',
        data,
        mutate: (h) => {
          base256(h, 124, 12, 600);
          base256(h, 136, 12, 2 ** 40);
        },
      }),
      signed,
      Buffer.alloc(1024),
    ]),
  );
  t.like(entries[0], { path: 'b256', size: 600, mtime: 2 ** 40 });
  t.is(entries[0]?.data, data);
  t.is(entries[1]?.path, 'café');
});

test('skips the bodies a consumer does not read', async (t) => {
  const names: string[] = [];
  for await (const entry of readTar(
    chunked(
      tar([
        { path: 'a', data: 'A'.repeat(1300) },
        { path: 'b', data: 'B'.repeat(10) },
        { path: 'c', data: 'C' },
      ]),
      [100],
    ),
  )) {
    names.push(entry.path);
    if (entry.path === 'a') {
      for await (const piece of entry.body()) {
        t.true(piece.length <= 100);
        break;
      }
    }
  }
  t.deepEqual(names, ['a', 'b', 'c']);
});

test('the same entries come out however the input is chunked', async (t) => {
  const bytes = tar([
    { path: 'dir/' },
    { path: 'dir/one', data: 'x'.repeat(1000) },
    { path: `${'p/'.repeat(80)}pax`, data: 'pax' },
    { path: `${'g/'.repeat(80)}gnu`, data: 'gnu', gnu: true },
    { path: 'link', type: 'symlink', linkpath: 'dir/one' },
  ]);
  const whole = await readAll(bytes);
  t.is(whole.length, 5);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 1, max: 1100 }), { minLength: 1 }),
      async (sizes) => {
        t.deepEqual(await readAll(bytes, sizes), whole);
      },
    ),
    { numRuns: 200 },
  );
});

test('stops at the end marker but reads trailing padding and garbage to the end', async (t) => {
  const archive = tar([{ path: 'only', data: 'one' }], {
    trailer: Buffer.concat([Buffer.alloc(9216), Buffer.from('trailing garbage, not a header')]),
  });
  let pulled = 0;
  async function* counting() {
    for await (const chunk of chunked(archive, [333])) {
      pulled += chunk.length;
      yield chunk;
    }
  }
  const names: string[] = [];
  for await (const entry of readTar(counting())) names.push(entry.path);
  t.deepEqual(names, ['only']);
  t.is(pulled, archive.length);
});

test('accepts an archive without end marker, with one zero block, or empty', async (t) => {
  const entry = tarEntry({ path: 'f', data: 'data' });
  t.deepEqual(
    (await readAll(entry)).map((e) => e.path),
    ['f'],
  );
  t.deepEqual(
    (await readAll(Buffer.concat([entry, Buffer.alloc(512)]))).map((e) => e.path),
    ['f'],
  );
  t.deepEqual(await readAll(Buffer.alloc(0)), []);
});

test('rejects a header with a bad checksum', async (t) => {
  const err = await rejects(
    t,
    tar([
      { path: 'ok', data: 'fine' },
      { path: 'bad', badChecksum: true },
    ]),
    'TAR_INVALID',
    /bad header checksum at offset 1024/,
  );
  t.regex(err.message, /^invalid tar:/);
});

test('rejects non-octal numeric fields', async (t) => {
  await rejects(
    t,
    tar([{ path: 'f', mutate: (h) => h.write('0000000009a\0', 124) }]),
    'TAR_INVALID',
    /non-octal size/,
  );
  await rejects(
    t,
    tar([{ path: 'f', mutate: (h) => h.write('12 34\0\0\0', 100) }]),
    'TAR_INVALID',
    /non-octal mode/,
  );
});

test('rejects archives cut off inside a header or a body', async (t) => {
  const archive = tar([{ path: 'f', data: 'x'.repeat(2000) }]);
  await rejects(t, archive.subarray(0, 300), 'TAR_INVALID', /ends in the header at offset 0/);
  await rejects(t, archive.subarray(0, 1000), 'TAR_INVALID', /ends inside entry "f"/);
  // The padding after the data belongs to the entry too.
  await rejects(t, archive.subarray(0, 512 + 2000), 'TAR_INVALID', /ends inside entry "f"/);
});

test('rejects malformed PAX records and oversized extended headers', async (t) => {
  const withPax = (records: Buffer) =>
    Buffer.concat([
      header({ name: 'PaxHeader', typeflag: 'x', size: records.length }),
      records,
      Buffer.alloc((512 - (records.length % 512)) % 512),
      tar([{ path: 'f' }]),
    ]);
  for (const bad of [
    '5 a=b\n',
    '99 path=x\n',
    '9 pathxx\n',
    'x path=y\n',
    '10 path=y!',
    '5 =b\n',
  ]) {
    await rejects(t, withPax(Buffer.from(bad)), 'TAR_INVALID', /malformed PAX record/);
  }
  await rejects(t, withPax(paxData({ size: '12x' })), 'TAR_INVALID', /PAX size/);
  await rejects(t, withPax(paxData({ mtime: 'soon' })), 'TAR_INVALID', /PAX mtime/);
  await rejects(t, withPax(paxData({ path: 'a\0b' })), 'TAR_INVALID', /NUL/);
  await rejects(
    t,
    Buffer.concat([
      header({ name: 'PaxHeader', typeflag: 'x', size: 2 ** 21 }),
      Buffer.alloc(1024),
    ]),
    'TAR_INVALID',
    /extended header of 2097152 bytes/,
  );
  await rejects(
    t,
    Buffer.concat([
      tarEntry({ path: 'x', pax: { comment: 'dangling' } }).subarray(0, 1024),
      Buffer.alloc(1024),
    ]),
    'TAR_INVALID',
    /ends after an extended header/,
  );
});

test('rejects negative sizes', async (t) => {
  await rejects(
    t,
    tar([{ path: 'neg', mutate: (h) => h.fill(0xff, 124, 136) }]),
    'TAR_INVALID',
    /negative size/,
  );
});

test('refuses sparse files and unknown entry types', async (t) => {
  const sparse = await rejects(
    t,
    tar([{ path: 'sparse', typeflag: 'S' }]),
    'TAR_ENTRY_UNSUPPORTED',
  );
  t.is(sparse.entry, 'sparse');
  t.regex(sparse.message, /sparse file/);
  await rejects(
    t,
    tar([{ path: 'pax-sparse', pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' } }]),
    'TAR_ENTRY_UNSUPPORTED',
    /sparse/,
  );
  await rejects(
    t,
    tar([{ path: 'odd', typeflag: 'Q' }]),
    'TAR_ENTRY_UNSUPPORTED',
    /entry type "Q"/,
  );
});

test('ignores PAX global headers', async (t) => {
  const records = paxData({ comment: 'git archive commit id' });
  const bytes = Buffer.concat([
    header({ name: 'pax_global_header', typeflag: 'g', size: records.length }),
    records,
    Buffer.alloc(512 - records.length),
    tar([{ path: 'f', data: 'x' }]),
  ]);
  t.deepEqual(
    (await readAll(bytes)).map((e) => e.path),
    ['f'],
  );
});

for (const format of ['pax', 'gnu'] as const) {
  test(`reads what GNU tar writes in ${format} format`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-tar-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const long = `${'a-rather-long-directory-name/'.repeat(5)}file-with-a-long-name.txt`;
    await mkdir(path.join(dir, 'src', path.dirname(long)), { recursive: true });
    await writeFile(path.join(dir, 'src', long), 'long\n');
    await symlink(long, path.join(dir, 'src', 'link'));
    await writeFile(path.join(dir, 'src', 'big.bin'), Buffer.alloc(100_000, 7));
    const archive = path.join(dir, 'out.tar');
    execFileSync('tar', [
      `--format=${format}`,
      '--sort=name',
      '-C',
      path.join(dir, 'src'),
      '-cf',
      archive,
      'link',
      'big.bin',
      long,
    ]);
    const entries = await readAll(await readFile(archive), [4096]);
    t.deepEqual(
      entries.map((e) => [e.path, e.type, e.linkpath, e.size]),
      [
        ['link', 'symlink', long, 0],
        ['big.bin', 'file', '', 100_000],
        [long, 'file', '', 5],
      ],
    );
    t.is(entries[1]?.data, Buffer.alloc(100_000, 7).toString('latin1'));
    t.is(entries[2]?.data, 'long\n');
  });
}

/** Every failure must be an ExtractError with one of `codes`; success is fine too. */
async function failsCleanly(bytes: Buffer, codes: readonly ExtractErrorCode[]): Promise<boolean> {
  try {
    await readAll(bytes);
    return true;
  } catch (err) {
    return err instanceof ExtractError && codes.includes(err.code);
  }
}

test('random bytes fail only with TAR_INVALID', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), async (bytes) =>
      failsCleanly(Buffer.from(bytes), ['TAR_INVALID']),
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('mutated archives with valid checksums fail only with ExtractError', async (t) => {
  const specs: TarSpec[] = [
    { path: 'dir/' },
    { path: 'dir/file', data: 'contents'.repeat(100) },
    { path: `${'pax/'.repeat(40)}x`, data: 'p', pax: { mtime: '1.5' } },
    { path: `${'gnu/'.repeat(40)}y`, data: 'g', gnu: true },
    { path: 'sym', type: 'symlink', linkpath: 'dir/file' },
  ];
  const original = tar(specs);
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(original.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.boolean(),
      async (edits, rechecksum) => {
        const bytes = Buffer.from(original);
        for (const [at, value] of edits) bytes[at] = value;
        // Give every non-zero block a valid checksum, so that mutated headers get parsed.
        for (let offset = 0; rechecksum && offset < bytes.length; offset += 512) {
          const block = bytes.subarray(offset, offset + 512);
          if (block.some((b) => b !== 0)) setChecksum(block);
        }
        return failsCleanly(bytes, ['TAR_INVALID', 'TAR_ENTRY_UNSUPPORTED']);
      },
    ),
    { numRuns: 1000 },
  );
  t.pass();
});
