import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';

/** The CLI entry point, run from source through tsx. */
export const CLI_MAIN = path.resolve(import.meta.dirname, '../../../src/cli/main.ts');

/** How a CLI run ended. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

/** Options of {@link ociferry}. */
export interface CliOptions {
  /** Environment (see {@link isolatedEnv}); the test process's when omitted. */
  env?: NodeJS.ProcessEnv;
  /** Bytes for stdin; stdin is closed empty when omitted. */
  input?: string | Buffer;
  /** A bundled CLI to run with plain node instead of the sources through tsx. */
  bundle?: string;
}

/** Run `ociferry ARGS...` as a subprocess (`node --import tsx src/cli/main.ts`). */
export function ociferry(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const main = options.bundle ? [options.bundle] : ['--import', 'tsx', CLI_MAIN];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...main, ...args], {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(stdout);
      resolve({
        code,
        stdout: stdoutBytes.toString('utf8'),
        stdoutBytes,
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A temporary directory removed when the test ends. */
export async function tempDir(t: ExecutionContext, prefix = 'ociferry-cli-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * An environment whose credential sources are all inside a fresh temp directory: `HOME`,
 * `DOCKER_CONFIG` (`<dir>/docker`) and `XDG_CONFIG_HOME`; no `REGISTRY_AUTH_FILE`,
 * `XDG_RUNTIME_DIR` or `DOCKER_AUTH_CONFIG` from the machine running the tests.
 */
export async function isolatedEnv(
  t: ExecutionContext,
): Promise<{ env: NodeJS.ProcessEnv; dir: string; dockerConfig: string }> {
  const dir = await tempDir(t);
  const {
    REGISTRY_AUTH_FILE: _a,
    XDG_RUNTIME_DIR: _b,
    DOCKER_AUTH_CONFIG: _c,
    ...rest
  } = process.env;
  const dockerConfig = path.join(dir, 'docker');
  const env = {
    ...rest,
    HOME: dir,
    DOCKER_CONFIG: dockerConfig,
    XDG_CONFIG_HOME: path.join(dir, 'config'),
  };
  return { env, dir, dockerConfig };
}
