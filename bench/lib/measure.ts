import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Resources one command used, as GNU time and our own clock saw them. */
export interface Measurement {
  /** Wall time from spawn to exit, measured here (ms). */
  readonly wallMs: number;
  /** User CPU of the command and the children it waited for (ms). */
  readonly userMs: number;
  /** System CPU (ms). */
  readonly sysMs: number;
  /** Peak resident set size (KiB). */
  readonly maxRssKiB: number;
  readonly stdout: string;
}

/** GNU time; Debian package `time`. */
export const TIME_BIN = '/usr/bin/time';
const STDERR_TAIL = 4000;

/** Fail early, with the install command, when GNU time is missing. */
export async function requireGnuTime(): Promise<void> {
  try {
    await access(TIME_BIN);
  } catch {
    throw new Error(`${TIME_BIN} is missing: install GNU time with 'apt-get install -y time'`);
  }
}

/**
 * Run `command` under GNU time and return its wall time, CPU time (user + sys) and peak RSS.
 * Fails with the stderr tail when the command exits non-zero.
 */
export async function measure(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<Measurement> {
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-bench-time-'));
  const report = join(dir, 'time');
  try {
    const child = spawn(TIME_BIN, ['-o', report, '-f', '%e %U %S %M', command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    const started = process.hrtime.bigint();
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    if (code !== 0) {
      throw new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr}`);
    }
    const fields = (await readFile(report, 'utf8')).trim().split('\n').at(-1)?.split(' ') ?? [];
    const [, user, sys, rss] = fields.map(Number);
    if (user === undefined || sys === undefined || rss === undefined) {
      throw new Error(`unexpected ${TIME_BIN} output: ${fields.join(' ')}`);
    }
    return { wallMs, userMs: user * 1000, sysMs: sys * 1000, maxRssKiB: rss, stdout };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
