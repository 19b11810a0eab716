import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  CredentialConfigError,
  dockerConfigPath,
  dockerServerAddress,
  eraseWithHelper,
  storeWithHelper,
} from '../registry/index.ts';
import { replaceFile } from '../util/replace-file.ts';

/** Where a login was saved or removed, for messages: a file or a credential helper. */
export type CredentialLocation =
  | { kind: 'file'; path: string }
  | { kind: 'helper'; helper: string; path: string };

/** The docker config as JSON, keeping every field ociferry does not touch. */
type DockerConfig = Record<string, unknown> & { auths?: Record<string, unknown> };

/**
 * Save a login as `docker login` does: with the helper the docker config names for the
 * registry (`credHelpers`, else `credsStore`), leaving an empty `auths` entry as docker does;
 * otherwise as `auths[server].auth`, base64 of `user:secret`, in a file of mode 0600.
 */
export async function saveLogin(
  registry: string,
  username: string,
  secret: string,
  env: NodeJS.ProcessEnv,
): Promise<CredentialLocation> {
  const path = dockerConfigPath(env);
  const config = await readConfig(path);
  const server = dockerServerAddress(registry);
  const helper = helperFor(config, server);
  const auths = withoutServer(config.auths, server);
  if (helper !== undefined) {
    await storeWithHelper(helper, server, username, secret, { env });
    auths[server] = {};
  } else {
    auths[server] = { auth: Buffer.from(`${username}:${secret}`).toString('base64') };
  }
  await writeConfig(path, { ...config, auths });
  return helper === undefined ? { kind: 'file', path } : { kind: 'helper', helper, path };
}

/**
 * Forget a login: erase it from the configured helper, and drop the registry's `auths`
 * entries (every spelling of its key). Resolves with where it was, or undefined if nowhere.
 */
export async function removeLogin(
  registry: string,
  env: NodeJS.ProcessEnv,
): Promise<CredentialLocation | undefined> {
  const path = dockerConfigPath(env);
  const config = await readConfig(path);
  const server = dockerServerAddress(registry);
  const helper = helperFor(config, server);
  if (helper !== undefined) await eraseWithHelper(helper, server, { env });
  const auths = withoutServer(config.auths, server);
  const hadEntry = Object.keys(auths).length !== Object.keys(config.auths ?? {}).length;
  if (hadEntry) await writeConfig(path, { ...config, auths });
  if (helper !== undefined) return { kind: 'helper', helper, path };
  return hadEntry ? { kind: 'file', path } : undefined;
}

/** Describe a location for messages: never more than a path and a helper name. */
export function describeLocation(location: CredentialLocation): string {
  return location.kind === 'file'
    ? location.path
    : `credential helper docker-credential-${location.helper} (configured in ${location.path})`;
}

/** The helper for `server`: its `credHelpers` entry (any spelling of the key), else `credsStore`. */
function helperFor(config: DockerConfig, server: string): string | undefined {
  const helpers = isRecord(config.credHelpers) ? config.credHelpers : {};
  for (const [key, helper] of Object.entries(helpers)) {
    if (typeof helper === 'string' && helper !== '' && dockerServerAddress(key) === server) {
      return helper;
    }
  }
  const store = config.credsStore;
  return typeof store === 'string' && store !== '' ? store : undefined;
}

/** A copy of `auths` without the entries whose key names `server`. */
function withoutServer(auths: unknown, server: string): Record<string, unknown> {
  const entries = Object.entries(isRecord(auths) ? auths : {});
  return Object.fromEntries(entries.filter(([key]) => dockerServerAddress(key) !== server));
}

async function readConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CredentialConfigError(
      path,
      `cannot be read (${(error as NodeJS.ErrnoException).code})`,
      {
        cause: error,
      },
    );
  }
  if (text.trim() === '') return {};
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // No cause: the parser's message quotes the text, which holds secrets.
    throw new CredentialConfigError(path, 'is not valid JSON');
  }
  if (!isRecord(data)) throw new CredentialConfigError(path, 'is not a JSON object');
  if (data.auths !== undefined && !isRecord(data.auths)) {
    throw new CredentialConfigError(path, 'has an auths that is not an object');
  }
  return data as DockerConfig;
}

async function writeConfig(path: string, config: DockerConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await replaceFile(path, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
