import { createInterface } from 'node:readline/promises';
import type { CliIO } from './io.ts';

/**
 * Ctrl-C at a prompt: the terminal does not send SIGINT while it is in raw mode (or read by
 * readline), so send it ourselves and let the run's handler abort as for any other Ctrl-C.
 */
function interrupt(): void {
  process.kill(process.pid, 'SIGINT');
}

/** Ask for one line on the terminal (the question goes to stderr); `signal` abandons it. */
export async function promptLine(
  io: CliIO,
  question: string,
  signal: AbortSignal,
): Promise<string> {
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: true });
  rl.on('SIGINT', interrupt);
  try {
    return await rl.question(question, { signal });
  } finally {
    rl.close();
  }
}

/** Ask for a secret on the terminal without echoing it; `signal` abandons it. */
export function promptSecret(io: CliIO, question: string, signal: AbortSignal): Promise<string> {
  const { stdin, stderr } = io;
  return new Promise((resolve, reject) => {
    let secret = '';
    const finish = () => {
      stdin.removeListener('data', onData);
      signal.removeEventListener('abort', finish);
      stdin.setRawMode?.(false);
      stdin.pause();
      stderr.write('\n');
      if (signal.aborted) reject(signal.reason);
      else resolve(secret);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish();
        if (char === '\u0003') return interrupt();
        if (char === '\u007f' || char === '\b') secret = secret.slice(0, -1);
        else secret += char;
      }
    };
    signal.addEventListener('abort', finish, { once: true });
    stdin.setRawMode?.(true);
    stderr.write(question);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** All of stdin as text, without one trailing newline (`--password-stdin`, as docker reads it). */
export async function readStdin(io: CliIO): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
