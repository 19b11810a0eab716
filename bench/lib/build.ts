import { spawn } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';

/** Repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');
/** The CLI as `npm run build` emits it: what `npm install -g` puts on the PATH. */
export const CLI = join(ROOT, 'dist', 'cli', 'bin.js');

/**
 * Build the package (`npm run build`: tsc, then the CLI bundle) so that the measured process is
 * the real `ociferry` executable, started through its shebang with the node flags it ships with,
 * and loads no TypeScript tooling.
 */
export async function buildCli(): Promise<string> {
  const child = spawn('npm', ['run', '--silent', 'build'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
  }
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`npm run build failed:\n${output}`);
  await chmod(CLI, 0o755);
  return CLI;
}
