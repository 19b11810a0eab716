import { execFileSync } from 'node:child_process';
import { createReadStream, statSync } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, pipeline, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { createHasher, DigestVerifier, digestBytes } from '../../src/digest/index.ts';
import { zstdDecompressor } from '../../src/extract/decompress.ts';
import {
  type ExtractableImage,
  ExtractError,
  type ExtractErrorCode,
  type ExtractOptions,
  extract,
  type LayerExtracted,
} from '../../src/extract/extract.ts';
import {
  type Descriptor,
  DOCKER_LAYER_GZIP,
  isIndexMediaType,
  OCI_LAYER,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
} from '../../src/oci/index.ts';
import { fixtureBlobPath, fixtureRoot, readFixtureBlob } from '../helpers/fixtures.ts';
import { type TarSpec, tar, tarEntry } from '../helpers/tar-writer.ts';

// ---------------------------------------------------------------------------------------------
// Images for extract(): in memory, and from the fixture layouts

interface MemoryLayer {
  blob: Buffer;
  mediaType: string;
  diffId: string;
}

function gzLayer(specs: readonly TarSpec[]): MemoryLayer {
  const raw = tar(specs);
  return { blob: gzipSync(raw), mediaType: OCI_LAYER_GZIP, diffId: digestBytes(raw) };
}

function plainLayer(raw: Buffer, mediaType = OCI_LAYER): MemoryLayer {
  return { blob: raw, mediaType, diffId: digestBytes(raw) };
}

/** An image whose layers live in memory; `opened` records the streams handed out. */
function memoryImage(layers: readonly MemoryLayer[]): ExtractableImage & { opened: Readable[] } {
  const opened: Readable[] = [];
  const descriptors = layers.map((l) => ({
    mediaType: l.mediaType,
    digest: digestBytes(l.blob),
    size: l.blob.length,
  }));
  return {
    layers: descriptors,
    opened,
    diffIds: async () => layers.map((l) => l.diffId),
    openLayer: async (desc: Descriptor) => {
      const layer = layers[descriptors.indexOf(desc as (typeof descriptors)[number])];
      if (!layer) throw new Error(`unknown layer ${desc.digest}`);
      // Small chunks, so that headers and bodies straddle chunk boundaries.
      const chunks: Buffer[] = [];
      for (let i = 0; i < layer.blob.length; i += 700) chunks.push(layer.blob.subarray(i, i + 700));
      const stream = Readable.from(chunks, { objectMode: false });
      opened.push(stream);
      return stream;
    },
  };
}

interface FixtureImage extends ExtractableImage {
  /** Path of each layer blob, bottom-up. */
  readonly blobPaths: readonly string[];
}

/** Images in fixture layout `name` (every platform of an index), read with digest checks. */
async function fixtureImages(name: string): Promise<FixtureImage[]> {
  const root = await fixtureRoot(name);
  const json = async (digest: string) =>
    JSON.parse((await readFixtureBlob(name, digest)).toString('utf8'));
  const manifests: Descriptor[] = isIndexMediaType(root.mediaType)
    ? (await json(root.digest)).manifests
    : [root];
  return Promise.all(
    manifests.map(async (desc) => {
      const manifest = await json(desc.digest);
      const config = await json(manifest.config.digest);
      const layers: Descriptor[] = manifest.layers;
      return {
        layers,
        blobPaths: layers.map((l) => fixtureBlobPath(name, l.digest)),
        diffIds: async () => config.rootfs.diff_ids,
        openLayer: async (layer: Descriptor) => {
          const verifier = new DigestVerifier(layer.digest, { size: layer.size });
          pipeline(createReadStream(fixtureBlobPath(name, layer.digest)), verifier, () => {});
          return verifier;
        },
      };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Directories

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ociferry-extract-'));
  t.teardown(() => removeTree(dir));
  return dir;
}

/** rm -rf that also works on trees with read-only directories when not root. */
async function removeTree(dir: string): Promise<void> {
  const open = async (p: string): Promise<void> => {
    const stats = await lstat(p);
    if (!stats.isDirectory()) return;
    await chmod(p, 0o700);
    for (const name of await readdir(p)) await open(path.join(p, name));
  };
  await open(dir).catch(() => {});
  await rm(dir, { recursive: true, force: true });
}

/** A readable picture of a tree: path -> kind, mode and content (short text, else a digest). */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const key = rel === '' ? name : `${rel}/${name}`;
      const abs = path.join(dir, key);
      const stats = await lstat(abs);
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isSymbolicLink()) out[key] = `-> ${await readlink(abs)}`;
      else if (stats.isDirectory()) {
        out[`${key}/`] = mode;
        await walk(key);
      } else if (stats.isFile()) {
        const data = await readFile(abs);
        const text = data.toString('latin1');
        const shown =
          data.length <= 40 && /^[\x20-\x7e\n]*$/.test(text)
            ? JSON.stringify(text)
            : digestBytes(data).slice(7, 19);
        out[key] = `${mode} ${shown}`;
      } else out[key] = 'other';
    }
  };
  await walk('');
  return out;
}

