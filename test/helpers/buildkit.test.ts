import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  BUILDKIT_INSTALL_COMMAND,
  BuildkitUnavailableError,
  buildkitForTests,
  buildSteps,
  isStaticExecutable,
  parseBuildProgress,
  resolveBuildkitTools,
  startBuildkit,
} from './buildkit.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

// Before any test is declared: ava starts the file on the tick after the first declaration.
const { buildkit, reason } = await buildkitForTests(test);
const real = buildkit ? test.serial : test.skip;
let registry: TestRegistry;
if (buildkit) {
  test.before(async () => {
    registry = await startRegistry();
  });
  test.after.always(() => registry?.stop());
}

/** Plain progress of a `--cache-from` build of docker 20.10, vertices interleaved as printed. */
const PROGRESS = `#1 [internal] load build definition from Dockerfile
#1 sha256:a56d30b98fe8be3144408ce62742c27a98eef2578562d7c1bb87d106f812fb47
#1 transferring dockerfile: 140B done
#1 DONE 0.0s

#10 importing cache manifest from 127.0.0.1:5123/s1:v1
#10 sha256:af177a99d22f3428043cf33d69a28767dd2f22483ffb5743d5a3f4595d86c4cb
#10 DONE 0.0s

#4 [builder 1/3] FROM 127.0.0.1:5123/base:1@sha256:ffc9979f52d79fec3f511ea94bac548eb020f18d006ae048b12d87357a3ef9bd
#4 sha256:43a514da91a95e74324a7e8c6b7fdff6ed3da6653cc98bde5e7b3a7b3ab08f39
#4 resolve 127.0.0.1:5123/base:1@sha256:ffc9979f52d79fec3f511ea94bac548eb020f18d006ae048b12d87357a3ef9bd done
#4 DONE 0.0s

#6 [builder 2/3] COPY a.txt /a.txt
#6 sha256:6e307933dc196791a0e69307ec548c8650a023630f7c19c8732cfca0ba454a33
#6 CACHED

#7 [stage-1 2/2] RUN cat /a.txt > /b
#7 sha256:62ea7e820849cab9eb3c1843c5644fcb4bfa9267032046153de8c649ff8b9519
#7 pulling sha256:63c4c12a222802f55b48b0da32447f4b9f48da9e878606040a7ae11204cd201f 0.0s done

#6 [builder 2/3] COPY a.txt /a.txt
#6 0.104 not a state: CACHED

#7 [stage-1 2/2] RUN cat /a.txt > /b
#7 DONE 0.1s

#8 [5/5] RUN false
#8 sha256:b985fabf4ebed7f0e0b296ab88726bfa1006c929a2efdd2d4102eea653b78b88
#8 ERROR: executor failed running [/bin/sh -c false]: exit code: 1
`;

test('parseBuildProgress reads each vertex name, digest and state once', (t) => {
  const vertices = parseBuildProgress(PROGRESS);
  t.deepEqual(
    vertices.map((v) => [v.id, v.name, v.cached, v.done, v.error]),
    [
      [1, '[internal] load build definition from Dockerfile', false, true, undefined],
      [10, 'importing cache manifest from 127.0.0.1:5123/s1:v1', false, true, undefined],
      [
        4,
        '[builder 1/3] FROM 127.0.0.1:5123/base:1@sha256:ffc9979f52d79fec3f511ea94bac548eb020f18d006ae048b12d87357a3ef9bd',
        false,
        true,
        undefined,
      ],
      [6, '[builder 2/3] COPY a.txt /a.txt', true, false, undefined],
      [7, '[stage-1 2/2] RUN cat /a.txt > /b', false, true, undefined],
      [
        8,
        '[5/5] RUN false',
        false,
        false,
        'ERROR: executor failed running [/bin/sh -c false]: exit code: 1',
      ],
    ],
  );
  t.is(
    vertices[3]?.digest,
    'sha256:6e307933dc196791a0e69307ec548c8650a023630f7c19c8732cfca0ba454a33',
  );
  t.deepEqual(
    buildSteps(vertices).map((s) => [s.stage, s.index, s.count, s.instruction]),
    [
      [
        'builder',
        1,
        3,
        'FROM 127.0.0.1:5123/base:1@sha256:ffc9979f52d79fec3f511ea94bac548eb020f18d006ae048b12d87357a3ef9bd',
      ],
      ['builder', 2, 3, 'COPY a.txt /a.txt'],
      ['stage-1', 2, 2, 'RUN cat /a.txt > /b'],
      ['', 5, 5, 'RUN false'],
    ],
  );
});

