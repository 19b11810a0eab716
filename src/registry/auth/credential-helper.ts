import { spawn } from 'node:child_process';
import { OciferryError } from '../../errors.ts';
import type { Credential } from './credentials.ts';

/**
 * A `docker-credential-<name>` program could not be run, failed, timed out or answered nonsense.
 * The message quotes at most the first line of the helper's error output, never its credentials.
 */
export class CredentialHelperError extends OciferryError {
  /** Helper suffix: `gcloud` for `docker-credential-gcloud`. */
  readonly helper: string;

  constructor(helper: string, problem: string, options?: { cause?: unknown }) {
    super('CREDENTIAL_HELPER_FAILED', `docker-credential-${helper} ${problem}`, options);
    this.helper = helper;
  }
}

/** Options of one credential helper call. */
export interface HelperOptions {
  /** Environment of the helper; its `PATH` is where the program is looked up. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Kill the helper and fail after this many milliseconds. Default 10 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/** The reply of docker-credential-helpers when it holds nothing for a server. */
const NOT_FOUND = 'credentials not found in native keychain';
/** Replies are a few kilobytes of JSON; anything past this is a broken helper. */
const MAX_OUTPUT_BYTES = 1 << 20;
/** Helper names come from config files: a suffix of a program name, never a path. */
const HELPER_NAME = /^[\w.-]+$/;
/** docker's marker: a helper reply with this user name carries an identity (refresh) token. */
const TOKEN_USERNAME = '<token>';

interface HelperRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Ask `docker-credential-<name> get` for the credential of `serverUrl` (docker's key: the host, or
 * `https://index.docker.io/v1/` for Docker Hub). `undefined` when the helper holds none.
 */
export async function getWithHelper(
  name: string,
  serverUrl: string,
  options: HelperOptions = {},
): Promise<Credential | undefined> {
  const run = await runHelper(name, 'get', serverUrl, options);
  if (isNotFound(run)) return undefined;
  if (run.code !== 0) throw exitError(name, 'get', run);
  return parseReply(name, run.stdout);
}

/** Save a credential with `docker-credential-<name> store` (for `ociferry login`). */
export async function storeWithHelper(
  name: string,
  serverUrl: string,
  username: string,
  secret: string,
  options: HelperOptions = {},
): Promise<void> {
  const input = JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret });
  const run = await runHelper(name, 'store', input, options);
  if (run.code !== 0) throw exitError(name, 'store', run);
}

/** Forget a credential with `docker-credential-<name> erase` (for `ociferry logout`); absent is fine. */
export async function eraseWithHelper(
  name: string,
  serverUrl: string,
  options: HelperOptions = {},
): Promise<void> {
  const run = await runHelper(name, 'erase', serverUrl, options);
  if (run.code !== 0 && !isNotFound(run)) throw exitError(name, 'erase', run);
}

/** The `{Username, Secret}` of a successful `get`; `undefined` for an empty secret. */
function parseReply(name: string, stdout: string): Credential | undefined {
  let reply: unknown;
  try {
    reply = JSON.parse(stdout);
  } catch {
    throw new CredentialHelperError(name, 'get printed something that is not JSON');
  }
  const { Username: username, Secret: secret } = (reply ?? {}) as Record<string, unknown>;
  if (typeof secret !== 'string' || (username !== undefined && typeof username !== 'string')) {
    throw new CredentialHelperError(name, 'get printed JSON without a string Secret');
  }
  if (secret === '') return undefined;
  if (username === TOKEN_USERNAME) return { kind: 'identityToken', token: secret };
  return { kind: 'basic', username: username ?? '', password: secret };
}

function isNotFound(run: HelperRun): boolean {
  return run.stdout.includes(NOT_FOUND) || run.stderr.includes(NOT_FOUND);
}

/**
 * The error for a helper that exited unsuccessfully. Helpers built on docker-credential-helpers
 * print their error on stdout, so stdout is quoted when stderr is empty, unless it looks like JSON
 * (which could be a credential).
 */
function exitError(name: string, action: string, run: HelperRun): CredentialHelperError {
  const status = run.code === null ? `was killed by ${run.signal}` : `exited with code ${run.code}`;
  const line = firstLine(run.stderr) ?? firstLine(run.stdout);
  const said = line && !line.startsWith('{') ? `: ${line}` : '';
  return new CredentialHelperError(name, `${action} ${status}${said}`);
}

function firstLine(text: string): string | undefined {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '');
  return line && line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** Run `docker-credential-<name> <action>` with `input` on stdin; resolves with how it exited. */
function runHelper(
  name: string,
  action: string,
  input: string,
  { env = process.env, timeoutMs = DEFAULT_TIMEOUT_MS, signal }: HelperOptions,
): Promise<HelperRun> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    if (!HELPER_NAME.test(name)) {
      throw new CredentialHelperError(name, 'is not a valid credential helper name');
    }
    const child = spawn(`docker-credential-${name}`, [action], { env, stdio: 'pipe' });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      finish();
    };
    const fail = (error: unknown) =>
      settle(() => {
        child.kill('SIGKILL');
        child.stdout.destroy();
        child.stderr.destroy();
        reject(error);
      });
    const onAbort = () => fail(signal?.reason);
    const timer = setTimeout(
      () => fail(new CredentialHelperError(name, `${action} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    const collect = (chunks: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_OUTPUT_BYTES) {
        fail(
          new CredentialHelperError(name, `${action} printed more than ${MAX_OUTPUT_BYTES} bytes`),
        );
      } else {
        chunks.push(chunk);
      }
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));
    // A helper may exit without reading its input (EPIPE); its exit status says what happened.
    child.stdin.on('error', () => {});
    child.on('error', (error: NodeJS.ErrnoException) =>
      fail(new CredentialHelperError(name, spawnProblem(error), { cause: error })),
    );
    child.on('close', (code, exitSignal) =>
      settle(() =>
        resolve({
          code,
          signal: exitSignal,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        }),
      ),
    );
    child.stdin.end(input);
  });
}

function spawnProblem(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return 'is not installed (not found on PATH)';
  if (error.code === 'EACCES') return 'is not executable';
  return `could not be started (${error.code ?? error.message})`;
}