/** root/ to extract into, and outside/ next to it holding `secret`, which must survive. */
async function sandbox(t: ExecutionContext) {
  const base = await tempDir(t);
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  await mkdir(outside);
  await writeFile(path.join(outside, 'secret'), 'untouched\n');
  const intact = async () => {
    t.deepEqual(await readdir(base), ['outside', 'root']);
    t.deepEqual(await snapshot(outside), { secret: '644 "untouched\\n"' });
  };
  return { base, root, outside, intact };
}

async function refused(
  t: ExecutionContext,
  layers: readonly MemoryLayer[],
  root: string,
  code: ExtractErrorCode,
  entry?: string,
): Promise<ExtractError | undefined> {
  const err = await t.throwsAsync(extract(memoryImage(layers), root), { instanceOf: ExtractError });
  t.is(err?.code, code, err?.message);
  if (entry !== undefined) {
    t.is(err?.entry, entry);
    t.true(err?.message.includes(JSON.stringify(entry)), err?.message);
  }
  return err;
}

// ---------------------------------------------------------------------------------------------
// The fixture images, against GNU tar as the reference

/**
 * What GNU tar makes of the same layers, extracted one over the other, with `.wh.NAME` applied
 * by hand afterwards (the fixtures use no opaque markers).
 */
async function gnuTarReference(t: ExecutionContext, image: FixtureImage): Promise<string> {
  const ref = await tempDir(t);
  for (const blob of image.blobPaths) {
    execFileSync('tar', ['-xzf', blob, '-C', ref, '--no-same-owner']);
    const whiteouts = execFileSync('find', [ref, '-name', '.wh.*'], { encoding: 'utf8' });
    for (const wh of whiteouts.split('\n').filter(Boolean)) {
      await rm(path.join(path.dirname(wh), path.basename(wh).slice(4)), {
        recursive: true,
        force: true,
      });
      await rm(wh);
    }
  }
  return ref;
}

test('extracts the oci-image fixture with its whiteout applied', async (t) => {
  const [image] = await fixtureImages('oci-image');
  if (!image) throw new Error('fixture oci-image has no image');
  const dir = path.join(await tempDir(t), 'rootfs');
  const events: LayerExtracted[] = [];
  const result = await extract(image, dir, { onLayer: (e) => events.push(e) });

  const tree = await snapshot(dir);
  t.deepEqual(tree, await snapshot(await gnuTarReference(t, image)));
  t.deepEqual(Object.keys(tree), [
    'app/',
    'app/VERSION',
    'app/config.json',
    'app/data.bin',
    'bin/',
    'bin/hello',
    'etc/',
    'etc/motd',
    'etc/os-release',
    'tmp/',
  ]);
  t.is(tree['app/VERSION'], '644 "1.0.0\\n"');
  t.is(tree['bin/hello']?.slice(0, 4), '755 ');
  t.regex(await readFile(path.join(dir, 'etc/os-release'), 'utf8'), /FIXTURE=oci-image/);
  t.is((await stat(path.join(dir, 'bin/hello'))).mtimeMs, 0);
  t.is((await stat(path.join(dir, 'tmp'))).mtimeMs, 0);

  t.deepEqual(result, { layers: 3, entries: 14, skipped: 0 });
  t.deepEqual(
    events.map((e) => [e.index, e.digest, e.entries]),
    image.layers.map((l, i) => [i, l.digest, [5, 5, 4][i]]),
  );
});

for (const name of ['docker-image', 'multi-platform', 'layers-40']) {
  test(`extracts every image of the ${name} fixture like GNU tar`, async (t) => {
    const images = await fixtureImages(name);
    t.true(images.length >= 1);
    for (const image of images) {
      const dir = await tempDir(t);
      const result = await extract(image, dir);
      t.is(result.layers, image.layers.length);
      t.deepEqual(await snapshot(dir), await snapshot(await gnuTarReference(t, image)));
    }
  });
}

test('the multi-platform fixture gives each platform its own base and the shared layer', async (t) => {
  const images = await fixtureImages('multi-platform');
  t.is(images.length, 2);
  const releases: string[] = [];
  for (const image of images) {
    const dir = await tempDir(t);
    await extract(image, dir);
    releases.push(await readFile(path.join(dir, 'etc/os-release'), 'utf8'));
    t.true((await stat(path.join(dir, 'share/README'))).isFile());
  }
  t.regex(releases[0] ?? '', /FIXTURE=multi-platform-amd64/);
  t.regex(releases[1] ?? '', /FIXTURE=multi-platform-arm64/);
});

// ---------------------------------------------------------------------------------------------
// Entries that would escape