test('isStaticExecutable tells a static busybox from a dynamically linked program', async (t) => {
  t.false(await isStaticExecutable(process.execPath));
  t.false(await isStaticExecutable('/nonexistent/busybox'));
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-elf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'script');
  await writeFile(script, '#!/bin/sh\n');
  t.false(await isStaticExecutable(script));
  // An ELF64 header with no program headers: no interpreter, so static.
  const elf = Buffer.alloc(64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf[5] = 1;
  elf.writeBigUInt64LE(64n, 32);
  elf.writeUInt16LE(56, 54);
  await writeFile(join(dir, 'elf'), elf);
  t.true(await isStaticExecutable(join(dir, 'elf')));
});

test('resolveBuildkitTools names the install command when it may not install', async (t) => {
  const error = await t.throwsAsync(
    resolveBuildkitTools({ env: { PATH: '/nonexistent' }, canInstall: false }),
    { instanceOf: BuildkitUnavailableError },
  );
  t.is(error?.code, 'BUILDKIT_UNAVAILABLE');
  t.regex(error?.message ?? '', /dockerd/);
  t.true(error?.message.includes(BUILDKIT_INSTALL_COMMAND));
});

test('resolveBuildkitTools reports a failed install', async (t) => {
  let installs = 0;
  const error = await t.throwsAsync(
    resolveBuildkitTools({
      env: { PATH: '/nonexistent' },
      canInstall: true,
      install: async () => {
        installs++;
        throw new Error('apt-get: no network');
      },
    }),
    { instanceOf: BuildkitUnavailableError },
  );
  t.is(installs, 1);
  t.regex(error?.message ?? '', /failed/);
});

real('builds report CACHED steps from the local cache, and wipe forgets them', async (t) => {
  if (!buildkit) return t.fail(reason);
  const base = `${registry.host}/base:1`;
  t.regex(await buildkit.baseImage(base, { 'etc/motd': 'hi\n' }), /^sha256:[0-9a-f]{64}$/);
  await buildkit.wipe();
  const context = await mkdtemp(join(tmpdir(), 'ociferry-context-'));
  t.teardown(() => rm(context, { recursive: true, force: true }));
  await writeFile(join(context, 'a.txt'), 'a\n');
  await writeFile(
    join(context, 'Dockerfile'),
    `FROM ${base}\nCOPY a.txt /a.txt\nRUN cat /etc/motd /a.txt > /b\n`,
  );
  const steps = async () =>
    (await buildkit.build({ context, tag: `${registry.host}/app:v1` })).steps
      // BuildKit prints vertices as they finish; cached ones in any order.
      .sort((a, b) => a.index - b.index)
      .map((s) => [
        s.index,
        // After a wipe the base comes from the registry, pinned by digest.
        s.instruction.replace(/@sha256:[0-9a-f]{64}$/, ''),
        s.cached,
      ]);
  const cold = [
    [1, `FROM ${base}`, false],
    [2, 'COPY a.txt /a.txt', false],
    [3, 'RUN cat /etc/motd /a.txt > /b', false],
  ];
  t.deepEqual(await steps(), cold);
  t.deepEqual(await steps(), [
    [1, `FROM ${base}`, false],
    [2, 'COPY a.txt /a.txt', true],
    [3, 'RUN cat /etc/motd /a.txt > /b', true],
  ]);
  t.regex(await buildkit.push(`${registry.host}/app:v1`), /^sha256:[0-9a-f]{64}$/);
  await buildkit.wipe();
  t.is((await buildkit.docker(['image', 'ls', '--quiet'])).stdout, '');
  t.deepEqual(await steps(), cold);
});

real('a dockerd that cannot use a storage driver falls back to the next', async (t) => {
  if (!buildkit) return t.fail(reason);
  const fallback = await startBuildkit({ storageDrivers: ['no-such-driver', 'vfs'] });
  t.teardown(() => fallback.stop());
  t.is(fallback.storageDriver, 'vfs');
  const info = await fallback.docker(['info', '--format', '{{.Driver}}']);
  t.is(info.stdout.trim(), 'vfs');
  t.regex(await fallback.log(), /--storage-driver no-such-driver/);
});

real('stop ends dockerd and its containerd and removes the directory', async (t) => {
  if (!buildkit) return t.fail(reason);
  const own = await startBuildkit();
  t.is((await own.docker(['info', '--format', '{{.ID}}'])).code, 0);
  const dockerdPid = Number(await readFile(join(own.dir, 'docker.pid'), 'utf8'));
  const containerdPid = Number(
    await readFile(join(own.dir, 'exec', 'containerd', 'containerd.pid'), 'utf8'),
  );
  await own.stop();
  const alive = (p: number) => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  };
  t.false(alive(dockerdPid));
  t.false(alive(containerdPid));
  await t.throwsAsync(access(own.dir));
});
