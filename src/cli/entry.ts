import { EXIT_FAILURE } from './errors.ts';
import { runCli } from './program.ts';

/** Run the CLI on this process's arguments and set its exit status. */
export async function main(): Promise<void> {
  // A reader that stops early (`ociferry blob get … | head -c 10`) is not an error to report.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(EXIT_FAILURE);
  });
  process.exitCode = await runCli(process.argv.slice(2));
}
