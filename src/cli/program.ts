import { setMaxListeners } from 'node:events';
import { Command, CommanderError, Option } from 'commander';
import { usageError } from './args.ts';
import { blobCommand } from './commands/blob.ts';
import { cacheCommands } from './commands/cache.ts';
import { copyCommand } from './commands/copy.ts';
import { gcCommand } from './commands/gc.ts';
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
/** Exit status of a command stopped by SIGTERM (128 + 15), as a shell reports a killed process. */
const EXIT_TERMINATED = 143;

/**
 * Run the CLI with `argv` (the arguments after the program name) and resolve with the exit
 * status: 0 done, 1 the operation failed, 2 usage error, 130 interrupted (SIGINT), 143
 * terminated (SIGTERM). Both signals stop the command the same way: its signal aborts, uploads
 * in flight are cancelled and temp files removed before the exit.
 */
export async function runCli(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let status = 0;
  const run: Run = async (command, task) => {
    const controller = new AbortController();
    // Every request and blob of a copy listens on this one signal.
    setMaxListeners(0, controller.signal);
    let stoppedBy: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      // A second signal while the first one's cleanup runs: stop now.
      if (stoppedBy) process.exit(exitStatusOf(signal));
      stoppedBy = signal;
      controller.abort(new Error(signal === 'SIGINT' ? 'interrupted' : 'terminated'));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const ctx = new CliContext(command.optsWithGlobals<GlobalOptions>(), io, controller.signal);
    try {
      await task(ctx);
    } catch (error) {
      if (error instanceof CommanderError) throw error;
      status = await reportError(error, ctx, [commandPath(command), ...ctx.subjects].join(' '));
      if (stoppedBy) status = exitStatusOf(stoppedBy);
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
      await ctx.close();
    }
  };
  const program = createProgram(io, run);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
    // Help asked for (`help COMMAND`) exits 0; help shown for a missing command exits 2.
    if (error.code === 'commander.help' && error.exitCode === 0) return 0;
    if (error.code !== 'commander.help') {
      const usage = ['ociferry', ...commandWords(program, argv), '--help'].join(' ');
      io.stderr.write(`hint: run '${usage}' for usage\n`);
    }
    return EXIT_USAGE;
  }
  return status;
}

/** The commander program: global flags and every command (the README's synopsis is checked against it). */
export function createProgram(io: CliIO, run: Run): Command {
  const program = new Command('ociferry')
    .description(
      'Copy images and indexes between registries and OCI layouts with cross-repository mounts and streamed transfers, inspect them without pulling, build indexes from remote images.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .option(
      '--plain-http',
      'use plain HTTP for every registry (default: HTTPS; a loopback registry that answers in plain HTTP gets plain HTTP)',
    )
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

Exit status: 0 done, 1 the operation failed, 2 usage error, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).

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
  gcCommand(program, run);
  cacheCommands(program, run);
  loginCommands(program, run);
  helpCommand(program);
  return program;
}

/**
 * `ociferry help [COMMAND...]`: the help of a command, `help index create` included (commander's
 * own help command reads one word only); an unknown command is a usage error.
 */
function helpCommand(program: Command): void {
  program
    .helpCommand(false)
    .command('help')
    .summary('show the help of a command')
    .argument('[command...]', 'the command, e.g. copy or index create')
    .action((words: string[], _options: unknown, command: Command) => {
      let target = program;
      for (const [i, word] of words.entries()) {
        const next = target.commands.find((c) => c.name() === word);
        if (!next) usageError(command, `unknown command '${words.slice(0, i + 1).join(' ')}'`);
        target = next;
      }
      target.help();
    });
}

/** The exit status after `signal` stopped a command. */
function exitStatusOf(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED;
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
    // `help nosuch`: the usage to read is the program's.
    if (arg === 'help' && current === program) break;
    const next = current.commands.find((c) => c.name() === arg);
    if (!next) break;
    words.push(arg);
    current = next;
  }
  return words;
}
