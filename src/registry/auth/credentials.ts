import { join } from 'node:path';
import { withSignal } from '../../util/with-signal.ts';
import { getWithHelper } from './credential-helper.ts';
import {
  type AuthConfig,
  type AuthEntry,
  CredentialConfigError,
  credHelperFor,
  dockerConfigPath,
  dockerHelperFor,
  dockerServerAddress,
  homeDir,
  parseDockerConfig,
  parseKey,
  readDockerConfig,
} from './docker-config.ts';

export { CredentialConfigError, dockerConfigPath, dockerServerAddress };

/** What a registry is authenticated with. */
export type Credential =
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token: docker's `identitytoken`, a helper's `<token>` user. */
  | { kind: 'identityToken'; token: string; username?: string }
  /** A bearer token sent as is: docker's `registrytoken`. */
  | { kind: 'registryToken'; token: string };

/** The outcome of a lookup: the credential if any, and where it came from. Never holds a secret besides `credential`. */
export interface CredentialLookup {
  credential?: Credential;
  /** Where the credential was found, e.g. `credential helper docker-credential-gcloud (…/config.json credHelpers)`; `none` if nowhere. */
  source: string;
  /** Every place looked at, in order. */
  tried: string[];
}

/** Options of a {@link CredentialStore}. */
export interface CredentialStoreOptions {
  /**
   * Environment to read `DOCKER_CONFIG`, `DOCKER_AUTH_CONFIG`, `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`,
   * `XDG_CONFIG_HOME`, `HOME` and the helpers' `PATH` from. Default `process.env`.
   */
  env?: NodeJS.ProcessEnv;
  /** Credentials given through the API, by registry host; they override every other source. */
  explicit?: Record<string, Credential>;
  /** Kill a credential helper that has not answered after this many milliseconds. Default 10 000. */
  helperTimeoutMs?: number;
}

interface Found {
  readonly credential: Credential;
  readonly source: string;
}

/**
 * Finds registry credentials where docker, podman and skopeo keep them. Order:
 * 1. `explicit` credentials;
 * 2. containers auth files: `REGISTRY_AUTH_FILE` if set, else `${XDG_RUNTIME_DIR}/containers/auth.json`
 *    then `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`. Per file, as containers/image does:
 *    `credHelpers[host]` (helper asked with the bare host), else `auths`, where namespace keys
 *    (`quay.io/org/repo`) are allowed and the most specific wins; `credsStore` is ignored there.
 * 3. `DOCKER_AUTH_CONFIG` (docker ≥ 28: config JSON in the environment), `auths` only;
 * 4. the docker config ({@link dockerConfigPath}), as docker's `GetAuthConfig` does: if
 *    `credHelpers[host]` or else `credsStore` names a helper, the helper alone answers (its
 *    `auths` entries are empty placeholders, and "not found" means no credential); otherwise
 *    `auths`, matching keys by host like docker's `ConvertToHostname`.
 * Keys are compared as hosts: scheme and (docker) path dropped, port kept, lower case, Docker Hub's
 * `docker.io`, `index.docker.io`, `registry-1.docker.io` and `https://index.docker.io/v1/` as one.
 * Empty entries are skipped, so the next source is consulted. Results are cached per (host,
 * repository) for the store's lifetime; failures are not cached.
 */
export class CredentialStore {
  readonly #env: NodeJS.ProcessEnv;
  readonly #explicit: ReadonlyMap<string, Credential>;
  readonly #helperTimeoutMs: number | undefined;
  readonly #lookups = new Map<string, Promise<CredentialLookup>>();
  readonly #configs = new Map<string, Promise<AuthConfig | undefined>>();
  readonly #helperAnswers = new Map<string, Promise<Credential | undefined>>();

