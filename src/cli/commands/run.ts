import type { Command } from 'commander';
import type { CliContext } from '../context.ts';

/**
 * Runs a command's work with a fresh {@link CliContext}: Ctrl-C aborts it, a failure is
 * reported as one error line plus a hint, and the exit status is recorded.
 */
export type Run = (command: Command, task: (ctx: CliContext) => Promise<void>) => Promise<void>;
