import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CacheServiceError } from './errors.ts';

/** What a minted URL lets its bearer do: `get` a blob, `put` a layer, `mount` (upload a cache mount). */
export type UrlOperation = 'get' | 'put' | 'mount';

/** One HMAC key; `id` travels in the URL (`kid`) so the right key verifies it. */
export interface SigningKey {
  readonly id: string;
  readonly secret: Buffer;
}

/** What a URL is bound to. */
export interface UrlGrant {
  readonly op: UrlOperation;
  readonly ns: string;
  readonly digest: string;
  /** Cache mount name (`mount` only). */
  readonly name?: string;
}

/** Options of {@link UrlSigner}. */
export interface UrlSignerOptions {
  /** Keys accepted for verification; the first one signs. Default: one random key. */
  keys?: readonly SigningKey[];
  /** Lifetime of a minted URL; default 300 s. */
  ttlSeconds?: number;
  /** Clock in milliseconds; default `Date.now`. */
  now?: () => number;
}

/** A fresh random signing key. */
export function generateSigningKey(id = randomBytes(4).toString('hex')): SigningKey {
  return { id, secret: randomBytes(32) };
}

/**
 * Mints and verifies blob URLs: each bound to namespace, digest, direction (and cache mount name),
 * expiring, HMAC-SHA256 signed. Several keys are accepted and the first signs, so keys rotate
 * without breaking URLs already handed out.
 */
export class UrlSigner {
  readonly ttlSeconds: number;
  readonly #keys: Map<string, Buffer>;
  #signing: SigningKey;
  readonly #now: () => number;

  constructor(options: UrlSignerOptions = {}) {
    const keys = options.keys?.length ? options.keys : [generateSigningKey()];
    this.#keys = new Map(keys.map((key) => [key.id, key.secret]));
    this.#signing = keys[0] as SigningKey;
    this.ttlSeconds = options.ttlSeconds ?? 300;
    this.#now = options.now ?? Date.now;
  }

  /** Sign with `key` from now on, still accepting the keys known before. */
  rotate(key: SigningKey = generateSigningKey()): void {
    this.#keys.set(key.id, key.secret);
    this.#signing = key;
  }

  /** Stop accepting URLs signed with key `id` (never the signing key). */
  retire(id: string): void {
    if (id !== this.#signing.id) this.#keys.delete(id);
  }

  /** The query string (without `?`) for a URL granting `grant`, and its expiry. */
  mint(grant: UrlGrant): { query: string; expiresAt: Date } {
    const exp = Math.floor(this.#now() / 1000) + this.ttlSeconds;
    const key = this.#signing;
    const params = new URLSearchParams({ ns: grant.ns, op: grant.op });
    if (grant.name !== undefined) params.set('name', grant.name);
    params.set('exp', String(exp));
    params.set('kid', key.id);
    params.set('sig', sign(key.secret, grant, exp));
    return { query: params.toString(), expiresAt: new Date(exp * 1000) };
  }

  /**
   * Check the query of a blob URL for `digest`: signature first (URL_INVALID), then expiry
   * (URL_EXPIRED). Returns what the URL grants.
   */
  verify(digest: string, query: URLSearchParams): UrlGrant {
    const [ns, op, exp, kid, sig] = ['ns', 'op', 'exp', 'kid', 'sig'].map((k) => query.get(k));
    const name = query.get('name') ?? undefined;
    if (!ns || !op || !exp || !kid || !sig || !/^\d{1,12}$/.test(exp)) {
      throw new CacheServiceError('URL_INVALID', 'the URL is not a minted blob URL; mint one');
    }
    if (op !== 'get' && op !== 'put' && op !== 'mount') {
      throw new CacheServiceError('URL_INVALID', 'the URL names no known operation');
    }
    const secret = this.#keys.get(kid);
    const grant: UrlGrant = { op, ns, digest, name };
    const expected = secret ? Buffer.from(sign(secret, grant, Number(exp))) : undefined;
    const given = Buffer.from(sig);
    if (!expected || expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw new CacheServiceError(
        'URL_INVALID',
        'the URL signature does not verify; mint a new URL',
      );
    }
    if (Number(exp) * 1000 <= this.#now()) {
      throw new CacheServiceError(
        'URL_EXPIRED',
        'the URL expired; mint a new one right before use',
      );
    }
    return grant;
  }
}

function sign(secret: Buffer, grant: UrlGrant, exp: number): string {
  const text = ['v1', grant.op, grant.ns, grant.digest, String(exp), grant.name ?? ''].join('\n');
  return createHmac('sha256', secret).update(text).digest('base64url');
}
