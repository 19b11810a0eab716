import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CacheServiceError } from './errors.ts';

/** A token's rights: read only, or read and write. */
export type Access = 'ro' | 'rw';

/** Who a request is: the namespace its token is bound to, and its rights there. */
export interface Principal {
  readonly namespace: string;
  readonly access: Access;
}

interface Entry extends Principal {
  readonly hash: Buffer;
}

/** A namespace name: what a token file may bind a token to. */
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

function hash(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * Bearer tokens, each bound to one namespace with `ro` or `rw` rights. Only their SHA-256 is kept
 * in memory; a presented token is hashed and compared in constant time against every entry.
 */
export class TokenTable {
  #entries: Entry[];

  constructor(tokens: readonly (Principal & { token: string })[]) {
    this.#entries = tokens.map(({ namespace, access, token }) => ({
      namespace,
      access,
      hash: hash(token),
    }));
  }

  /** Parse `NAMESPACE rw|ro TOKEN` lines (blank lines and `#` comments skipped). */
  static parse(text: string, source = 'the token file'): TokenTable {
    const tokens: (Principal & { token: string })[] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const [namespace, access, token, ...rest] = line.split(/\s+/);
      if (
        !namespace ||
        !NAMESPACE.test(namespace) ||
        (access !== 'ro' && access !== 'rw') ||
        !token ||
        token.length < 16 ||
        rest.length > 0
      ) {
        // Never quote the line: it may hold a token.
        throw new CacheServiceError(
          'BAD_REQUEST',
          `${source} line ${i + 1} is not "NAMESPACE rw|ro TOKEN" (tokens of 16 characters or more)`,
        );
      }
      tokens.push({ namespace, access, token });
    });
    return new TokenTable(tokens);
  }

  /** Read and parse a token file. */
  static async load(path: string): Promise<TokenTable> {
    return TokenTable.parse(await readFile(path, 'utf8'), path);
  }

  /** Replace the table's tokens with `other`'s (a reload). */
  replace(other: TokenTable): void {
    this.#entries = other.#entries;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The principal of `token`; undefined when it is unknown. Constant time per entry. */
  lookup(token: string): Principal | undefined {
    const presented = hash(token);
    let found: Entry | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.hash, presented) && !found) found = entry;
    }
    return found && { namespace: found.namespace, access: found.access };
  }
}
