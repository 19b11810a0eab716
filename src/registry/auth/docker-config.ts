import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { OciferryError } from '../../errors.ts';
import { replaceFile } from '../../util/replace-file.ts';
import { eraseWithHelper, storeWithHelper } from './credential-helper.ts';

/** A docker or containers auth config is unreadable or malformed. Names the file, never its contents. */
export class CredentialConfigError extends OciferryError {
  /** The file path, or `DOCKER_AUTH_CONFIG`. */
  readonly file: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super('CREDENTIAL_CONFIG_INVALID', `${file} ${problem}`, options);
    this.file = file;
  }
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io']);
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
const ENTRY_FIELDS = ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const;

/** The credential fields of one `auths` entry. */
export type EntryFields = { readonly [F in (typeof ENTRY_FIELDS)[number]]?: string };

/** One `auths` entry with its key split into canonical host and (containers) namespace path. */
export interface AuthEntry {
  readonly key: string;
  readonly host: string;
  readonly path: string;
  readonly fields: EntryFields;
}

/** The parts of a docker config.json / containers auth.json that hold credentials, validated. */
export interface AuthConfig {
  readonly where: string;
  readonly auths: readonly AuthEntry[];
  /** `credHelpers` as [canonical host, helper suffix]. */
  readonly credHelpers: ReadonlyArray<readonly [string, string]>;
  readonly credsStore: string | undefined;
}

/** A config file as read: every field (kept when it is written back) and its credential parts. */
export interface DockerConfigFile {
  readonly data: Readonly<Record<string, unknown>>;
  readonly auth: AuthConfig;
}

/** Path of docker's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG
    ? join(env.DOCKER_CONFIG, 'config.json')
    : join(homeDir(env), '.docker', 'config.json');
}

/** `$HOME`, else the user's home directory. */
export function homeDir(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

/**
 * The server address docker keys a registry's credentials by, in config files and helpers:
 * `https://index.docker.io/v1/` for Docker Hub (any of its aliases), the host otherwise.
 */
export function dockerServerAddress(registry: string): string {
  const { host } = parseKey(registry);
  return host === DOCKER_HUB ? DOCKER_HUB_SERVER : host;
}

/**
 * A config key or registry name as `{host, path}`. URL keys (`https://index.docker.io/v1/`) are
 * host-wide, as in docker's `ConvertToHostname` and containers' legacy keys; in `quay.io/org/repo` the
 * path is a namespace (which only containers files honour). Docker Hub's aliases become `docker.io`.
 */
export function parseKey(key: string): { host: string; path: string } {
  if (key.includes('://')) {
    try {
      const url = new URL(key);
      if (url.host) return { host: canonicalHost(url.host), path: '' };
    } catch {
      // Not a URL after all: read it like a plain key.
    }
  }
  const slash = key.indexOf('/');
  if (slash < 0) return { host: canonicalHost(key), path: '' };
  return {
    host: canonicalHost(key.slice(0, slash)),
    path: key.slice(slash + 1).replace(/\/+$/, ''),
  };
}

function canonicalHost(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

/**
 * Read and validate the config file at `path`; undefined when there is none. Every reader and
 * writer of credential files goes through here, so all follow one set of rules.
 * @throws CredentialConfigError for a file that cannot be read or is malformed
 */
export async function readDockerConfig(path: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new CredentialConfigError(path, `cannot be read (${code})`, { cause: error });
  }
  return parseDockerConfig(path, text);
}

/**
 * Validate config JSON (a file's, or `DOCKER_AUTH_CONFIG`); an empty text is an empty config, as
 * in docker.
 * @throws CredentialConfigError naming `where`, never quoting the text
 */
export function parseDockerConfig(where: string, text: string): DockerConfigFile {
  let data: unknown = {};
  if (text.trim() !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      // No cause: V8's SyntaxError message quotes the text, which holds secrets.
      throw new CredentialConfigError(where, 'is not valid JSON');
    }
  }
  if (!isRecord(data)) throw new CredentialConfigError(where, 'is not a JSON object');
  return { data, auth: authConfig(where, data) };
}

