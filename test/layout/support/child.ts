import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { digestBytes } from '../../../src/digest/index.ts';
import { bundledScripts } from '../../helpers/typescript.ts';

const repoRoot = resolve(import.meta.dirname, '../../..');

/** True when this machine lets us make private read-only bind mounts (`unshare -rm`). */
export const canMountReadOnly = spawnSync('unshare', ['-rm', 'true']).status === 0;

/** The scripts of this folder that run as children. */
const SCRIPTS = [
  'lock-holder.ts',
  'read-only-reader.ts',
  'slow-writer.ts',
  'tag-writer.ts',
] as const;

/**
 * Run a support script of this folder in a fresh node process, bundled once per test run. With
 * `readOnly`, that directory is bind-mounted read-only for the child alone (private mount
 * namespace).
 */
export async function spawnSupport(
  script: (typeof SCRIPTS)[number],
  args: readonly string[],
  options: { readOnly?: string } = {},
): Promise<ChildProcess> {
  const bundles = await bundledScripts(
    'layout-children',
    SCRIPTS.map((name) => join(import.meta.dirname, name)),
  );
  const command = [process.execPath, bundles[SCRIPTS.indexOf(script)] ?? '', ...args];
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  if (options.readOnly === undefined) {
    return spawn(command[0] ?? '', command.slice(1), { cwd: repoRoot, stdio });
  }
  const mountThenRun =
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"';
  const unshare = ['-rm', '--propagation', 'private', 'sh', '-c', mountThenRun, 'sh'];
  return spawn('unshare', [...unshare, options.readOnly, ...command], { cwd: repoRoot, stdio });
}

/** Wait for a child to exit 0 and return its stdout; reject with its stderr otherwise. */
export async function succeeded(started: ChildProcess | Promise<ChildProcess>): Promise<string> {
  const child = await started;
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (data: Buffer) => {
    stdout += data.toString();
  });
  child.stderr?.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  // 'close', not 'exit': the child's output may still be on its way when it has exited.
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`child exited with ${code}: ${stderr}`);
  return stdout;
}

/**
 * Start slow-writer.ts: it streams a blob of `size` bytes (all `fill`) into the layout `dir`,
 * 1 KiB every 20 ms. Resolves once its first bytes are in its temp file; rejects if it exits first.
 */
export async function startSlowWriter(
  dir: string,
  options: { size?: number; fill?: number } = {},
): Promise<{ child: ChildProcess; digest: string }> {
  const { size = 1024 * 1000, fill = 0x61 } = options;
  const digest = digestBytes(Buffer.alloc(size, fill));
  const child = await spawnSupport('slow-writer.ts', [dir, digest, String(size), String(fill)]);
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const [line] = (await Promise.race([
    once(child.stdout ?? child, 'data'),
    once(child, 'exit').then(() => [stderr]),
  ])) as [Buffer | string];
  if (line.toString() !== 'writing\n') throw new Error(`slow writer failed: ${stderr}`);
  return { child, digest };
}

/** Kill `child` with SIGKILL and wait until it is gone (nothing to do once it has exited). */
export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}
