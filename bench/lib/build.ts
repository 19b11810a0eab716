import { spawn } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');
/** Where bench/tsconfig.json emits (gitignored; inside the repo so `node_modules` resolves). */
const OUT_DIR = join(ROOT, '.bench', 'build');
/** The compiled runner: plain JavaScript for plain `node`. */
export const RUNNER = join(OUT_DIR, 'bench', 'runner.js');

/**
 * Compile bench/runner.ts and the src/ files it imports to JavaScript with the project's tsc, so
 * the measured process loads no TypeScript tooling. Type errors are shown but do not stop the
 * benchmark (tsc still emits; a broken build fails at run time instead).
 */
export async function buildRunner(): Promise<string> {
  await rm(OUT_DIR, { recursive: true, force: true });
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const child = spawn(tsc, ['-p', join(ROOT, 'bench', 'tsconfig.json')], {
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
  if (code !== 0)
    process.stderr.write(`warning: tsc reported errors building the runner:\n${output}`);
  await access(RUNNER).catch(() => {
    throw new Error(`building ${RUNNER} failed:\n${output}`);
  });
  return RUNNER;
}