test("refuses an entry named '../evil'", async (t) => {
  const { root, intact } = await sandbox(t);
  await refused(
    t,
    [gzLayer([{ path: '../evil', data: 'x' }])],
    root,
    'TAR_ENTRY_UNSAFE',
    '../evil',
  );
  await intact();
});

test("refuses an entry named 'a/../../evil'", async (t) => {
  const { root, intact } = await sandbox(t);
  const err = await refused(
    t,
    [gzLayer([{ path: 'a/' }, { path: 'a/../../evil', data: 'x' }])],
    root,
    'TAR_ENTRY_UNSAFE',
    'a/../../evil',
  );
  t.regex(err?.message ?? '', /^layer 0 \(sha256:[0-9a-f]{64}\): /);
  t.regex(err?.layer ?? '', /^sha256:/);
  await intact();
});

test('refuses to write through a symlink created earlier in the same layer', async (t) => {
  const { root, outside, intact } = await sandbox(t);
  const err = await refused(
    t,
    [
      gzLayer([
        { path: 'x', type: 'symlink', linkpath: outside },
        { path: 'x/secret', data: 'overwritten\n' },
      ]),
    ],
    root,
    'TAR_ENTRY_UNSAFE',
    'x/secret',
  );
  t.regex(err?.message ?? '', /goes through the symlink "x"/);
  await intact();
});

test('refuses a file below an absolute symlink from a lower layer', async (t) => {
  const { root, outside, intact } = await sandbox(t);
  await refused(
    t,
    [
      gzLayer([{ path: 'etc', type: 'symlink', linkpath: outside }]),
      gzLayer([{ path: 'etc/passwd', data: 'root::0:0::/:/bin/sh\n' }]),
    ],
    root,
    'TAR_ENTRY_UNSAFE',
    'etc/passwd',
  );
  await intact();
  // A directory entry replaces the link, as docker does; the file then lands inside.
  await extract(
    memoryImage([
      gzLayer([{ path: 'etc', type: 'symlink', linkpath: outside }]),
      gzLayer([{ path: 'etc/' }, { path: 'etc/passwd', data: 'inside\n' }]),
    ]),
    root,
  );
  t.deepEqual(await snapshot(root), { 'etc/': '755', 'etc/passwd': '644 "inside\\n"' });
  await intact();
});

test('refuses a write through a relative symlink that climbs out', async (t) => {
  const { root, intact } = await sandbox(t);
  await refused(
    t,
    [
      gzLayer([
        { path: 'up', type: 'symlink', linkpath: '../outside' },
        { path: 'up/secret', data: 'x' },
      ]),
    ],
    root,
    'TAR_ENTRY_UNSAFE',
    'up/secret',
  );
  await intact();
});

test('refuses hard links whose target climbs out or goes through a symlink', async (t) => {
  const { root, outside, intact } = await sandbox(t);
  const climb = await refused(
    t,
    [gzLayer([{ path: 'h', type: 'hardlink', linkpath: '../outside/secret' }])],
    root,
    'TAR_ENTRY_UNSAFE',
    'h',
  );
  t.regex(climb?.message ?? '', /hard link target "..\/outside\/secret" climbs out/);
  await refused(
    t,
    [gzLayer([{ path: 'h', type: 'hardlink', linkpath: '/../x' }])],
    root,
    'TAR_ENTRY_UNSAFE',
    'h',
  );
  const through = await refused(
    t,
    [
      gzLayer([
        { path: 'x', type: 'symlink', linkpath: outside },
        { path: 'h', type: 'hardlink', linkpath: 'x/secret' },
      ]),
    ],
    root,
    'TAR_ENTRY_UNSAFE',
    'h',
  );
  t.regex(through?.message ?? '', /hard link target goes through the symlink "x"/);
  await intact();
  await t.throwsAsync(lstat(path.join(root, 'h')), { code: 'ENOENT' });
});

test('refuses whiteouts below a symlink and whiteouts that name no sibling', async (t) => {
  const { root, outside, intact } = await sandbox(t);
  await refused(
    t,
    [
      gzLayer([{ path: 'x', type: 'symlink', linkpath: outside }]),
      gzLayer([{ path: 'x/.wh.secret' }]),
    ],
    root,
    'TAR_ENTRY_UNSAFE',
    'x/.wh.secret',
  );
  await refused(
    t,
    [
      gzLayer([{ path: 'x', type: 'symlink', linkpath: outside }]),
      gzLayer([{ path: 'x/.wh..wh..opq' }]),
    ],
    root,
    'TAR_ENTRY_UNSAFE',
    'x/.wh..wh..opq',
  );
  await refused(
    t,
    [gzLayer([{ path: 'a/' }, { path: 'a/.wh...' }])],
    root,
    'TAR_ENTRY_UNSAFE',
    'a/.wh...',
  );
  await intact();
});

