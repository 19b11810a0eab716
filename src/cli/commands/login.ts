import type { Command } from 'commander';
import { registryArg, usageError } from '../args.ts';
import type { CliContext } from '../context.ts';
import { describeLocation, removeLogin, saveLogin } from '../docker-config.ts';
import { promptLine, promptSecret, readStdin } from '../prompt.ts';
import type { Run } from './run.ts';

interface LoginOptions {
  username?: string;
  passwordStdin?: boolean;
}

/** `ociferry login HOST` and `ociferry logout HOST`: docker-compatible credential storage. */
export function loginCommands(program: Command, run: Run): void {
  program
    .command('login')
    .summary('save credentials for a registry (docker config or helper)')
    .description(
      'Save credentials for a registry where docker keeps them: the credential helper the docker config names for it (credHelpers, credsStore), else its "auths" (DOCKER_CONFIG or ~/.docker/config.json). docker, podman, skopeo and ociferry all read them there.',
    )
    .argument('<host>', 'registry host[:port] (docker.io for Docker Hub)', registryArg)
    .option('-u, --username <user>', 'user name (asked on a terminal when omitted)')
    .option('--password-stdin', 'read the password (or token) from stdin')
    .addHelpText(
      'after',
      `
Without --password-stdin the password is asked on the terminal, never echoed.

Examples:
  $ echo "$TOKEN" | ociferry login ghcr.io -u octocat --password-stdin
  $ ociferry login registry.example:5000 -u admin`,
    )
    .action((host: string, options: LoginOptions, command: Command) =>
      run(command, (ctx) => login(ctx, command, host, options)),
    );

  program
    .command('logout')
    .summary('remove the saved credentials of a registry')
    .description('Remove the saved credentials of a registry (helper and config file).')
    .argument('<host>', 'registry host[:port]', registryArg)
    .addHelpText(
      'after',
      `
Examples:
  $ ociferry logout ghcr.io`,
    )
    .action((host: string, _options: unknown, command: Command) =>
      run(command, (ctx) => logout(ctx, host)),
    );
}

async function login(
  ctx: CliContext,
  command: Command,
  host: string,
  options: LoginOptions,
): Promise<void> {
  ctx.about(host);
  const { io } = ctx;
  const interactive = io.stdin.isTTY === true;
  if (!options.passwordStdin && !interactive) {
    usageError(command, 'stdin is not a terminal: pass the password with --password-stdin');
  }
  let username = options.username;
  if (username === undefined) {
    if (options.passwordStdin) usageError(command, 'give the user name with -u USER');
    username = (await promptLine(io, 'Username: ', ctx.signal)).trim();
  }
  const password = options.passwordStdin
    ? await readStdin(io)
    : await promptSecret(io, 'Password: ', ctx.signal);
  if (username === '' || password === '')
    usageError(command, 'the user name and password must not be empty');
  const location = await saveLogin(host, username, password, io.env);
  if (ctx.json) {
    ctx.printJson({ registry: host, username, storedIn: describeLocation(location) });
  } else {
    ctx.info(`Saved the credentials for ${host} in ${describeLocation(location)}`);
  }
}

async function logout(ctx: CliContext, host: string): Promise<void> {
  ctx.about(host);
  const location = await removeLogin(host, ctx.io.env);
  if (ctx.json) {
    ctx.printJson({ registry: host, removedFrom: location ? describeLocation(location) : null });
  } else if (location) {
    ctx.info(`Removed the credentials for ${host} from ${describeLocation(location)}`);
  } else {
    ctx.info(`Not logged in to ${host}`);
  }
}
