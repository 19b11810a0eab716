// ava's configuration, and the temporary directory of one test run.
//
// Every run gets a directory of its own, on a RAM file system (/dev/shm) when the machine has one
// with room: the tests write many small files (registry storage, layouts, dockerd's data root,
// database copies), and on a disk file system the kernel's share of that work is about a ninth of
// the suite's CPU. Test processes and the programs they start get it as TMPDIR (where `TMPDIR` is
// already set, the run directory is made there) and as OCIFERRY_TEST_RUN_DIR, under which they keep
// what is made once per run (test/helpers/run-dir.ts). It is removed when ava exits, whatever the
// tests left in it and whatever still runs from it; a run killed before that is cleaned up by the
// next one.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import {
  GROUPS_DIR,
  groupFile,
  groupModules,
  planGroups,
  testName,
  writeGroupFiles,
} from './test/loader/groups.mjs';
import { prepare } from './test/loader/javascript.mjs';
import { TREE_ENV, treePath, writeTree } from './test/loader/tree.mjs';

/** A RAM file system is used when it has this much room left. */
const RAM_FS_MIN_FREE = 4 * 1024 ** 3;
const TMPFS_MAGIC = 0x01021994;
const PREFIX = 'ociferry-run-';
/**
 * What ava runs that takes longest, longest first (measured on 2 cores): test files by their path
 * under test/ without `.test.ts`, and groups of test files (test/loader/groups.mjs) by theirs.
 * They start first, so the run does not end waiting on one of them while the machine is
 * otherwise idle. Files that wait more than they compute (real BuildKit builds, PostgreSQL,
 * timeouts) are among them. A file of this list runs alone in a whole-suite run.
 */
const SLOWEST = [
  'cache/buildkit-oracle',
  'service/service',
  'cache',
  'cache/buildkit-lifecycle',
  'cache/service',
  'cache/buildkit-interop',
  'cli',
  'service/serve',
  'service/retention',
  'copy/copy',
  'remote',
  'registry',
  'cache/service-buildkit',
  'cache/service-lifecycle',
  'helpers/buildkit',
  'registry/http',
  'cli/package',
  'reference/properties',
  'extract/extract',
  'cache/copy',
  'registry/uploads',
  'cli/progress/terminal',
  'service/client',
  'registry/auth/challenge',
  'cli/bundle',
  'registry/auth/realm',
];
/** Files not in the list that are likely slow too (by name): the cache service's and real BuildKit's. */
const LIKELY_SLOW = /service|buildkit/;

