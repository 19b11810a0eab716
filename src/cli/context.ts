import { formatReference, type Reference } from '../reference/index.ts';
import {
  CredentialStore,
  describeRateLimit,
  type RateLimit,
  RegistryClient,
  type RegistryClientOptions,
} from '../registry/index.ts';
import { proxyOptionsFromEnv } from '../registry/proxy.ts';
import { OciferryContext } from '../remote/index.ts';
import type { CliIO } from './io.ts';
import { createProgress, type Progress, type ProgressMode } from './progress/index.ts';

/** Share of a registry's request quota below which the run warns that it is nearly used up. */
const QUOTA_WARNING_SHARE = 0.1;

/** The global flags, as commander parses them. */
export interface GlobalOptions {
  plainHttp?: boolean;
  insecure?: boolean;
  progress: ProgressMode;
  quiet?: boolean;
  json?: boolean;
  debug?: boolean;
}

/**
 * What a command runs with: the global flags, one registry client (closed when the command
 * ends), the abort signal fired by Ctrl-C, and the output helpers that honour `-q` and `--json`.
 */
export class CliContext {
  readonly options: GlobalOptions;
  readonly io: CliIO;
  readonly signal: AbortSignal;
  /** Where this run's client finds credentials; error hints ask it where they came from. */
  readonly credentials: CredentialStore;
  /** References the command works on, so that error hints can name the registry and tag. */
  readonly references: Reference[] = [];
  /** What the command works on, for the error line: references and other operands. */
  readonly subjects: string[] = [];
  #client: RegistryClient | undefined;
  #library: OciferryContext | undefined;
  readonly #clients: RegistryClient[] = [];
  /** Every registry (`--insecure`), or those whose caches ask for it. */
  readonly #insecure: true | string[];
  /** Registries whose nearly spent request quota was reported already. */
  readonly #quotaWarned = new Set<string>();
  /** The progress display on screen, which status lines go through (see progress()). */
  #display: Progress | undefined;

  constructor(options: GlobalOptions, io: CliIO, signal: AbortSignal) {
    this.options = options;
    this.io = io;
    this.signal = signal;
    this.credentials = new CredentialStore({ env: io.env });
    this.#insecure = options.insecure === true ? true : [];
  }

  /**
   * HTTP requests this run has sent so far, over all its clients: every attempt, retries, redirect
   * hops, pings and token requests included (the `requests` of `--json`).
   */
  get requestCount(): number {
    return this.#clients.reduce((sum, client) => sum + client.requestCount, 0);
  }

  /** True with `--json`: stdout carries one JSON object and nothing else. */
  get json(): boolean {
    return this.options.json === true;
  }

  /** The registry client of this run, created on first use with the global flags. */
  get client(): RegistryClient {
    this.#client ??= this.createClient(this.credentials);
    return this.#client;
  }

  /**
   * The library context of this run, with its {@link client}: the blob locations, parsed cache
   * configs and downloads it learns are this run's only and dropped when it ends, as if the run
   * were a process of its own (runs in one process, tests or an embedding program, share none).
   */
  get library(): OciferryContext {
    this.#library ??= new OciferryContext({ client: this.client });
    return this.#library;
  }

  /**
   * A registry client with the global flags that finds credentials in `credentials` (login
   * checks typed ones with it); closed with the context.
   */
  createClient(credentials: CredentialStore): RegistryClient {
    const options: RegistryClientOptions = {
      credentials,
      // The proxies of this run's environment, not necessarily the process's.
      proxy: proxyOptionsFromEnv(this.io.env),
      insecure: this.#insecure,
      onWarning: (warning) => this.info(`warning: registry says: ${warning}`),
      onRateLimit: (registry, quota) => this.#checkQuota(registry, quota),
    };
    if (this.options.plainHttp) options.plainHttp = true;
    if (this.options.debug) {
      options.onRequest = (e) => this.debug(`${e.method} ${e.url} -> ${e.status || 'no response'}`);
    }
    const client = new RegistryClient(options);
    this.#clients.push(client);
    return client;
  }

  /**
   * Skip TLS certificate verification for `registries` only, because they ask for it
   * (`registry.insecure=true` in a cache CSV); a warning says so. Every other registry is still
   * verified. Call before the first use of {@link client}.
   */
  skipTlsVerification(registries: readonly string[]): void {
    const listed = this.#insecure;
    if (listed === true) return;
    const added = [...new Set(registries)].filter((name) => !listed.includes(name));
    if (added.length === 0) return;
    listed.push(...added);
    this.info(
      `warning: registry.insecure=true: TLS certificates of ${added.join(', ')} are not verified`,
    );
  }

  /** Remember the references the command works on, for the error line and hints. */
  uses(...references: Reference[]): void {
    this.concerns(...references);
    this.subjects.push(...references.map(formatReference));
  }

  /** Remember references for error hints only (the error line names them otherwise). */
  concerns(...references: Reference[]): void {
    this.references.push(...references);
  }

  /** Remember an operand that is not a reference (a registry host), for the error line. */
  about(subject: string): void {
    this.subjects.push(subject);
  }

  /**
   * The progress display for a copy: none with `-q`, `--json` or `--progress none`. Until it is
   * stopped, {@link info} lines go through it, so that a warning does not land inside the bars.
   */
  progress(): Progress | undefined {
    if (this.options.quiet || this.json) return undefined;
    const display = createProgress(this.options.progress, this.io.stderr);
    if (!display) return undefined;
    this.#display = display;
    return {
      onEvent: display.onEvent,
      note: (line) => display.note(line),
      stop: () => {
        if (this.#display === display) this.#display = undefined;
        display.stop();
      },
    };
  }

  /** A result line on stdout. */
  print(text: string): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** The one JSON object of `--json`. */
  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** A status message on stderr, unless `-q` or `--json`. */
  info(text: string): void {
    if (this.options.quiet || this.json) return;
    if (this.#display) this.#display.note(text);
    else this.io.stderr.write(`${text}\n`);
  }

  /** A `--debug` line on stderr. */
  debug(text: string): void {
    if (this.options.debug) this.io.stderr.write(`debug: ${text}\n`);
  }

  /** Drop the library context and close the clients' connections. */
  async close(): Promise<void> {
    await this.#library?.close();
    await Promise.all(this.#clients.map((client) => client.close()));
  }

  /** Warn once per registry when less than 10% of its request quota is left. */
  #checkQuota(registry: string, quota: RateLimit): void {
    const { limit, remaining } = quota;
    if (remaining === undefined || remaining >= limit * QUOTA_WARNING_SHARE) return;
    if (this.#quotaWarned.has(registry)) return;
    this.#quotaWarned.add(registry);
    this.info(
      `warning: ${registry} rate limit nearly used up: ${describeRateLimit(quota)}; later requests may be refused (429) until the window resets`,
    );
  }
}
