import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext, TestFn } from 'ava';
import { Agent, request } from 'undici';
import {
  type AccessLogEntry,
  AccessLogReader,
  matchesFilter,
  type RequestFilter,
} from './access-log.ts';
import { selfSignedCertificate } from './certificate.ts';
import { type FaultRule, startFaultProxy } from './fault-proxy.ts';
import { freePort } from './free-port.ts';
import { htpasswd } from './htpasswd.ts';
import { resolveRegistryBinary } from './registry-binary.ts';
import {
  startTokenServer,
  type TokenRequest,
  type TokenServer,
  type TokenSigningKey,
  tokenSigningKey,
} from './token-server.ts';

export type { AccessLogEntry, RequestFilter } from './access-log.ts';
export type { TokenRequest } from './token-server.ts';

/** How the registry authenticates clients. */
export type AuthMode = 'none' | 'basic' | 'token';
/** A repository action a token can grant; `*` is every action. */
export type Action = 'pull' | 'push' | 'delete' | '*';
/** repository: exact name, or a glob where '*' matches any characters incl. '/', e.g. 'a/*' or '*' */
export interface Grant {
  repository: string;
  actions: Action[];
}
/** A user of the test registry; `grants` only matter in token mode. */
export interface TestUser {
  password: string;
  grants: Grant[];
}
/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  /** Default 'none'. */
  auth?: AuthMode;
  /** Default `{ alice: { password: 'alice-secret-pw', grants: [{ repository: '*', actions: ['*'] }] } }`. */
  users?: Record<string, TestUser>;
  /** Answer with relative `Location` headers (`http.relativeurls`); default false (absolute URLs). */
  relativeUrls?: boolean;
  /**
   * Serve HTTPS (`http.tls`) with a self-signed certificate for 127.0.0.1 (see `certificate`);
   * default false (plain HTTP).
   */
  tls?: boolean;
  /** Token mode: the `service` of the challenge and tokens (e.g. Harbor's `harbor-registry`). */
  tokenService?: string;
}

/** A running distribution registry, its users and its access log. */
export interface TestRegistry {
  /** '127.0.0.1:PORT' */
  readonly host: string;
  /** 'http://127.0.0.1:PORT' ('https://' with `tls`) */
  readonly url: string;
  /** With `tls`: path of the registry's certificate (PEM), e.g. for `NODE_EXTRA_CA_CERTS`. */
  readonly certificate?: string;
  readonly auth: AuthMode;
  /** Storage root (temporary). */
  readonly rootDir: string;
  readonly users: Record<string, TestUser>;
  /** Token mode: the token server URL. */
  readonly tokenRealm?: string;
  /** Token mode: the `service` the registry expects. */
  readonly tokenService?: string;
  /** Every token the token server issued, in order; empty unless auth is 'token'. */
  readonly tokenRequests: TokenRequest[];
  /**
   * Authorization header value for `user` with the given scopes ('repository:a/b:pull,push');
   * undefined when auth is 'none'. basic: 'Basic …'; token: fetches a JWT from the token server
   * (granted ∩ requested) -> 'Bearer …'.
   */
  authorize(user: string, scopes: string[]): Promise<string | undefined>;
  /**
   * All access-log entries so far (waits until the log has caught up with requests already
   * answered; a request the registry is still handling delays this by at most 1 s, and shows up
   * only once it is logged).
   */
  requests(filter?: RequestFilter): Promise<AccessLogEntry[]>;
  /** A position in the log; pass as `since` to only see later requests. */
  mark(): Promise<number>;
  stop(): Promise<void>;
}