function authConfig(where: string, data: Record<string, unknown>): AuthConfig {
  const auths = Object.entries(optionalRecord(where, data, 'auths')).map(([key, value]) => {
    const name = `auths[${JSON.stringify(key)}]`;
    if (!isRecord(value))
      throw new CredentialConfigError(where, `has an ${name} that is not an object`);
    const fields: Record<string, string> = {};
    for (const field of ENTRY_FIELDS) {
      const v = value[field];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string') {
        throw new CredentialConfigError(where, `has an ${name}.${field} that is not a string`);
      }
      fields[field] = v;
    }
    return { key, ...parseKey(key), fields };
  });
  const credHelpers = Object.entries(optionalRecord(where, data, 'credHelpers')).map(
    ([key, helper]) => {
      if (typeof helper !== 'string') {
        throw new CredentialConfigError(
          where,
          `has a credHelpers[${JSON.stringify(key)}] that is not a string`,
        );
      }
      return [parseKey(key).host, helper] as const;
    },
  );
  const credsStore = data.credsStore ?? undefined;
  if (credsStore !== undefined && typeof credsStore !== 'string') {
    throw new CredentialConfigError(where, 'has a credsStore that is not a string');
  }
  return { where, auths, credHelpers, credsStore: credsStore || undefined };
}

/** The `credHelpers` entry for `host` (any spelling of its key), possibly empty; else undefined. */
export function credHelperFor(config: AuthConfig, host: string): string | undefined {
  const canonical = parseKey(host).host;
  return config.credHelpers.find(([helperHost]) => helperHost === canonical)?.[1];
}

/**
 * The helper docker uses for `host` (its `GetCredentialsStore`): the `credHelpers` entry when
 * there is one, else `credsStore`; undefined (the file's `auths`) when that is empty or absent.
 */
export function dockerHelperFor(config: AuthConfig, host: string): string | undefined {
  return (credHelperFor(config, host) ?? config.credsStore) || undefined;
}

/** Where a login was saved or removed, for messages: a file or a credential helper. */
export type CredentialLocation =
  | { kind: 'file'; path: string }
  | { kind: 'helper'; helper: string; path: string };

/**
 * Save a login as `docker login` does: with the helper the docker config names for the
 * registry (see {@link dockerHelperFor}), leaving an empty `auths` entry as docker does;
 * otherwise as `auths[server].auth`, base64 of `user:secret`, in a file of mode 0600. Every
 * other field of the file is kept.
 */
export async function saveDockerLogin(
  registry: string,
  username: string,
  secret: string,
  env: NodeJS.ProcessEnv,
): Promise<CredentialLocation> {
  const path = dockerConfigPath(env);
  const { data, helper, auths } = await forServer(path, registry);
  const server = dockerServerAddress(registry);
  if (helper !== undefined) {
    await storeWithHelper(helper, server, username, secret, { env });
    auths[server] = {};
  } else {
    auths[server] = { auth: Buffer.from(`${username}:${secret}`).toString('base64') };
  }
  await writeDockerConfig(path, { ...data, auths });
  return helper === undefined ? { kind: 'file', path } : { kind: 'helper', helper, path };
}

/**
 * Forget a login: erase it from the configured helper, and drop the registry's `auths`
 * entries (every spelling of its key). Resolves with where it was, or undefined if nowhere.
 */
export async function removeDockerLogin(
  registry: string,
  env: NodeJS.ProcessEnv,
): Promise<CredentialLocation | undefined> {
  const path = dockerConfigPath(env);
  const { data, helper, auths, entries } = await forServer(path, registry);
  if (helper !== undefined) {
    await eraseWithHelper(helper, dockerServerAddress(registry), { env });
  }
  const hadEntry = Object.keys(auths).length !== entries;
  if (hadEntry) await writeDockerConfig(path, { ...data, auths });
  if (helper !== undefined) return { kind: 'helper', helper, path };
  return hadEntry ? { kind: 'file', path } : undefined;
}

/** Describe a location for messages: never more than a path and a helper name. */
export function describeCredentialLocation(location: CredentialLocation): string {
  return location.kind === 'file'
    ? location.path
    : `credential helper docker-credential-${location.helper} (configured in ${location.path})`;
}

/** The file at `path` with what a login for `registry` changes: its helper, and `auths` without it. */
async function forServer(path: string, registry: string) {
  const file = await readDockerConfig(path);
  const data = file?.data ?? {};
  const host = parseKey(registry).host;
  const helper = file && dockerHelperFor(file.auth, host);
  const given = isRecord(data.auths) ? data.auths : {};
  const kept = Object.entries(given).filter(([key]) => parseKey(key).host !== host);
  return { data, helper, auths: Object.fromEntries(kept), entries: Object.keys(given).length };
}

async function writeDockerConfig(path: string, data: Record<string, unknown>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await replaceFile(path, `${JSON.stringify(data, null, '\t')}\n`, { mode: 0o600 });
}

function optionalRecord(
  where: string,
  data: Record<string, unknown>,
  name: string,
): Record<string, unknown> {
  const value = data[name] ?? {};
  if (!isRecord(value))
    throw new CredentialConfigError(where, `has a ${name} that is not an object`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
