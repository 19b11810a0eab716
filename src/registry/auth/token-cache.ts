import { LRUCache } from 'lru-cache';
import { normalizeScopes } from './scope.ts';

/** Options of {@link TokenCache}. */
export interface TokenCacheOptions {
  /** Tokens kept at most; default 1000. */
  max?: number;
}

/**
 * Bearer tokens by (registry, scope set), each kept until shortly before it expires. Scope sets are
 * normalised, so `[a:pull, a:push]` and `[a:push,pull]` share one entry.
 */
export class TokenCache {
  readonly #cache: LRUCache<string, string>;

  constructor(options: TokenCacheOptions = {}) {
    this.#cache = new LRUCache({ max: options.max ?? 1000 });
  }

  /** A live token for exactly this scope set, if one is cached. */
  get(registry: string, scopes: readonly string[]): string | undefined {
    return this.#cache.get(key(registry, scopes));
  }

  /**
   * Cache `token` for `expiresInSec` less a safety margin (10 % of the lifetime, at most 30 s),
   * so that a token is never sent just as it expires.
   */
  set(registry: string, scopes: readonly string[], token: string, expiresInSec: number): void {
    const margin = Math.min(30, expiresInSec * 0.1);
    const ttl = Math.floor((expiresInSec - margin) * 1000);
    if (ttl <= 0) return;
    this.#cache.set(key(registry, scopes), token, { ttl });
  }

  /** Forget the token for this scope set. */
  delete(registry: string, scopes: readonly string[]): void {
    this.#cache.delete(key(registry, scopes));
  }
}

function key(registry: string, scopes: readonly string[]): string {
  return `${registry}\n${normalizeScopes(scopes).join(' ')}`;
}