/** Default users: one that may do anything. */
const DEFAULT_USERS: Record<string, TestUser> = {
  alice: { password: 'alice-secret-pw', grants: [{ repository: '*', actions: ['*'] }] },
};
const TOKEN_SERVICE = 'ociferry-test-registry';
const TOKEN_ISSUER = 'ociferry-test-token-server';
const SENTINEL_PATH = '/v2/_ociferry_sentinel';
const HARNESS_AGENT = 'ociferry-test-harness';
/** Frame of gorilla's access-log handler: a goroutine showing it has a request not yet logged. */
const ACCESS_LOG_FRAME = 'github.com/gorilla/handlers.loggingHandler.ServeHTTP(';
// Bounds against a registry that hangs, not speed limits: on a loaded machine a test process busy
// with other tests (PGlite runs on its main thread) can take over 10 s to read the access log.
const STARTUP_TIMEOUT_MS = 60_000;
const LOG_SYNC_TIMEOUT_MS = 60_000;
/** How long `requests()` waits for requests the registry is still handling to be logged. */
const SETTLE_TIMEOUT_MS = 1_000;
const STDERR_TAIL_CHARS = 4096;
const PORT_ATTEMPTS = 5;

/** Registries still running; killed if the test process exits without tearing them down. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/**
 * The environment without REGISTRY_* variables, which would override the config file. Unless the
 * environment says otherwise, the Go runtime collects garbage at 5 times the live heap, not 2, and
 * runs Go code on one thread: a test registry's heap stays small (a peak of some 35 MB instead of
 * 27 MB), and its CPU per start and request falls by about a quarter (measured on 2 cores).
 */
function registryEnv(): NodeJS.ProcessEnv {
  return {
    GOGC: '400',
    GOMAXPROCS: '1',
    ...Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')),
    ),
  };
}

/** Keys (goroutine + request) of the requests a goroutine dump shows inside the access-log handler. */
function requestsBeingHandled(goroutineDump: string): Set<string> {
  const keys = new Set<string>();
  for (const block of goroutineDump.split('\n\n')) {
    const frame = block.split('\n').find((line) => line.startsWith(ACCESS_LOG_FRAME));
    if (frame) keys.add(`${block.slice(0, block.indexOf(' ['))} ${frame}`);
  }
  return keys;
}

interface RegistryConfig {
  binary: string;
  dir: string;
  rootDir: string;
  auth: Record<string, unknown> | undefined;
  relativeUrls: boolean;
  /** Certificate and key files to serve HTTPS with. */
  tls: { certificate: string; key: string } | undefined;
}

/** A spawned registry: its access log, stderr tail and exit state. */
class RegistryProcess {
  readonly host: string;
  readonly url: string;
  readonly log: AccessLogReader;
  readonly #child: ChildProcessByStdio<null, Readable, Readable>;
  readonly #debugUrl: string;
  readonly #agent: Agent;
  readonly #exited: Promise<void>;
  #stderr = '';
  #exitReason: string | undefined;
  #sentinels = 0;

