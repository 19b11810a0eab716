import { OciferryError } from '../errors.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/index.ts';
import { SingleFlight } from '../util/single-flight.ts';
import { BlobLocations, type BlobLocationsOptions } from './blob-locations.ts';

/** Options of {@link OciferryContext}. */
export interface OciferryContextOptions {
  /**
   * The client of operations given none. Default: one made with `clientOptions` on first use,
   * closed with the context (a client given here is its owner's to close).
   */
  client?: RegistryClient;
  /** Options of the client the context makes when none is given. */
  clientOptions?: RegistryClientOptions;
  /** Bounds of the context's {@link BlobLocations}. */
  blobLocations?: BlobLocationsOptions;
  /** @deprecated Use {@link blobLocations}. */
  sources?: BlobLocationsOptions;
}

/** Options of the calls that take a context: `resolve`, `copy`, the cache functions, ... */
export interface ContextOptions {
  /**
   * Where the defaults of omitted options (client, blob locations, caches) come from, and which
   * downloads in flight are shared; default {@link defaultContext}.
   */
  context?: OciferryContext;
}

/**
 * Something a layer above keeps once per context (the cache layer's parsed configs): made on
 * first use by `create`, dropped when the context closes. The key object itself is the key.
 */
export interface ContextKey<T> {
  create(): T;
}

/** A closed context was used. */
export class ContextClosedError extends OciferryError {
  constructor() {
    super(
      'CONTEXT_CLOSED',
      'this ociferry context is closed; make a new one, or use the default context',
    );
  }
}

/**
 * What a series of operations share: a registry client (connections, tokens), where blobs are
 * known to live (for mounts), downloads in flight, and the caches of the layers above. Pass one
 * in options to keep a job's state apart from the rest of the process and to release it with
 * {@link close}; operations given none use {@link defaultContext}.
 */
export class OciferryContext {
  /** Blob locations learnt by resolves and copies, for later mounts (bounded). */
  readonly blobLocations: BlobLocations;
  /** Blob downloads in flight, one per (layout, digest): what concurrent `unlazy` calls share. */
  readonly downloads = new SingleFlight<string, boolean>();
  readonly #given: RegistryClient | undefined;
  readonly #clientOptions: RegistryClientOptions | undefined;
  #made: RegistryClient | undefined;
  readonly #shared = new Map<ContextKey<unknown>, unknown>();
  #closed = false;

  constructor(options: OciferryContextOptions = {}) {
    this.#given = options.client;
    this.#clientOptions = options.clientOptions;
    this.blobLocations = new BlobLocations(options.blobLocations ?? options.sources);
  }

  /** @deprecated Use {@link blobLocations}. */
  get sources(): BlobLocations {
    return this.blobLocations;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The client of operations given none: the one given to the constructor, else one made on
   * first use (and made again if someone closed it). Throws `CONTEXT_CLOSED` after {@link close}.
   */
  get client(): RegistryClient {
    if (this.#closed) throw new ContextClosedError();
    if (this.#given) return this.#given;
    if (!this.#made || this.#made.closed) this.#made = new RegistryClient(this.#clientOptions);
    return this.#made;
  }

  /** The value this context keeps under `key`, made on first use. */
  shared<T>(key: ContextKey<T>): T {
    if (this.#closed) throw new ContextClosedError();
    if (!this.#shared.has(key)) this.#shared.set(key, key.create());
    return this.#shared.get(key) as T;
  }

  /**
   * Close the client the context made and drop what it keeps. Operations already running finish
   * or fail on their own; later uses of this context fail with `CONTEXT_CLOSED`, except through
   * {@link defaultContext}, which replaces a closed default.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#shared.clear();
    const made = this.#made;
    this.#made = undefined;
    await made?.close();
  }
}

let current: OciferryContext | undefined;

/**
 * The context of operations given none: made on first use, and made again on the next use after
 * it was closed. {@link setDefaultContext} replaces it.
 */
export function defaultContext(): OciferryContext {
  if (!current || current.closed) current = new OciferryContext();
  return current;
}

/**
 * Make `context` the default of operations given none; without one, the next use makes a fresh
 * default. The previous default is not closed: the caller decides.
 */
export function setDefaultContext(context?: OciferryContext): void {
  current = context;
}

/** The context `options` name, else the default one. */
export function contextOf(options: ContextOptions = {}): OciferryContext {
  return options.context ?? defaultContext();
}

/** The client of the default context. */
export function defaultClient(): RegistryClient {
  return defaultContext().client;
}