  constructor(options: CredentialStoreOptions = {}) {
    this.#env = options.env ?? process.env;
    this.#explicit = new Map(
      Object.entries(options.explicit ?? {}).map(([key, credential]) => [
        parseKey(key).host,
        credential,
      ]),
    );
    this.#helperTimeoutMs = options.helperTimeoutMs;
  }

  /**
   * Credential for a registry host (`docker.io` for Docker Hub, `host:port` otherwise) and optionally
   * a repository, for namespace keys. Throws {@link CredentialConfigError} for a malformed config and
   * {@link CredentialHelperError} when a helper fails; `signal` abandons the wait, not the search.
   */
  lookup(registry: string, repository?: string, signal?: AbortSignal): Promise<CredentialLookup> {
    const host = parseKey(registry).host;
    const key = `${host}\n${repository ?? ''}`;
    return withSignal(
      remember(this.#lookups, key, () => this.#find(host, repository)),
      signal,
    );
  }

  async #find(host: string, repository: string | undefined): Promise<CredentialLookup> {
    const tried: string[] = [];
    const found =
      this.#fromExplicit(host, tried) ??
      (await this.#fromContainers(host, repository, tried)) ??
      (await this.#fromDockerEnv(host, tried)) ??
      (await this.#fromDocker(host, tried));
    return Object.freeze({ ...found, source: found?.source ?? 'none', tried });
  }

  #fromExplicit(host: string, tried: string[]): Found | undefined {
    if (this.#explicit.size === 0) return undefined;
    const source = 'explicit credentials';
    tried.push(source);
    const credential = this.#explicit.get(host);
    return credential && { credential, source };
  }

  async #fromContainers(
    host: string,
    repository: string | undefined,
    tried: string[],
  ): Promise<Found | undefined> {
    for (const path of containersAuthFiles(this.#env)) {
      const config = await this.#readConfig(path, tried);
      if (!config) continue;
      // credsStore is not read in containers files.
      const helper = credHelperFor(config, host);
      const found = helper
        ? await this.#fromHelper(helper, host, `${path} credHelpers`, tried)
        : fromAuths(config, host, { repository }, tried);
      if (found) return found;
    }
    return undefined;
  }

  async #fromDockerEnv(host: string, tried: string[]): Promise<Found | undefined> {
    const text = this.#env.DOCKER_AUTH_CONFIG;
    if (!text) return undefined;
    const config = await remember(
      this.#configs,
      '\0DOCKER_AUTH_CONFIG',
      async () => parseDockerConfig('DOCKER_AUTH_CONFIG', text).auth,
    );
    return config && fromAuths(config, host, undefined, tried);
  }

  async #fromDocker(host: string, tried: string[]): Promise<Found | undefined> {
    const path = dockerConfigPath(this.#env);
    const config = await this.#readConfig(path, tried);
    if (!config) return undefined;
    const helper = dockerHelperFor(config, host);
    if (!helper) return fromAuths(config, host, undefined, tried);
    const field = credHelperFor(config, host) ? 'credHelpers' : 'credsStore';
    return this.#fromHelper(helper, dockerServerAddress(host), `${path} ${field}`, tried);
  }

  async #fromHelper(
    helper: string,
    serverUrl: string,
    configuredIn: string,
    tried: string[],
  ): Promise<Found | undefined> {
    const source = `credential helper docker-credential-${helper} (${configuredIn})`;
    tried.push(source);
    const credential = await remember(this.#helperAnswers, `${helper}\n${serverUrl}`, () =>
      getWithHelper(helper, serverUrl, { env: this.#env, timeoutMs: this.#helperTimeoutMs }),
    );
    return credential && { credential, source };
  }

  /** The parsed file at `path`, `undefined` if there is none; read once per store. */
  async #readConfig(path: string, tried: string[]): Promise<AuthConfig | undefined> {
    const config = await remember(
      this.#configs,
      path,
      async () => (await readDockerConfig(path))?.auth,
    );
    if (!config) tried.push(`${path} (no such file)`);
    return config;
  }
}

/**
 * The credential of the best `auths` entry for `host`. With `namespaces` (containers files), keys
 * may name a namespace of `repository` and the longest match wins; without (docker), keys count as
 * hosts and the exact `dockerServerAddress` key comes first. Entries without a credential are skipped.
 */
function fromAuths(
  config: AuthConfig,
  host: string,
  namespaces: { repository: string | undefined } | undefined,
  tried: string[],
): Found | undefined {
  tried.push(`${config.where} auths`);
  const rank = ({ key, host: entryHost, path }: AuthEntry): number => {
    if (entryHost !== host) return -1;
    if (!namespaces) return key === dockerServerAddress(host) ? 1 : 0;
    if (path === '') return 0;
    const { repository } = namespaces;
    const inNamespace = repository === path || repository?.startsWith(`${path}/`);
    return inNamespace ? path.length : -1;
  };
  const candidates = config.auths
    .map((entry) => ({ entry, rank: rank(entry) }))
    .filter(({ rank }) => rank >= 0)
    .sort((a, b) => b.rank - a.rank);
  for (const { entry } of candidates) {
    const credential = entryCredential(config.where, entry);
    if (credential)
      return { credential, source: `${config.where} auths[${JSON.stringify(entry.key)}]` };
  }
  return undefined;
}

/** docker's reading of an `auths` entry: `auth` (base64 user:pass) wins over `username`/`password`. */
function entryCredential(where: string, { key, fields }: AuthEntry): Credential | undefined {
  const basic = fields.auth
    ? decodeAuth(where, key, fields.auth)
    : { username: fields.username ?? '', password: fields.password ?? '' };
  if (fields.identitytoken) {
    const token = fields.identitytoken;
    return basic.username
      ? { kind: 'identityToken', token, username: basic.username }
      : { kind: 'identityToken', token };
  }
  if (fields.registrytoken) return { kind: 'registryToken', token: fields.registrytoken };
  return basic.username ? { kind: 'basic', ...basic } : undefined;
}

/** `base64(user:pass)`, split on the first `:`, NULs trimmed from the password (as docker does). */
function decodeAuth(
  where: string,
  key: string,
  auth: string,
): { username: string; password: string } {
  const field = `auths[${JSON.stringify(key)}].auth`;
  const base64 = auth.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
    throw new CredentialConfigError(where, `has a ${field} that is not base64`);
  }
  const decoded = Buffer.from(base64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) {
    throw new CredentialConfigError(where, `has a ${field} that does not decode to user:password`);
  }
  return {
    username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, ''),
  };
}

function containersAuthFiles(env: NodeJS.ProcessEnv): string[] {
  if (env.REGISTRY_AUTH_FILE) return [env.REGISTRY_AUTH_FILE];
  const configHome = env.XDG_CONFIG_HOME || join(homeDir(env), '.config');
  const userFile = join(configHome, 'containers', 'auth.json');
  return env.XDG_RUNTIME_DIR
    ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'), userFile]
    : [userFile];
}

/** Cache a promise by key; a rejected one is forgotten so that the next call retries. */
function remember<V>(
  cache: Map<string, Promise<V>>,
  key: string,
  work: () => Promise<V>,
): Promise<V> {
  const cached = cache.get(key);
  if (cached) return cached;
  const promise = work();
  cache.set(key, promise);
  promise.catch(() => cache.delete(key));
  return promise;
}
