import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { Limiter } from '../util/limiter.ts';
import { DatabaseError, type SqlDatabase, type SqlExecutor, type SqlRow } from './sql.ts';

/**
 * The embedded default: PGlite (Postgres compiled to WebAssembly) keeping a real Postgres data
 * directory. It runs one statement at a time, so transactions are queued here: each one sees no
 * other's writes half done.
 */
export class PgliteDatabase implements SqlDatabase {
  readonly kind = 'pglite';
  readonly #db: PGlite;
  readonly #serial = new Limiter(1);

  private constructor(db: PGlite) {
    this.#db = db;
  }

  /** Open (creating when missing) the data directory `dir`; undefined keeps it in memory. */
  static async open(dir?: string): Promise<PgliteDatabase> {
    try {
      if (dir) await mkdir(dir, { recursive: true });
      const db = new PGlite(dir);
      await db.waitReady;
      return new PgliteDatabase(db);
    } catch (error) {
      throw new DatabaseError(`cannot open the embedded database${dir ? ` in ${dir}` : ''}`, {
        cause: error,
      });
    }
  }

  query<T extends SqlRow = SqlRow>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.#serial.run(async () => (await this.#db.query<T>(sql, [...params])).rows);
  }

  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#serial.run(() =>
      this.#db.transaction(async (tx) =>
        work({
          query: async <R extends SqlRow>(sql: string, params: readonly unknown[] = []) =>
            (await tx.query<R>(sql, [...params])).rows,
        }),
      ),
    );
  }

  async close(): Promise<void> {
    await this.#serial.run(() => this.#db.close());
  }
}
