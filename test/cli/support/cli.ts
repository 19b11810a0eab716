import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { ExecutionContext } from 'ava';
import { runCli } from '../../../src/cli/program.ts';
import { IMPORT_TYPESCRIPT } from '../../helpers/typescript.ts';

/** The CLI entry point, run from its TypeScript sources. */
export const CLI_MAIN = path.resolve(import.meta.dirname, '../../../src/cli/main.ts');

/** How a CLI run ended. */
export interface CliResult {
  /** The exit status: what `runCli` returned, or the process's (null when a signal ended it). */
  code: number | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

/** Options of {@link ociferry} and {@link ociferryProcess}. */
export interface CliOptions {
  /** Environment (see {@link isolatedEnv}); the test process's when omitted. */
  env?: NodeJS.ProcessEnv;
  /** Bytes for stdin; stdin is closed empty when omitted. */
  input?: string | Buffer;
}

/** A stream that keeps what is written to it; not a terminal. */
class Capture extends Writable {
  readonly chunks: Buffer[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk);
    done();
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Run `ociferry ARGS...` in the test process: `runCli` with its own stdout, stderr, stdin (not
 * terminals) and environment, as the CLI runs them in a process of its own. What only a process
 * shows (exit status set by `main`, signals, terminals, `NODE_*` variables read at start-up, the
 * bundle) needs {@link ociferryProcess}.
 */
export async function ociferry(
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const input = options.input === undefined ? [] : [Buffer.from(options.input)];
  const code = await runCli(args, {
    stdout,
    stderr,
    stdin: Readable.from(input),
    env: options.env ?? process.env,
  });
  const stdoutBytes = stdout.bytes();
  return {
    code,
    stdout: stdoutBytes.toString('utf8'),
    stdoutBytes,
    stderr: stderr.bytes().toString('utf8'),
  };
}

/**
 * Run `ociferry ARGS...` as a process of its own (`node src/cli/main.ts` with the test loader, or a
 * bundle with plain node). Each run costs a Node start-up and a TypeScript load (about a second
 * of CPU): prefer {@link ociferry} unless the test is about the process.
 */
export function ociferryProcess(
  args: readonly string[],
  options: CliOptions & {
    /** A bundled CLI to run with plain node instead of the sources. */
    bundle?: string;
  } = {},
): Promise<CliResult> {
  const main = options.bundle ? [options.bundle] : [IMPORT_TYPESCRIPT, CLI_MAIN];
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
