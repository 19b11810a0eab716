import pg from 'pg';
import { redactUrl } from '../registry/redact.ts';
import {
  DatabaseError,
  retrySerializable,
  type SqlDatabase,
  type SqlExecutor,
  type SqlRow,
} from './sql.ts';

/** Options of {@link PostgresDatabase.open}. */
export interface PostgresOptions {
  /** Connections in the pool; default 10. */
  maxConnections?: number;
}

/**
 * A PostgreSQL server (`postgres://...`), for several service instances sharing one cache. Each
 * transaction runs on its own pooled connection; conflicts are retried (see {@link SqlDatabase}).
 */
export class PostgresDatabase implements SqlDatabase {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Connect to `url` and check it answers. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresDatabase> {
    const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10 });
    pool.on('error', () => {}); // an idle connection lost: the pool replaces it
    try {
      await pool.query('select 1');
    } catch (error) {
      await pool.end().catch(() => {});
      throw new DatabaseError(`cannot connect to ${safeUrl(url)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return new PostgresDatabase(pool);
  }

  async query<T extends SqlRow = SqlRow>(
    sql: string,
    params: readonly unknown[] = [],
  ): Promise<T[]> {
    return (await this.#pool.query<T>(sql, [...params])).rows;
  }

  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return retrySerializable(async () => {
      const client = await this.#pool.connect();
      try {
        await client.query('begin');
        const result = await work({
          query: async <R extends SqlRow>(sql: string, params: readonly unknown[] = []) =>
            (await client.query<R>(sql, [...params])).rows,
        });
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    });
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** `url` without its password. */
function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return redactUrl(parsed.toString());
  } catch {
    return 'the database URL';
  }
}
