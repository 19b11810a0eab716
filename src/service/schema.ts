import type { SqlDatabase } from './sql.ts';

/**
 * The cache service's tables, one dialect for PGlite and PostgreSQL. `cache_blobs` gets a row only
 * after the blob store committed the bytes; results are served only when every blob of their
 * chain has a row, so a record never points at a missing blob.
 */
const SCHEMA = [
  `create table if not exists cache_records (
     ns text not null, digest text not null, primary key (ns, digest))`,
  `create table if not exists cache_links (
     ns text not null, source text not null, target text not null, input integer not null,
     selector text not null, primary key (ns, target, input, source, selector))`,
  `create table if not exists cache_blobs (
     ns text not null, digest text not null, size bigint not null, primary key (ns, digest))`,
  `create table if not exists cache_results (
     ns text not null, record text not null, chain text not null, layers text not null,
     created_at text not null, primary key (ns, record, chain))`,
  `create table if not exists cache_mounts (
     ns text not null, name text not null, digest text not null, size bigint not null,
     primary key (ns, name))`,
];

/** Advisory lock id serializing schema creation between instances sharing one database. */
const SCHEMA_LOCK = 0x6f636966;

/** Create the tables when missing; safe when several instances start at once. */
export async function migrate(db: SqlDatabase): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    for (const statement of SCHEMA) await tx.query(statement);
  });
}
