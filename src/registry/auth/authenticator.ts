import { SingleFlight } from '../../util/single-flight.ts';
import { RegistryError } from '../errors.ts';
import { type HttpClient, headerValues } from '../http.ts';
import { checkPing } from '../ping.ts';
import { redactUrl } from '../redact.ts';
import { type Challenge, parseChallenges, preferredChallenge } from './challenge.ts';
import type { Credential, CredentialStore } from './credentials.ts';
import { normalizeScopes, scopesCover } from './scope.ts';
import { basicAuthorization, fetchToken } from './token.ts';
import type { TokenCache } from './token-cache.ts';

/** What a request needs authorization for. */
export interface AuthTarget {
  /** Registry as in a reference (`docker.io`, `host:port`). */
  registry: string;
  /** Base URL of the registry API (`https://host`), where the ping goes. */
  baseUrl: URL;
  /** Repository whose credentials apply (credential stores may key by namespace). */
  repository?: string;
  scopes: readonly string[];
  signal?: AbortSignal;
}

/** The `Authorization` a request carries, and how it was obtained. */
export interface Authorization {
  readonly scheme: 'none' | 'basic' | 'bearer';
  /** Header value; undefined for an anonymous request. */
  readonly header?: string;
  /** True when a token was minted for this request rather than taken from the cache. */
  readonly fresh: boolean;
  /** The challenge it answers. */
  readonly challenge?: Challenge;
}

const ANONYMOUS: Authorization = { scheme: 'none', fresh: false };

/**
 * Works out the `Authorization` of each registry request: pings `/v2/` once per registry to learn
 * its scheme, looks credentials up at request time (never captured), fetches bearer tokens for the
 * request's exact scope set (cached with their expiry), and after a 401 decides whether one retry
 * with a fresh token can help.
 */
export class Authenticator {
  readonly #http: HttpClient;
  readonly #credentials: CredentialStore;
  readonly #tokens: TokenCache;
  readonly #challenges = new Map<string, Challenge | null>();
  readonly #pings = new SingleFlight<string, Challenge | null>();
  readonly #tokenFlights = new SingleFlight<string, string>();
  /** Token realms that answered the OAuth2 POST with 404. */
  readonly #getOnlyRealms = new Set<string>();

  constructor(http: HttpClient, credentials: CredentialStore, tokens: TokenCache) {
    this.#http = http;
    this.#credentials = credentials;
    this.#tokens = tokens;
  }

  /** The authorization for a first attempt of a request to `target`. */
  async authorize(target: AuthTarget): Promise<Authorization> {
    const challenge = await this.challenge(target);
    if (challenge === null) return ANONYMOUS;
    return this.#answer(target, challenge, false);
  }

  /**
   * After a 401 carrying `wwwAuthenticate`: the authorization to retry with once, or undefined when
   * a retry cannot change the outcome (same credentials, or a token minted just now that already
   * covered every scope the server asks for).
   */
  async reauthorize(
    target: AuthTarget,
    previous: Authorization,
    wwwAuthenticate: readonly string[],
  ): Promise<Authorization | undefined> {
    const challenge = preferredChallenge(parseChallenges([...wwwAuthenticate]));
    if (challenge === undefined) return undefined;
    this.#challenges.set(target.registry, challenge);
    const asked = challenge.params.scope?.split(' ').filter((s) => s !== '') ?? [];
    const changed =
      previous.scheme !== challenge.scheme ||
      previous.challenge?.params.realm !== challenge.params.realm ||
      !scopesCover(target.scopes, asked);
    if (!changed && (challenge.scheme !== 'bearer' || previous.fresh)) return undefined;
    const answer = await this.#answer(target, challenge, true, asked);
    return answer.header === undefined || answer.header === previous.header ? undefined : answer;
  }

  /** The registry's challenge (null: no auth needed), from the memo or a ping of `/v2/`. */
  async challenge(target: AuthTarget): Promise<Challenge | null> {
    const known = this.#challenges.get(target.registry);
    if (known !== undefined) return known;
    return this.#pings.do(target.registry, (signal) => this.#ping(target, signal), target.signal);
  }

  /** Ping `/v2/` for the challenge of `target`'s registry, on the signal of the shared ping. */
  async #ping(target: AuthTarget, signal: AbortSignal): Promise<Challenge | null> {
    const url = new URL('/v2/', target.baseUrl);
    const response = await this.#http.send({ method: 'GET', url, signal });
    await checkPing(response);
    if (response.status === 429 || response.status >= 500) {
      throw new RegistryError({ status: response.status, method: 'GET', url: redactUrl(url) });
    }
    const challenge =
      response.status === 401
        ? (preferredChallenge(
            parseChallenges(headerValues(response.headers, 'www-authenticate')),
          ) ?? null)
        : null;
    this.#challenges.set(target.registry, challenge);
    return challenge;
  }

  async #answer(
    target: AuthTarget,
    challenge: Challenge,
    refresh: boolean,
    extraScopes: readonly string[] = [],
  ): Promise<Authorization> {
    const credential = await this.#credential(target);
    if (challenge.scheme === 'basic') {
      if (credential?.kind !== 'basic') return { ...ANONYMOUS, challenge };
      const header = basicAuthorization(credential.username, credential.password);
      return { scheme: 'basic', header, fresh: false, challenge };
    }
    if (challenge.scheme !== 'bearer') return { ...ANONYMOUS, challenge };
    if (credential?.kind === 'registryToken') {
      return { scheme: 'bearer', header: `Bearer ${credential.token}`, fresh: false, challenge };
    }
    const cached = refresh ? undefined : this.#tokens.get(target.registry, target.scopes);
    if (cached !== undefined)
      return { scheme: 'bearer', header: `Bearer ${cached}`, fresh: false, challenge };
    const scopes = normalizeScopes([...target.scopes, ...extraScopes]);
    const flightKey = `${target.registry}\n${refresh}\n${scopes.join(' ')}`;
    const token = await this.#tokenFlights.do(
      flightKey,
      async (signal) => {
        const minted = await fetchToken(this.#http, {
          challenge,
          registryUrl: target.baseUrl,
          scopes,
          credential,
          getOnlyRealms: this.#getOnlyRealms,
          signal,
        });
        this.#tokens.set(target.registry, target.scopes, minted.token, minted.expiresInSec);
        return minted.token;
      },
      target.signal,
    );
    return { scheme: 'bearer', header: `Bearer ${token}`, fresh: true, challenge };
  }

  async #credential(target: AuthTarget): Promise<Credential | undefined> {
    const found = await this.#credentials.lookup(target.registry, target.repository, target.signal);
    return found.credential;
  }
}