test('takes absolute names relative to the directory and resolves inner ..', async (t) => {
  const { root, intact } = await sandbox(t);
  await extract(
    memoryImage([
      gzLayer([
        { path: '/etc/abs.txt', data: 'abs' },
        { path: 'a/../b.txt', data: 'b' },
        { path: './c/./d.txt', data: 'd' },
        { path: './' },
      ]),
    ]),
    root,
  );
  t.deepEqual(await snapshot(root), {
    'b.txt': '644 "b"',
    'c/': '755',
    'c/d.txt': '644 "d"',
    'etc/': '755',
    'etc/abs.txt': '644 "abs"',
  });
  await intact();
});

test('creates symlinks pointing outside without following them, and replaces them', async (t) => {
  const { root, outside, intact } = await sandbox(t);
  await extract(
    memoryImage([
      gzLayer([
        { path: 'abs', type: 'symlink', linkpath: path.join(outside, 'secret') },
        { path: 'rel', type: 'symlink', linkpath: '../outside/secret' },
        { path: 'dir-link', type: 'symlink', linkpath: outside },
      ]),
      gzLayer([{ path: 'abs', data: 'replaced the link\n' }, { path: 'dir-link/' }]),
    ]),
    root,
  );
  t.deepEqual(await snapshot(root), {
    abs: '644 "replaced the link\\n"',
    'dir-link/': '755',
    rel: '-> ../outside/secret',
  });
  await intact();
});

// ---------------------------------------------------------------------------------------------
// Whiteouts

test('a whiteout deletes a file or a whole directory of lower layers and leaves no marker', async (t) => {
  const dir = await tempDir(t);
  await extract(
    memoryImage([
      gzLayer([
        { path: 'keep', data: 'k' },
        { path: 'gone', data: 'g' },
        { path: 'tree/' },
        { path: 'tree/sub/' },
        { path: 'tree/sub/leaf', data: 'l' },
        { path: 'link', type: 'symlink', linkpath: 'tree' },
      ]),
      gzLayer([
        { path: '.wh.gone' },
        { path: '.wh.tree' },
        { path: '.wh.link' },
        { path: '.wh.never-was' },
      ]),
    ]),
    dir,
  );
  t.deepEqual(await snapshot(dir), { keep: '644 "k"' });
});

test('an opaque directory hides lower entries but keeps its own layer, whatever the order', async (t) => {
  const dir = await tempDir(t);
  await extract(
    memoryImage([
      gzLayer([
        { path: 'd/' },
        { path: 'd/old', data: 'old' },
        { path: 'd/rewritten', data: 'lower' },
        { path: 'd/sub/' },
        { path: 'd/sub/lower', data: 'lower' },
        { path: 'd/olddir/' },
        { path: 'd/olddir/x', data: 'x' },
        { path: 'other/' },
        { path: 'other/stays', data: 's' },
      ]),
      gzLayer([
        { path: 'd/' },
        { path: 'd/before', data: 'before' },
        { path: 'd/rewritten', data: 'upper' },
        // No entry for d/sub itself: its lower contents must go, this layer's file must stay.
        { path: 'd/sub/mine', data: 'mine' },
        { path: 'd/.wh..wh..opq' },
        { path: 'd/after', data: 'after' },
      ]),
    ]),
    dir,
  );
  t.deepEqual(await snapshot(dir), {
    'd/': '755',
    'd/after': '644 "after"',
    'd/before': '644 "before"',
    'd/rewritten': '644 "upper"',
    'd/sub/': '755',
    'd/sub/mine': '644 "mine"',
    'other/': '755',
    'other/stays': '644 "s"',
  });
});

test('a whiteout does not delete what its own layer wrote', async (t) => {
  const dir = await tempDir(t);
  await extract(
    memoryImage([
      gzLayer([
        { path: 'a', data: 'lower a' },
        { path: 'b', data: 'lower b' },
      ]),
      gzLayer([
        { path: 'a', data: 'upper a' },
        { path: '.wh.a' },
        { path: '.wh.b' },
        { path: 'b', data: 'upper b' },
        { path: '.wh..wh.plnk/' },
      ]),
    ]),
    dir,
  );
  t.deepEqual(await snapshot(dir), { a: '644 "upper a"', b: '644 "upper b"' });
});

// ---------------------------------------------------------------------------------------------
// Entry types and metadata

test('applies modes and mtimes, directory ones after everything below them is written', async (t) => {
  const dir = await tempDir(t);
  await extract(
    memoryImage([
      gzLayer([
        { path: 'ro/', mode: 0o555, mtime: 1_000_000 },
        { path: 'ro/file', data: 'f', mode: 0o4755, mtime: 2_000_000 },
        { path: 'ro/readonly', data: 'r', mode: 0o444, mtime: 3_000_000 },
        { path: 'ro/link', type: 'symlink', linkpath: 'file', mtime: 4_000_000 },
        { path: 'frac', data: 'p', pax: { mtime: '1700000000.5' } },
      ]),
      gzLayer([{ path: 'ro/later', data: 'l', mode: 0o600, mtime: 5_000_000 }]),
    ]),
    dir,
  );
  t.deepEqual(await snapshot(dir), {
    frac: '644 "p"',
    'ro/': '555',
    'ro/file': '4755 "f"',
    'ro/later': '600 "l"',
    'ro/link': '-> file',
    'ro/readonly': '444 "r"',
  });
  const mtime = async (p: string) => (await lstat(path.join(dir, p))).mtimeMs;
  t.is(await mtime('ro'), 1_000_000_000);
  t.is(await mtime('ro/file'), 2_000_000_000);
  t.is(await mtime('ro/link'), 4_000_000_000);
  t.is(await mtime('ro/later'), 5_000_000_000);
  t.is(await mtime('frac'), 1_700_000_000_500);
});