function ramFileSystem() {
  try {
    const fs = statfsSync('/dev/shm');
    if (fs.type === TMPFS_MAGIC && fs.bavail * fs.bsize >= RAM_FS_MIN_FREE) return '/dev/shm';
  } catch {
    // None here.
  }
  return undefined;
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** PIDs of the processes whose command line names `dir`: what the tests started there. */
function processesUnder(dir) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${dir}/`)) pids.push(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function signal(pid, name) {
  try {
    process.kill(pid, name);
  } catch {
    // Gone.
  }
}

/**
 * Remove a run directory and what runs from it: a test process that was killed leaves its
 * daemons (dockerd and its containerd, PostgreSQL, registries) running, and dockerd's mounts.
 * They get SIGTERM, then SIGKILL after 5 s; mounts are unmounted deepest first.
 */
function removeRunDir(dir) {
  let pids = processesUnder(dir);
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + 5000;
  while (pids.length > 0 && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    pids = pids.filter(isAlive);
  }
  for (const pid of pids) signal(pid, 'SIGKILL');
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) spawnSync('umount', ['-l', point]);
  rmSync(dir, { recursive: true, force: true });
}

/** ava's options that take a value, as the command line may give them (`--match x`). */
const VALUE_OPTIONS = new Set([
  '--match',
  '-m',
  '--timeout',
  '-T',
  '--concurrency',
  '-c',
  '--config',
  '--node-arguments',
]);

/**
 * Whether ava watches the files (`--watch`): the tree is written once, at the start, so a watching
 * ava's test processes load the TypeScript through the module hooks instead, edits and all.
 */
const watching = process.argv.includes('--watch') || process.argv.includes('-w');

/** Whether ava's command line names test files (or a subcommand): they run as ava runs them. */
function namesFiles(args) {
  for (let i = 0; i < args.length; i++) {
    if (VALUE_OPTIONS.has(args[i])) i++;
    else if (!args[i].startsWith('-')) return true;
  }
  return false;
}

/** A test file that keeps a core busy for long: it runs alone, and among the first. */
const isSlow = (file) => SLOWEST.includes(testName(file)) || LIKELY_SLOW.test(basename(file));

/**
 * Make the run's directory, its tree and, for a run of the whole suite, its groups. The test
 * processes get the directory and the tree as environment variables.
 */
async function prepareRun() {
  const base = process.env.TMPDIR || ramFileSystem() || tmpdir();
  for (const name of readdirSync(base)) {
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (!name.startsWith(PREFIX) || !(pid > 0) || isAlive(pid)) continue;
    try {
      removeRunDir(join(base, name));
    } catch {
      // Another run starting at the same time removes it.
    }
  }
  // The TypeScript the tests and the processes they start load, made into JavaScript before they start.
  const prepared = await prepare(
    ['src', 'test', 'fixtures'].flatMap((dir) =>
      readdirSync(join(import.meta.dirname, dir), { recursive: true })
        .filter((name) => name.endsWith('.ts'))
        .map((name) => join(import.meta.dirname, dir, name))
        .filter((file) => !file.startsWith(`${GROUPS_DIR}/`)),
    ),
  );
  const javascript = prepared.map(({ file, kept }) => ({ file, code: readFileSync(kept, 'utf8') }));

  // Node builds its whole root certificate store when a process starts with NODE_EXTRA_CA_CERTS set
  // (40-60 ms of CPU; some machines set it for every process). The tests reach only loopback
  // servers, whose certificates they give explicitly, so the test processes and what they start
  // go without it: about 190 node processes a run.
  delete process.env.NODE_EXTRA_CA_CERTS;

  const runDir = mkdtempSync(join(base, `${PREFIX}${process.pid}-`));
  // Others may pass through (PostgreSQL runs as its own user), not list it.
  chmodSync(runDir, 0o711);
  process.once('exit', () => removeRunDir(runDir));

  // A run of the whole suite runs the test files in groups (test/loader/groups.mjs).
  const groups =
    watching || namesFiles(process.argv.slice(2))
      ? undefined
      : planGroups(
          javascript.filter(
            ({ file }) =>
              file.endsWith('.test.ts') && file.startsWith(join(import.meta.dirname, 'test')),
          ),
          isSlow,
        );

  // What the test processes load (test/loader/tree.mjs).
  const tree = join(runDir, 'tree');
  writeTree(
    javascript,
    tree,
    new Map(
      groups?.flatMap(({ members }) => members.map(({ file, titlePrefix }) => [file, titlePrefix])),
    ),
  );
  if (groups) {
    writeGroupFiles(groups);
    for (const { module, code } of groupModules(groups, (file) => treePath(tree, file))) {
      mkdirSync(dirname(module), { recursive: true });
      writeFileSync(module, code);
    }
  }

  return { runDir, tree, groups };
}

// ava runs with its defaults, silently, when loading this file fails with ENOENT (it takes that for
// a missing file): any failure here is made one that ava reports.
const { runDir, tree, groups } = await prepareRun().catch((error) => {
  throw new Error(`preparing the test run failed: ${error.message}`, { cause: error });
});

/**
 * Where `file` (a test file, or a group's file) starts in the run: the slowest first, then the
 * others likely slow, then the groups of several files (biggest first: a group's files run in one
 * process, on one core), then the rest.
 */
function rank(file) {
  const group = groups?.find(({ name }) => groupFile(name) === file);
  const name = group ? group.name : testName(file);
  const index = SLOWEST.indexOf(name);
  if (index !== -1) return index;
  if (LIKELY_SLOW.test(basename(name))) return SLOWEST.length;
  if (group && group.members.length > 1) return SLOWEST.length + 2 - 1 / group.members.length;
  return SLOWEST.length + 2;
}

export default {
  files: groups
    ? groups.map(({ name }) => relative(import.meta.dirname, groupFile(name)))
    : ['test/**/*.test.ts'],
  // ava requires a test file (`commonjs`), and test/loader/tree-require.mjs, loaded first, makes
  // that import the file's JavaScript from the run's tree: ES modules, with no loader thread.
  ...(watching
    ? { extensions: { ts: 'module' }, require: ['./test/loader/register.mjs'] }
    : { extensions: { ts: 'commonjs' }, require: ['./test/loader/tree-require.mjs'] }),
  workerThreads: false,
  // WebAssembly (PGlite's Postgres, undici's HTTP parser) is compiled by the baseline compiler
  // only: test processes are short, and optimising PGlite's 9 MB module cost each process that
  // opens a database 0.2-0.3 s of CPU more (the cache service's test files: 41 CPU-s instead of
  // 29). Processes the tests start set it themselves where it matters.
  nodeArguments: ['--liftoff-only'],
  timeout: '120s',
  // Four of what ava runs at once on 2 cores: the slow files wait on dockerd, PostgreSQL and timers
  // much of the time, and a group keeps a core busy by itself. Measured alternately on an idle
  // 2-core machine, a whole-suite run took 78-89 s with 4 at once (148-170 CPU-s), 94-96 s with 6
  // (180-185 CPU-s), 82 s with 3 and 86 s with 5.
  concurrency: 4,
  environmentVariables: { TMPDIR: runDir, OCIFERRY_TEST_RUN_DIR: runDir, [TREE_ENV]: tree },
  sortTestFiles: (a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0),
};
