import type { SqlDatabase } from './sql.ts';

/**
 * The cache service's tables, one dialect for PGlite and PostgreSQL. `cache_blobs` gets a row only
 * after the blob store committed the bytes; results are served only when every blob of their
 * chain has a row, so a record never points at a missing blob. `cache_namespaces` holds each
 * namespace's generation, which triggers bump on every change of what ImportCache serves.
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
  `create table if not exists cache_namespaces (
     ns text primary key, generation bigint not null)`,
  // Bumps the generation of every namespace a statement changed rows of, in the statement's
  // own transaction: whoever writes (an engine's call, retention, another instance, a hand
  // edit), a cached ImportCache document of an older generation is never served again.
  `create or replace function cache_bump_generation() returns trigger language plpgsql as $$
   begin
     insert into cache_namespaces (ns, generation) select distinct ns, 1 from changed
     on conflict (ns) do update set generation = cache_namespaces.generation + 1;
     return null;
   end $$`,
  ...['cache_records', 'cache_links', 'cache_results', 'cache_blobs'].flatMap((table) =>
    (
      [
        ['insert', 'new'],
        ['update', 'new'],
        ['delete', 'old'],
      ] as const
    ).map(
      ([event, rows]) =>
        `create or replace trigger ${table}_${event}_generation after ${event} on ${table}
         referencing ${rows} table as changed for each statement
         execute function cache_bump_generation()`,
    ),
  ),
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
