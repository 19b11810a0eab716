import type { Readable, Writable } from 'node:stream';

/** A writable the CLI prints to; terminals have `isTTY` and `columns`. */
export type OutputStream = Writable & { readonly isTTY?: boolean; readonly columns?: number };

/** A readable the CLI reads secrets from; terminals can turn echo off with `setRawMode`. */
export type InputStream = Readable & {
  readonly isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
};

/** The process streams and environment a CLI run uses; tests may pass their own. */
export interface CliIO {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly stdin: InputStream;
  readonly env: NodeJS.ProcessEnv;
}

/** The real process streams and environment. */
export function processIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