  constructor(
    binary: string,
    configPath: string,
    ports: { http: number; debug: number },
    agent: Agent,
    tls: boolean,
  ) {
    this.host = `127.0.0.1:${ports.http}`;
    this.url = `${tls ? 'https' : 'http'}://${this.host}`;
    this.#debugUrl = `http://127.0.0.1:${ports.debug}`;
    this.#agent = agent;
    this.#child = spawn(binary, ['serve', configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: registryEnv(),
    });
    killOnExit(this.#child);
    this.log = new AccessLogReader(this.#child.stdout);
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_TAIL_CHARS);
    });
    this.#exited = new Promise((resolve) => {
      this.#child.once('error', (error) => {
        this.#exitReason = `failed to start: ${error.message}`;
        resolve();
      });
      this.#child.once('close', (code, signal) => {
        this.#exitReason ??= `exited with ${signal ?? `code ${code}`}`;
        resolve();
      });
    });
  }

  get stderrTail(): string {
    return this.#stderr;
  }

  /** Why the process is gone, or undefined while it runs. */
  get exitReason(): string | undefined {
    return this.#exitReason;
  }

  async #get(url: string, signal?: AbortSignal): Promise<{ status: number; body: string }> {
    const res = await request(url, {
      dispatcher: this.#agent,
      headers: { 'user-agent': HARNESS_AGENT },
      signal,
    });
    return { status: res.statusCode, body: await res.body.text() };
  }

  /** Poll `GET /v2/` (200 or 401) and the debug server; false if the process died or time ran out. */
  async waitReady(): Promise<boolean> {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (this.#exitReason === undefined && Date.now() < deadline) {
      try {
        const [api, debug] = await Promise.all([
          this.#get(`${this.url}/v2/`),
          this.#get(`${this.#debugUrl}/debug/pprof/`),
        ]);
        if ((api.status === 200 || api.status === 401) && debug.status === 200) return true;
      } catch {
        // Not listening yet.
      }
      await sleep(5);
    }
    return false;
  }

  /**
   * Return once every request answered so far has its line read from the access log.
   *
   * gorilla writes a line after the handler returns, and a large body can reach the client before
   * that (measured: about 1 in 100 GETs of 8 MB), so a sentinel request alone is not enough. First
   * wait (from the goroutine dump of the debug server) until requests being handled now have left
   * the logging handler, then send a sentinel and wait for its line, which is logged after theirs.
   */
  async sync(): Promise<void> {
    const signal = AbortSignal.timeout(LOG_SYNC_TIMEOUT_MS);
    const query = `n=${++this.#sentinels}`;
    try {
      await this.#settle(signal);
      const seen = this.log.waitFor((e) => e.path === SENTINEL_PATH && e.query === query, signal);
      seen.catch(() => {});
      await this.#get(`${this.url}${SENTINEL_PATH}?${query}`, signal);
      await seen;
    } catch (cause) {
      throw new Error(
        `registry access log did not catch up (${this.#exitReason ?? 'still running'}); stderr:\n${this.#stderr}`,
        { cause },
      );
    }
  }

  /** Wait until the requests in the access-log handler now have left it (bounded: some never end). */
  async #settle(signal: AbortSignal): Promise<void> {
    const dump = async () =>
      requestsBeingHandled(
        (await this.#get(`${this.#debugUrl}/debug/pprof/goroutine?debug=2`, signal)).body,
      );
    let pending = await dump();
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    while (pending.size > 0 && Date.now() < deadline) {
      await sleep(1);
      const now = await dump();
      pending = new Set([...pending].filter((key) => now.has(key)));
    }
  }

  async stop(): Promise<void> {
    if (this.#exitReason === undefined) this.#child.kill('SIGKILL');
    await this.#exited;
  }
}

/** Spawn the registry on free ports and wait until it answers; retries when a port was taken. */
async function launch(config: RegistryConfig, agent: Agent): Promise<RegistryProcess> {
  for (let attempt = 1; ; attempt++) {
    const ports = { http: await freePort(), debug: await freePort() };
    const yaml = {
      version: '0.1',
      log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: config.rootDir },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: {
        addr: `127.0.0.1:${ports.http}`,
        secret: randomBytes(16).toString('hex'),
        relativeurls: config.relativeUrls,
        ...(config.tls ? { tls: config.tls } : {}),
        // Only for the goroutine dump that makes requests() exact; see RegistryProcess.sync.
        debug: { addr: `127.0.0.1:${ports.debug}` },
      },
      health: { storagedriver: { enabled: false } },
      ...(config.auth ? { auth: config.auth } : {}),
    };
    const configPath = join(config.dir, 'config.yml');
    // JSON is YAML, and spares us a YAML writer.
    await writeFile(configPath, JSON.stringify(yaml, null, 2));
    const proc = new RegistryProcess(config.binary, configPath, ports, agent, !!config.tls);
    if (await proc.waitReady()) return proc;
    await proc.stop();
    const stderr = proc.stderrTail;
    if (stderr.includes('address already in use') && attempt < PORT_ATTEMPTS) continue;
    throw new Error(
      `registry ${config.binary} did not come up on ${proc.host} (${proc.exitReason ?? 'timed out'}); stderr:\n${stderr}`,
    );
  }
}

/** distribution's `auth` section for basic auth, writing the htpasswd file into `dir`. */
async function basicAuthConfig(users: Record<string, TestUser>, dir: string) {
  const path = join(dir, 'htpasswd');
  await writeFile(path, await htpasswd(users));
  return { htpasswd: { realm: 'ociferry-test-registry', path } };
}

/** distribution's `auth` section trusting `signingKey`'s certificate, written into `dir`. */
async function tokenAuthConfig(
  realm: string,
  service: string,
  signingKey: TokenSigningKey,
  dir: string,
) {
  const rootcertbundle = join(dir, 'token-cert.pem');
  await writeFile(rootcertbundle, signingKey.certPem);
  return { token: { realm, service, issuer: TOKEN_ISSUER, rootcertbundle } };
}

