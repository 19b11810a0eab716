import type { Command } from 'commander';
import { OciferryError } from '../../errors.ts';
import {
  type Credential,
  CredentialStore,
  describeCredentialLocation,
  RegistryError,
  removeDockerLogin,
  saveDockerLogin,
} from '../../registry/index.ts';
import { registryArg, usageError } from '../args.ts';
import type { CliContext } from '../context.ts';
import { promptLine, promptSecret, readStdin } from '../prompt.ts';
import type { Run } from './run.ts';

interface LoginOptions {
  username?: string;
  passwordStdin?: boolean;
}

/** The registry refused the credentials `ociferry login` was given; nothing was saved. */
class LoginRefusedError extends OciferryError {
  constructor(registry: string, username: string, cause: OciferryError) {
    const how =
      cause instanceof RegistryError && cause.status !== undefined
        ? ` (${cause.method} ${cause.url} answered ${cause.status})`
        : '';
    super(
      'LOGIN_REFUSED',
      `${registry} refused the credentials of user ${username}${how}; nothing was saved`,
      { cause },
    );
  }
}

/** `ociferry login HOST` and `ociferry logout HOST`: docker-compatible credential storage. */
export function loginCommands(program: Command, run: Run): void {
  program
    .command('login')
    .summary('save credentials for a registry (docker config or helper)')
    .description(
      'Check credentials with the registry, then save them where docker keeps them: the credential helper the docker config names for it (credHelpers, credsStore), else its "auths" (DOCKER_CONFIG or ~/.docker/config.json). docker, podman, skopeo and ociferry all read them there.',
    )
    .argument('<host>', 'registry host[:port] (docker.io for Docker Hub)', registryArg)
    .option('-u, --username <user>', 'user name (asked on a terminal when omitted)')
    .option('--password-stdin', 'read the password (or token) from stdin')
    .addHelpText(
      'after',
      `
Without --password-stdin the password is asked on the terminal, never echoed. The registry
must accept the credentials before anything is saved (GET /v2/ with them, or with a token its
token server issues for them). Some token servers (Harbor) issue tokens even for a wrong
password: there the check passes and the first real request is refused.

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
  await checkLogin(ctx, host, { kind: 'basic', username, password });
  const location = await saveDockerLogin(host, username, password, io.env);
  if (ctx.json) {
    ctx.printJson({ registry: host, username, storedIn: describeCredentialLocation(location) });
  } else {
    ctx.info(
      `Login succeeded: saved the credentials for ${host} in ${describeCredentialLocation(location)}`,
    );
  }
}

/** Ask `host` whether it accepts `credential`; a refusal is a {@link LoginRefusedError}. */
async function checkLogin(
  ctx: CliContext,
  host: string,
  credential: Extract<Credential, { kind: 'basic' }>,
): Promise<void> {
  const credentials = new CredentialStore({ env: ctx.io.env, explicit: { [host]: credential } });
  try {
    await ctx.createClient(credentials).checkCredentials(host, { signal: ctx.signal });
  } catch (error) {
    if (error instanceof OciferryError && error.code === 'UNAUTHORIZED') {
      throw new LoginRefusedError(host, credential.username, error);
    }
    throw error;
  }
}

async function logout(ctx: CliContext, host: string): Promise<void> {
  ctx.about(host);
  const location = await removeDockerLogin(host, ctx.io.env);
  if (ctx.json) {
    ctx.printJson({
      registry: host,
      removedFrom: location ? describeCredentialLocation(location) : null,
    });
  } else if (location) {
    ctx.info(`Removed the credentials for ${host} from ${describeCredentialLocation(location)}`);
  } else {
    ctx.info(`Not logged in to ${host}`);
  }
}
