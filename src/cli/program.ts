import { setMaxListeners } from 'node:events';
import { Command, CommanderError, Option } from 'commander';
import { blobCommand } from './commands/blob.ts';
import { cacheCommands } from './commands/cache.ts';
import { copyCommand } from './commands/copy.ts';
import { indexCommand } from './commands/index-create.ts';
import { inspectCommand } from './commands/inspect.ts';
import { loginCommands } from './commands/login.ts';
import type { Run } from './commands/run.ts';
import { tagsCommand } from './commands/tags.ts';
import { CliContext, type GlobalOptions } from './context.ts';
import { EXIT_INTERRUPTED, reportError } from './errors.ts';
import { type CliIO, processIO } from './io.ts';
import { PROGRESS_MODES } from './progress/index.ts';
import { packageVersion } from './version.ts';

/** Exit status of a usage error (bad flag, missing operand, invalid reference). */
const EXIT_USAGE = 2;

/**
 * Run the CLI with `argv` (the arguments after the program name) and resolve with the exit
 * status: 0 done, 1 the operation failed, 2 usage error, 130 interrupted.
 */
export async function runCli(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let status = 0;
  const run: Run = async (command, task) => {
    const controller = new AbortController();
    // Every request and blob of a copy listens on this one signal.
    setMaxListeners(0, controller.signal);
    let interrupts = 0;
    const onInterrupt = () => {
      interrupts++;
      if (interrupts > 1) process.exit(EXIT_INTERRUPTED);
      controller.abort(new Error('interrupted'));
    };
    process.on('SIGINT', onInterrupt);
    const ctx = new CliContext(command.optsWithGlobals<GlobalOptions>(), io, controller.signal);
    try {
      await task(ctx);
    } catch (error) {
      if (error instanceof CommanderError) throw error;
      status = await reportError(error, ctx, [commandPath(command), ...ctx.subjects].join(' '));
    } finally {
      process.removeListener('SIGINT', onInterrupt);
      await ctx.close();
    }
  };
  const program = createProgram(io, run);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    if (error.code !== 'commander.help') {
      const usage = ['ociferry', ...commandWords(program, argv), '--help'].join(' ');
      io.stderr.write(`hint: run '${usage}' for usage\n`);
    }
    return EXIT_USAGE;
  }
  return status;
}

/** The commander program: global flags and every command. */
function createProgram(io: CliIO, run: Run): Command {
  const program = new Command('ociferry')
    .description(
      'Copy images and indexes between registries and OCI layouts with cross-repository mounts and streamed transfers, inspect them without pulling, build indexes from remote images.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--plain-http', 'use plain HTTP for every registry (default: only loopback hosts)')
    .option('--insecure', 'skip TLS certificate verification')
    .addOption(
      new Option('--progress <mode>', 'progress display: bars on a terminal, else lines')
        .choices(PROGRESS_MODES)
        .default('auto'),
    )
    .option('-q, --quiet', 'no progress and no status messages')
    .option('--json', 'print one JSON object on stdout (no progress)')
    .option('--debug', 'log every HTTP exchange and show stack traces')
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride()
    .addHelpText(
      'after',
      `
References: host[:port]/repo[:tag][@digest] (docker.io/library/ is implied for Docker Hub
names: alpine is docker.io/library/alpine) or oci:DIR[:tag][@digest] for an OCI layout.
Credentials come from the docker config (auths, credHelpers, credsStore), REGISTRY_AUTH_FILE
and containers auth.json, as docker, podman and skopeo read them.

Exit status: 0 done, 1 the operation failed, 2 usage error, 130 interrupted.

Examples:
  $ ociferry inspect docker.io/library/alpine:3.20
  $ ociferry copy ghcr.io/org/app:1.2 registry.example/app:1.2
  $ ociferry index create registry.example/app:1.2 registry.example/app:1.2-amd64 registry.example/app:1.2-arm64
  $ ociferry blob get localhost:5000/app@sha256:… -o blob.bin
  $ ociferry tags --json ghcr.io/org/app
  $ ociferry cache check --from type=registry,ref=ghcr.io/org/app:cache sha256:…
  $ ociferry cache copy --from ghcr.io/org/app:cache --to type=local,dest=./cache,mode=max`,
    );
  inspectCommand(program, run);
  copyCommand(program, run);
  indexCommand(program, run);
  blobCommand(program, run);
  tagsCommand(program, run);
  cacheCommands(program, run);
  loginCommands(program, run);
  return program;
}

/** `index create` for the `create` subcommand of `index`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The command words at the start of `argv` (options skipped), e.g. `index create`. */
function commandWords(program: Command, argv: readonly string[]): string[] {
  const words: string[] = [];
  let current = program;
  for (const arg of argv) {
    if (arg.startsWith('-')) continue;
    const next = current.commands.find((c) => c.name() === arg);
    if (!next) break;
    words.push(arg);
    current = next;
  }
  return words;
}