test('hard links share their target inode; a link to a symlink becomes the same symlink', async (t) => {
  const dir = await tempDir(t);
  await extract(
    memoryImage([
      gzLayer([{ path: 'lower', data: 'from below' }]),
      gzLayer([
        { path: 'bin/' },
        { path: 'bin/busybox', data: 'multi-call', mode: 0o755 },
        { path: 'bin/sh', type: 'hardlink', linkpath: 'bin/busybox' },
        { path: '/bin/ls', type: 'hardlink', linkpath: '/bin/busybox' },
        { path: 'up', type: 'hardlink', linkpath: 'lower' },
        { path: 'sym', type: 'symlink', linkpath: '/nowhere' },
        { path: 'sym2', type: 'hardlink', linkpath: 'sym' },
        { path: 'self', data: 'me' },
        { path: 'self', type: 'hardlink', linkpath: './self' },
      ]),
    ]),
    dir,
  );
  const ino = async (p: string) => (await lstat(path.join(dir, p))).ino;
  t.is(await ino('bin/sh'), await ino('bin/busybox'));
  t.is(await ino('bin/ls'), await ino('bin/busybox'));
  t.is((await lstat(path.join(dir, 'bin/busybox'))).nlink, 3);
  t.is(await ino('up'), await ino('lower'));
  t.is(await readlink(path.join(dir, 'sym2')), '/nowhere');
  t.is(await readFile(path.join(dir, 'self'), 'utf8'), 'me');
});

test('a hard link to a missing entry or a directory is an invalid archive', async (t) => {
  const dir = await tempDir(t);
  await refused(
    t,
    [gzLayer([{ path: 'h', type: 'hardlink', linkpath: 'missing' }])],
    dir,
    'TAR_INVALID',
    'h',
  );
  await refused(
    t,
    [gzLayer([{ path: 'd/' }, { path: 'h', type: 'hardlink', linkpath: 'd' }])],
    dir,
    'TAR_INVALID',
    'h',
  );
});

test('entries replace what lower layers had: file, directory or link', async (t) => {
  const dir = await tempDir(t);
  await extract(
    memoryImage([
      gzLayer([
        { path: 'was-dir/' },
        { path: 'was-dir/child', data: 'c' },
        { path: 'was-file', data: 'f' },
        { path: 'was-link', type: 'symlink', linkpath: 'was-file' },
        { path: 'merged/' },
        { path: 'merged/lower', data: 'l' },
      ]),
      gzLayer([
        { path: 'was-dir', type: 'symlink', linkpath: 'elsewhere' },
        { path: 'was-file/' },
        { path: 'was-file/inside', data: 'i' },
        { path: 'was-link', data: 'now a file' },
        { path: 'merged/', mode: 0o700 },
        { path: 'merged/upper', data: 'u' },
      ]),
    ]),
    dir,
  );
  t.deepEqual(await snapshot(dir), {
    'merged/': '700',
    'merged/lower': '644 "l"',
    'merged/upper': '644 "u"',
    'was-dir': '-> elsewhere',
    'was-file/': '755',
    'was-file/inside': '644 "i"',
    'was-link': '644 "now a file"',
  });
});

test('skips devices and FIFOs, counts them, and removes what they replace', async (t) => {
  const dir = await tempDir(t);
  const events: LayerExtracted[] = [];
  const result = await extract(
    memoryImage([
      gzLayer([{ path: 'dev/' }, { path: 'dev/console', data: 'a plain file below' }]),
      gzLayer([
        { path: 'dev/console', type: 'char-device' },
        { path: 'dev/sda', type: 'block-device' },
        { path: 'run/fifo', type: 'fifo' },
      ]),
    ]),
    dir,
    { onLayer: (e) => events.push(e) },
  );
  t.deepEqual(result, { layers: 2, entries: 5, skipped: 3 });
  t.deepEqual(
    events.map((e) => [e.entries, e.skipped]),
    [
      [2, 0],
      [3, 3],
    ],
  );
  t.deepEqual(await snapshot(dir), { 'dev/': '755', 'run/': '755' });
});

