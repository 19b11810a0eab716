import { OciferryError } from '../errors.ts';

/** One row of a query result, column name to value. */
export type SqlRow = Record<string, unknown>;

/** What a statement may run on: the database itself or one transaction of it. */
export interface SqlExecutor {
  /** Run one statement with `$1`-style parameters; the rows it returns (none for most writes). */
  query<T extends SqlRow = SqlRow>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

/**
 * The little of SQL the cache service needs, with one dialect (PostgreSQL's) for both the embedded
 * PGlite and a PostgreSQL server: statements, transactions, close.
 */
export interface SqlDatabase extends SqlExecutor {
  /** `pglite` or `postgres`: names the backend in logs and metrics. */
  readonly kind: 'pglite' | 'postgres';
  /**
   * Run `work` in one transaction (committed when it resolves, rolled back when it throws).
   * Serialization failures and deadlocks are retried a few times, so callers write plain upserts.
   */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The database could not be opened or answered with an error: code `DATABASE_ERROR`. */
export class DatabaseError extends OciferryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATABASE_ERROR', message, options);
  }
}

const RETRIED_STATES = new Set(['40001', '40P01']);

/** Retry `attempt` while it fails with a serialization failure or a deadlock. */
export async function retrySerializable<T>(attempt: () => Promise<T>, tries = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      const state = (error as { code?: unknown }).code;
      if (i >= tries || typeof state !== 'string' || !RETRIED_STATES.has(state)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * i));
    }
  }
}