/**
 * `authorize()` of a registry in `auth` mode with `users`: Basic credentials, or in token mode a
 * token from the token server at `token.realm`.
 */
function authorizer(
  auth: AuthMode,
  users: Record<string, TestUser>,
  token: { realm: string; service: string } | undefined,
  dispatcher?: Agent,
): TestRegistry['authorize'] {
  return async (user, scopes) => {
    if (auth === 'none') return undefined;
    const known = users[user];
    if (known === undefined) throw new Error(`unknown test user ${JSON.stringify(user)}`);
    const basic = `Basic ${Buffer.from(`${user}:${known.password}`).toString('base64')}`;
    if (token === undefined) return basic;
    const realm = new URL(token.realm);
    realm.searchParams.set('service', token.service);
    for (const scope of scopes) realm.searchParams.append('scope', scope);
    const res = await request(realm, {
      ...(dispatcher ? { dispatcher } : {}),
      headers: user === '' ? {} : { authorization: basic },
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`token server refused ${JSON.stringify(user)}: ${res.statusCode}`);
    }
    const { token: issued } = (await res.body.json()) as { token: string };
    return `Bearer ${issued}`;
  };
}

/** Start a real distribution registry on a free loopback port; registers t.teardown(stop) when t is given. */
export async function startRegistry(
  t?: ExecutionContext,
  options: StartRegistryOptions = {},
): Promise<TestRegistry> {
  const {
    auth = 'none',
    users = DEFAULT_USERS,
    relativeUrls = false,
    tokenService = TOKEN_SERVICE,
  } = options;
  const binary = await resolveRegistryBinary();
  const dir = await mkdtemp(join(tmpdir(), 'ociferry-registry-'));
  const rootDir = join(dir, 'root');
  // The harness's own requests (readiness, sentinels) trust the self-signed certificate.
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  let tokenServer: TokenServer | undefined;
  let proc: RegistryProcess | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await proc?.stop();
      await Promise.all([tokenServer?.close(), agent.close()]);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  t?.teardown(stop);

  try {
    await mkdir(rootDir);
    let authSection: Record<string, unknown> | undefined;
    if (auth === 'basic') authSection = await basicAuthConfig(users, dir);
    if (auth === 'token') {
      const signingKey = await tokenSigningKey();
      tokenServer = await startTokenServer({
        service: tokenService,
        issuer: TOKEN_ISSUER,
        users,
        signingKey,
      });
      authSection = await tokenAuthConfig(tokenServer.realm, tokenService, signingKey, dir);
    }
    let tls: RegistryConfig['tls'];
    if (options.tls) {
      const { key, cert } = await selfSignedCertificate();
      tls = { certificate: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
      await Promise.all([writeFile(tls.certificate, cert), writeFile(tls.key, key)]);
    }
    const running = await launch(
      { binary, dir, rootDir, relativeUrls, auth: authSection, tls },
      agent,
    );
    proc = running;
    await running.sync();
    /** Log entries from before this point (startup probes) are not the test's. */
    const baseline = running.log.entries.length;
    const visible = (): AccessLogEntry[] =>
      running.log.entries.slice(baseline).filter((e) => e.path !== SENTINEL_PATH);

    return {
      host: running.host,
      url: running.url,
      ...(tls ? { certificate: tls.certificate } : {}),
      auth,
      rootDir,
      users,
      ...(tokenServer ? { tokenRealm: tokenServer.realm, tokenService } : {}),
      tokenRequests: tokenServer?.requests ?? [],
      authorize: authorizer(
        auth,
        users,
        tokenServer && { realm: tokenServer.realm, service: tokenService },
        agent,
      ),
      requests: async (filter = {}) => {
        await running.sync();
        return visible()
          .slice(filter.since ?? 0)
          .filter((e) => matchesFilter(e, filter));
      },
      mark: async () => {
        await running.sync();
        return visible().length;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A registry several tests use: its log and its token record are everyone's, so it offers neither. */
export type SharedRegistry = Omit<TestRegistry, 'requests' | 'mark' | 'stop' | 'tokenRequests'>;

/**
 * A registry whose requests a test counts: one of its own ({@link startRegistry}), or its view of a
 * shared one (`shared(t)`, see {@link sharedRegistry}).
 */
export type WatchedRegistry = Omit<TestRegistry, 'stop'>;

/** How a test sees a shared registry: see {@link SharedRegistryOf}. */
export interface ViewOptions {
  /** Faults of the test's proxy, as in `startFaultProxy`. */
  rules?: FaultRule[];
  /** Token mode: the users of the test's token server; default the registry's. */
  users?: Record<string, TestUser>;
}

/** The registry of a test file's tests: bare, or through a fault proxy of the calling test's own. */
export interface SharedRegistryOf {
  /** The shared registry itself; its access log and token record are everyone's, so it offers neither. */
  (): Promise<SharedRegistry>;
  /**
   * The shared registry as `t` sees it through a fault proxy of its own (stopped when `t` ends):
   * `url` and `host` are the proxy's, and `requests()` and `mark()` count what the registry
   * answered this test alone, as its access log records it. In token mode the challenges name a
   * token server of the test's own (signing with the registry's key, for `options.users`), whose
   * tokens alone are in `tokenRequests`.
   */
  (t: ExecutionContext, options?: ViewOptions): Promise<WatchedRegistry>;
}

/** `registry` seen through a fault proxy of `t`'s own, whose answers are `t`'s requests alone. */
async function watch(
  t: ExecutionContext,
  registry: TestRegistry,
  options: ViewOptions = {},
): Promise<WatchedRegistry> {
  if (registry.certificate !== undefined) {
    throw new Error('the fault proxy cannot front a TLS registry');
  }
  if (options.users !== undefined && registry.auth !== 'token') {
    throw new Error('a view has users of its own in token mode only');
  }
  const users = options.users ?? registry.users;
  const { tokenRealm, tokenService } = registry;
  let tokenServer: TokenServer | undefined;
  if (tokenRealm !== undefined && tokenService !== undefined) {
    const server = await startTokenServer({
      service: tokenService,
      issuer: TOKEN_ISSUER,
      users,
      signingKey: await tokenSigningKey(),
    });
    t.teardown(() => server.close());
    tokenServer = server;
  }
  const proxy = await startFaultProxy(
    t,
    registry.url,
    options.rules,
    tokenServer && tokenRealm ? { realms: { [tokenRealm]: tokenServer.realm } } : {},
  );
  return {
    host: proxy.host,
    url: proxy.url,
    auth: registry.auth,
    rootDir: registry.rootDir,
    users,
    ...(tokenServer ? { tokenRealm: tokenServer.realm, tokenService } : {}),
    tokenRequests: tokenServer?.requests ?? [],
    authorize: authorizer(
      registry.auth,
      users,
      tokenServer && tokenService ? { realm: tokenServer.realm, service: tokenService } : undefined,
    ),
    requests: async (filter = {}) =>
      proxy.answered.slice(filter.since ?? 0).filter((e) => matchesFilter(e, filter)),
    mark: async () => proxy.answered.length,
  };
}

/**
 * A registry shared by the tests of a file, for tests that need none of their own: what they
 * check is what they read back from repositories of their own, or what the registry answered
 * them and the tokens they were given (`shared(t)`: through a fault proxy and, in token mode, a
 * token server of the test's own). The bare registry has no `requests()` or `mark()`: its log
 * mixes every test's requests. Started by the first test that asks for it, stopped after the
 * file's last test: call at the top level of a test file with its `test`. Views are not for TLS
 * (the proxy speaks plain HTTP).
 */
export function sharedRegistry(test: TestFn, options: StartRegistryOptions = {}): SharedRegistryOf {
  let started: Promise<TestRegistry> | undefined;
  test.after.always(async () => {
    const registry = await started?.catch(() => undefined);
    await registry?.stop();
  });
  const bare = (): Promise<TestRegistry> => {
    started ??= startRegistry(undefined, options);
    return started;
  };
  return ((t?: ExecutionContext, view?: ViewOptions) =>
    t === undefined
      ? bare()
      : bare().then((registry) => watch(t, registry, view))) as SharedRegistryOf;
}