test('ownership is applied only when asked and running as root', async (t) => {
  const specs: TarSpec[] = [
    { path: 'd/', uid: 1234, gid: 5678 },
    { path: 'd/f', data: 'f', uid: 1234, gid: 5678 },
    { path: 'd/l', type: 'symlink', linkpath: 'f', uid: 1234, gid: 5678 },
  ];
  const owners = async (dir: string) =>
    Promise.all(
      ['d', 'd/f', 'd/l'].map(async (p) => {
        const s = await lstat(path.join(dir, p));
        return `${s.uid}:${s.gid}`;
      }),
    );
  const me = `${process.getuid?.()}:${process.getgid?.()}`;

  const plain = await tempDir(t);
  await extract(memoryImage([gzLayer(specs)]), plain);
  t.deepEqual(await owners(plain), [me, me, me]);

  const asked = await tempDir(t);
  await extract(memoryImage([gzLayer(specs)]), asked, { preserveOwnership: true });
  const expected = process.getuid?.() === 0 ? '1234:5678' : me;
  if (expected === me) t.log('not root: preserveOwnership must leave ownership alone');
  t.deepEqual(await owners(asked), [expected, expected, expected]);
});

test('extracts PAX long paths and GNU long names', async (t) => {
  const dir = await tempDir(t);
  const paxPath = `${'pax-directory/'.repeat(12)}file.txt`;
  const gnuPath = `${'gnu-directory/'.repeat(12)}file.txt`;
  const linkTarget = `/${'target/'.repeat(20)}end`;
  await extract(
    memoryImage([
      gzLayer([
        { path: paxPath, data: 'pax' },
        { path: gnuPath, data: 'gnu', gnu: true },
        { path: 'pax-link', type: 'symlink', linkpath: linkTarget },
        { path: 'gnu-link', type: 'symlink', linkpath: linkTarget, gnu: true },
      ]),
    ]),
    dir,
  );
  t.is(await readFile(path.join(dir, paxPath), 'utf8'), 'pax');
  t.is(await readFile(path.join(dir, gnuPath), 'utf8'), 'gnu');
  t.is(await readlink(path.join(dir, 'pax-link')), linkTarget);
  t.is(await readlink(path.join(dir, 'gnu-link')), linkTarget);
});

// ---------------------------------------------------------------------------------------------
// Compression and diff_ids

const SIMPLE: TarSpec[] = [{ path: 'hello.txt', data: 'hello\n' }];

test('picks decompression from the media type, and from the bytes when they are unambiguous', async (t) => {
  const raw = tar(SIMPLE);
  const gz = gzipSync(raw);
  const cases: [string, MemoryLayer][] = [
    ['plain tar, OCI type', plainLayer(raw)],
    ['plain tar, Docker type', plainLayer(raw, 'application/vnd.docker.image.rootfs.diff.tar')],
    ['gzip, Docker type', { blob: gz, mediaType: DOCKER_LAYER_GZIP, diffId: digestBytes(raw) }],
    [
      'gzip, unknown type',
      { blob: gz, mediaType: 'application/octet-stream', diffId: digestBytes(raw) },
    ],
    ['gzip labelled as plain tar', { blob: gz, mediaType: OCI_LAYER, diffId: digestBytes(raw) }],
    ['plain tar labelled gzip', plainLayer(raw, OCI_LAYER_GZIP)],
    ['plain tar, unknown type', plainLayer(raw, 'application/vnd.example.layer')],
  ];
  for (const [label, layer] of cases) {
    const dir = await tempDir(t);
    await extract(memoryImage([layer]), dir);
    t.deepEqual(await snapshot(dir), { 'hello.txt': '644 "hello\\n"' }, label);
  }
});

test('a corrupted or truncated gzip stream fails with LAYER_CORRUPT', async (t) => {
  const [image] = await fixtureImages('oci-image');
  const first = image?.layers[0];
  if (!first) throw new Error('fixture oci-image has no layer');
  const gz = await readFixtureBlob('oci-image', first.digest);
  const diffId = (await image?.diffIds())?.[0] ?? '';
  const flipped = Buffer.from(gz);
  const middle = Math.floor(gz.length / 2);
  flipped[middle] = (gz[middle] ?? 0) ^ 0xff;
  for (const [label, blob] of [
    ['flipped byte', flipped],
    ['truncated', gz.subarray(0, gz.length - 20)],
  ] as const) {
    const dir = await tempDir(t);
    const err = await t.throwsAsync(
      extract(memoryImage([{ blob, mediaType: OCI_LAYER_GZIP, diffId }]), dir),
      { instanceOf: ExtractError },
    );
    t.is(err?.code, 'LAYER_CORRUPT', `${label}: ${err?.message}`);
    t.regex(err?.message ?? '', /^layer 0 \(sha256:[0-9a-f]+\) does not decompress: /);
    t.truthy((err?.cause as NodeJS.ErrnoException | undefined)?.code, label);
  }
});

