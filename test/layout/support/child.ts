import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '../../..');

/** True when this machine lets us make private read-only bind mounts (`unshare -rm`). */
export const canMountReadOnly = spawnSync('unshare', ['-rm', 'true']).status === 0;

/**
 * Run a support script of this folder in a fresh `node --import tsx` process. With `readOnly`,
 * that directory is bind-mounted read-only for the child alone (private mount namespace).
 */
export function spawnSupport(
  script: string,
  args: readonly string[],
  options: { readOnly?: string } = {},
): ChildProcess {
  const command = [process.execPath, '--import', 'tsx', join(import.meta.dirname, script), ...args];
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
export async function succeeded(child: ChildProcess): Promise<string> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (data: Buffer) => {
    stdout += data.toString();
  });
  child.stderr?.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`child exited with ${code}: ${stderr}`);
  return stdout;
}
