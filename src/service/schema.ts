import type { SqlDatabase, SqlExecutor } from './sql.ts';

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
  // Retention (src/service/retention.ts): when records and blob rows were last used, apart from
  // the tables ImportCache shows so that noting a use changes no generation.
  `create table if not exists cache_record_uses (
     ns text not null, digest text not null, touched_at timestamptz not null default now(),
     primary key (ns, digest))`,
  'create index if not exists cache_blobs_digest on cache_blobs (digest)',
];

/**
 * Made once, filled from `cache_blobs` (blobs stored before the retention existed count as used
 * at its start): when a namespace last used each blob row (uploaded it, or was told it exists),
 * and the blobs the store may hold, a row made (or touched) when an upload starts, before any
 * byte is stored, and deleted with the blob.
 */
const ONCE: Record<string, readonly string[]> = {
  cache_blob_uses: [
    `create table cache_blob_uses (
       ns text not null, digest text not null, touched_at timestamptz not null default now(),
       primary key (ns, digest))`,
    'insert into cache_blob_uses (ns, digest) select ns, digest from cache_blobs',
  ],
  cache_stored: [
    `create table cache_stored (
       digest text primary key, touched_at timestamptz not null default now())`,
    'insert into cache_stored (digest) select distinct digest from cache_blobs',
  ],
};

/** Advisory lock id serializing schema creation between instances sharing one database. */
const SCHEMA_LOCK = 0x6f636966;
/** Advisory lock class of a namespace (the second key is the hash of its name). */
const NAMESPACE_LOCK = 0x6f636967;
/** Advisory lock class of a blob of the store (the second key is the hash of its digest). */
const STORED_LOCK = 0x6f636968;

/** Create the tables when missing; safe when several instances start at once. */
export async function migrate(db: SqlDatabase): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    for (const statement of SCHEMA) await tx.query(statement);
    for (const [table, statements] of Object.entries(ONCE)) {
      const [found] = await tx.query<{ missing: boolean }>(
        'select to_regclass($1) is null as missing',
        [table],
      );
      if (found?.missing) for (const statement of statements) await tx.query(statement);
    }
  });
}

/**
 * Take the lock of namespace `ns` until the transaction ends: `shared` by the calls that add
 * records, links, results and blob rows or note their use (they run side by side), `exclusive`
 * by the retention, which then sees the namespace still while it decides what to drop and drops
 * it.
 */
export async function lockNamespace(
  tx: SqlExecutor,
  ns: string,
  mode: 'shared' | 'exclusive',
): Promise<void> {
  const lock = mode === 'shared' ? 'pg_advisory_xact_lock_shared' : 'pg_advisory_xact_lock';
  await tx.query(`select ${lock}($1, hashtext($2))`, [NAMESPACE_LOCK, ns]);
}

/**
 * Take the locks of blobs `digests` of the store until the transaction ends (sorted, so that two
 * transactions never wait on each other): an upload noting it starts, and the collection of a
 * blob no namespace holds, never cross.
 */
export async function lockStoredBlobs(tx: SqlExecutor, digests: readonly string[]): Promise<void> {
  for (const digest of [...digests].sort()) {
    await tx.query('select pg_advisory_xact_lock($1, hashtext($2))', [STORED_LOCK, digest]);
  }
}
