import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { runCli } from '../../../src/cli/program.ts';
import { oncePerRun } from '../../helpers/run-dir.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

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
 * The CLI as `npm run build` makes it (scripts/bundle-cli.mjs, from the current sources), laid out
 * as installed (`dist/cli` next to package.json, and a node_modules that holds the package's
 * dependencies, not its devDependencies), built once per test run: the path of its bin.
 */
export async function builtCli(): Promise<string> {
  const dir = await oncePerRun('cli', async (dir) => {
    const out = path.join(dir, 'dist', 'cli');
    await mkdir(out, { recursive: true });
    await copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8'));
    for (const name of Object.keys(pkg.dependencies)) {
      const link = path.join(dir, 'node_modules', name);
      await mkdir(path.dirname(link), { recursive: true });
      await symlink(path.join(ROOT, 'node_modules', name), link);
    }
    await promisify(execFile)(process.execPath, [
      path.join(ROOT, 'scripts', 'bundle-cli.mjs'),
      out,
    ]);
  });
  return path.join(dir, 'dist', 'cli', 'bin.js');
}

/**
 * The command that runs `ociferry ARGS...` as a process: the built bin ({@link builtCli}) with
 * plain node, as an installed ociferry runs. Its V8 code cache is one of the test run's (its
 * commands start faster once a test ran them), unless `env` names one: never the user's.
 */
export async function cliCommand(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ file: string; args: string[]; env: NodeJS.ProcessEnv }> {
  const bin = await builtCli();
  const codeCache = path.join(path.dirname(bin), '..', '..', 'code-cache');
  return {
    file: process.execPath,
    args: [bin, ...args],
    env: 'OCIFERRY_CODE_CACHE' in env ? env : { ...env, OCIFERRY_CODE_CACHE: codeCache },
  };
}

/**
 * Run `ociferry ARGS...` as a process of its own ({@link cliCommand}). Each run costs a Node
 * start-up and a load of the CLI (about 0.1 s of CPU, 0.5 s from the TypeScript sources): prefer
 * {@link ociferry} unless the test is about the process.
 */
export async function ociferryProcess(
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliResult> {
  const command = await cliCommand(args, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(command.file, command.args, {
      env: command.env,
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