test('errors of the layer stream and of the file system pass through unchanged', async (t) => {
  const layer = gzLayer(SIMPLE);
  const lying = digestBytes('another blob');
  const image = memoryImage([layer]);
  const verified: ExtractableImage = {
    ...image,
    openLayer: async (desc, options) => {
      const verifier = new DigestVerifier(lying, { source: 'the test' });
      pipeline(await image.openLayer(desc, options), verifier, () => {});
      return verifier;
    },
  };
  const mismatch = await t.throwsAsync(extract(verified, await tempDir(t)));
  t.is((mismatch as NodeJS.ErrnoException | undefined)?.code, 'DIGEST_MISMATCH', mismatch?.message);
  t.true(mismatch?.message.includes(lying));

  const tooLong = await t.throwsAsync(
    extract(memoryImage([gzLayer([{ path: 'n'.repeat(300), data: 'x' }])]), await tempDir(t)),
  );
  t.is((tooLong as NodeJS.ErrnoException | undefined)?.code, 'ENAMETOOLONG', tooLong?.message);
});

/** A zstd frame holding `data` in one raw (stored) block: RFC 8878 without a compressor. */
function zstdFrame(data: Buffer): Buffer {
  if (data.length < 256 || data.length > 0xffff + 256 || data.length > 128 * 1024) {
    throw new Error('zstdFrame handles 256 bytes to 64 KiB');
  }
  const frame = Buffer.alloc(4 + 1 + 2 + 3);
  frame.writeUInt32LE(0xfd2fb528, 0);
  frame[4] = 0x60; // single segment, 2-byte content size
  frame.writeUInt16LE(data.length - 256, 5);
  frame.writeUIntLE(1 | (data.length << 3), 7, 3); // last block, raw, size
  return Buffer.concat([frame, data]);
}

test('zstd layers need a Node.js with zstd, and extract where it has it', async (t) => {
  const raw = tar(SIMPLE);
  const layers = [OCI_LAYER_ZSTD, 'application/octet-stream'].map((mediaType) => ({
    blob: zstdFrame(raw),
    mediaType,
    diffId: digestBytes(raw),
  }));
  for (const layer of layers) {
    const dir = await tempDir(t);
    if (zstdDecompressor() === undefined) {
      const err = await refused(t, [layer], dir, 'COMPRESSION_UNSUPPORTED');
      t.regex(err?.message ?? '', /Node\.js 22\.15\.0 or newer/);
      t.true(err?.message.includes(process.versions.node));
    } else {
      t.log(`Node.js ${process.versions.node} has zstd: extracting a real zstd frame`);
      await extract(memoryImage([layer]), dir);
      t.deepEqual(await snapshot(dir), { 'hello.txt': '644 "hello\\n"' });
    }
  }
});

test('bzip2 and xz layers of unknown type are refused with COMPRESSION_UNSUPPORTED', async (t) => {
  const dir = await tempDir(t);
  for (const blob of [Buffer.from('BZh91AY&SY rest'), Buffer.from('fd377a585a000004', 'hex')]) {
    const err = await refused(
      t,
      [{ blob, mediaType: 'application/octet-stream', diffId: digestBytes(blob) }],
      dir,
      'COMPRESSION_UNSUPPORTED',
    );
    t.regex(err?.message ?? '', /(bzip2|xz)-compressed/);
  }
});

test('bytes that are not a tar fail with TAR_INVALID naming the layer', async (t) => {
  const dir = await tempDir(t);
  const err = await refused(
    t,
    [plainLayer(Buffer.from('this is not a tar archive'.repeat(30)))],
    dir,
    'TAR_INVALID',
  );
  t.regex(
    err?.message ?? '',
    /^layer 0 \(sha256:[0-9a-f]+\): invalid tar: bad header checksum at offset 0$/,
  );
});

test('a layer that does not unpack to its diff_id fails with DIFF_ID_MISMATCH', async (t) => {
  const dir = await tempDir(t);
  const good = gzLayer(SIMPLE);
  const wrong = digestBytes('something else');
  const err = await refused(
    t,
    [good, { ...gzLayer([{ path: 'b', data: 'b' }]), diffId: wrong }],
    dir,
    'DIFF_ID_MISMATCH',
  );
  t.regex(
    err?.message ?? '',
    /^layer 1 \(sha256:[0-9a-f]+\) unpacks to sha256:[0-9a-f]{64}, but the image config says/,
  );
  t.true(err?.message.includes(wrong));
  t.regex(err?.message ?? '', /partly extracted/);

  const count = await t.throwsAsync(
    extract({ ...memoryImage([good]), diffIds: async () => [] }, dir),
    { instanceOf: ExtractError },
  );
  t.is(count?.code, 'DIFF_ID_MISMATCH');
  t.regex(count?.message ?? '', /0 diff_ids for 1 layers/);
});

