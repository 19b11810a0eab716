import { spawn } from 'node:child_process';
import { cliCommand } from './cli.ts';

/** What a run on a pseudo-terminal printed (stdout and stderr, as the terminal got them). */
export interface TerminalResult {
  code: number | null;
  output: string;
}

/**
 * Run `ociferry ARGS...` on a real pseudo-terminal (util-linux `script`). `onOutput` sees the
 * output so far after every chunk and may type into the terminal (keystrokes, Ctrl-C).
 */
export async function onTerminal(
  args: readonly string[],
  options: {
    env?: NodeJS.ProcessEnv;
    onOutput?: (output: string, type: (keys: string) => void) => void;
  } = {},
): Promise<TerminalResult> {
  const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
  const cli = await cliCommand(args, options.env);
  const command = [cli.file, ...cli.args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {
      env: cli.env,
      stdio: 'pipe',
    });
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      options.onOutput?.(output, (keys) => child.stdin.write(keys));
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}
