// ava's configuration, and the temporary directory of one test run.
//
// Every run gets a directory of its own, on a RAM file system (/dev/shm) when the machine has one
// with room: the tests write many small files (registry storage, layouts, dockerd's data root,
// database copies), and on a disk file system the kernel's share of that work is about a ninth of
// the suite's CPU. Test processes and the programs they start get it as TMPDIR (where `TMPDIR` is
// already set, the run directory is made there) and as OCIFERRY_TEST_RUN_DIR, under which they keep
// what is made once per run (test/helpers/run-dir.ts). It is removed when ava exits, whatever the
// tests left in it; a run killed before that is cleaned up by the next one.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A RAM file system is used when it has this much room left. */
const RAM_FS_MIN_FREE = 4 * 1024 ** 3;
const TMPFS_MAGIC = 0x01021994;
const PREFIX = 'ociferry-run-';

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

/** Unmount what a killed dockerd left mounted under `dir` (deepest first), then remove it. */
function removeRunDir(dir) {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) spawnSync('umount', ['-l', point]);
  rmSync(dir, { recursive: true, force: true });
}

const base = process.env.TMPDIR || ramFileSystem() || tmpdir();
for (const name of readdirSync(base)) {
  const pid = Number(name.slice(PREFIX.length).split('-')[0]);
  if (name.startsWith(PREFIX) && pid > 0 && !isAlive(pid)) removeRunDir(join(base, name));
}
const runDir = mkdtempSync(join(base, `${PREFIX}${process.pid}-`));
// Others may pass through (PostgreSQL runs as its own user), not list it.
chmodSync(runDir, 0o711);
process.once('exit', () => removeRunDir(runDir));

export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=./test/loader/register.mjs'],
  workerThreads: false,
  timeout: '120s',
  concurrency: 4,
  environmentVariables: { TMPDIR: runDir, OCIFERRY_TEST_RUN_DIR: runDir },
};