test('the diff_id covers the padding and garbage after the end marker', async (t) => {
  const withTrailer = tar(SIMPLE, {
    trailer: Buffer.concat([Buffer.alloc(8192), Buffer.from('junk after the archive')]),
  });
  const dir = await tempDir(t);
  await extract(
    memoryImage([
      { ...plainLayer(withTrailer), mediaType: OCI_LAYER_GZIP, blob: gzipSync(withTrailer) },
    ]),
    dir,
  );
  t.deepEqual(await snapshot(dir), { 'hello.txt': '644 "hello\\n"' });
  // The same layer checked against the diff_id of the archive without its trailer.
  await refused(
    t,
    [{ blob: gzipSync(withTrailer), mediaType: OCI_LAYER_GZIP, diffId: digestBytes(tar(SIMPLE)) }],
    dir,
    'DIFF_ID_MISMATCH',
  );
});

// ---------------------------------------------------------------------------------------------
// Streaming

test('streams a large file to disk with bounded read-ahead', async (t) => {
  const dir = await tempDir(t);
  const size = 64 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const head = tarEntry({
    path: 'big',
    data: '',
    mutate: (h) => h.write(`${size.toString(8).padStart(11, '0')}\0`, 124),
  });
  const end = Buffer.alloc(1024);
  const hasher = createHasher();
  hasher.update(head);
  for (let i = 0; i < size / chunk.length; i++) hasher.update(chunk);
  hasher.update(end);
  const diffId = hasher.digest();

  let produced = 0;
  let maxAhead = 0;
  async function* source() {
    yield head;
    for (let i = 0; i < size / chunk.length; i++) {
      let written = 0;
      try {
        written = statSync(path.join(dir, 'big')).size;
      } catch {}
      maxAhead = Math.max(maxAhead, produced - written);
      produced += chunk.length;
      yield chunk;
    }
    yield end;
  }
  const layer = { mediaType: OCI_LAYER, digest: digestBytes('not checked here'), size: 0 };
  const result = await extract(
    {
      layers: [layer],
      diffIds: async () => [diffId],
      openLayer: async () => Readable.from(source(), { objectMode: false }),
    },
    dir,
  );
  t.is(result.entries, 1);
  t.is((await stat(path.join(dir, 'big'))).size, size);
  t.log(`most bytes read ahead of the disk: ${maxAhead}`);
  t.true(maxAhead < 8 * 1024 * 1024, `read ${maxAhead} bytes ahead of the disk`);
});

test('aborting rejects with AbortError and destroys the layer stream', async (t) => {
  const dir = await tempDir(t);
  const stream = new PassThrough();
  stream.write(tarEntry({ path: 'slow', data: '', mutate: (h) => h.write('00004000000\0', 124) }));
  stream.write(Buffer.alloc(4096));
  const controller = new AbortController();
  const options: ExtractOptions = { signal: controller.signal };
  const pending = extract(
    {
      layers: [{ mediaType: OCI_LAYER, digest: digestBytes('slow'), size: 0 }],
      diffIds: async () => [digestBytes('whatever')],
      openLayer: async () => {
        // Abort once extraction is under way: the entry's data never completes.
        setTimeout(() => controller.abort(), 20);
        return stream;
      },
    },
    dir,
    options,
  );
  // Like fetch(), extract rejects with the signal's reason (a DOMException by default).
  const err = await t.throwsAsync(pending, { any: true });
  t.is((err as Error | undefined)?.name, 'AbortError');
  t.true(stream.destroyed);
});

test('the layer stream is released when extraction fails', async (t) => {
  const dir = await tempDir(t);
  const image = memoryImage([gzLayer([{ path: '../evil', data: 'x'.repeat(100_000) }])]);
  await t.throwsAsync(extract(image, dir), { instanceOf: ExtractError });
  t.is(image.opened.length, 1);
  t.true(image.opened[0]?.destroyed);
});

test('random layer bytes fail only with ExtractError', async (t) => {
  const dir = await tempDir(t);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 2048 }),
      fc.constantFrom(OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, 'application/octet-stream'),
      async (bytes, mediaType) => {
        const blob = Buffer.from(bytes);
        try {
          await extract(
            memoryImage([{ blob, mediaType, diffId: digestBytes(blob) }]),
            path.join(dir, String(n++)),
          );
          return true;
        } catch (err) {
          return err instanceof ExtractError;
        }
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('src/extract sits below remote and copy: it imports only digests, the OCI model, errors and node', async (t) => {
  const dir = path.resolve(import.meta.dirname, '../../src/extract');
  const files = await readdir(dir);
  t.true(files.includes('extract.ts'));
  for (const file of files) {
    const text = await readFile(path.join(dir, file), 'utf8');
    for (const [, specifier] of text.matchAll(/\b(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      t.true(
        specifier?.startsWith('./') ||
          specifier?.startsWith('node:') ||
          specifier === '../digest/index.ts' ||
          specifier === '../oci/index.ts' ||
          specifier === '../errors.ts' ||
          specifier?.startsWith('../util/'),
        `${file} imports ${specifier}`,
      );
    }
  }
});
