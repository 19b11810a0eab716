import { createHash } from 'node:crypto';
import { compareGoTimes } from '../cache/go-time.ts';
import { SingleFlight } from '../util/single-flight.ts';
import {
  type ExportRecord,
  type LayerDescriptor,
  UNCOMPRESSED_ANNOTATION,
  type UpdateLayersRequest,
  type UpdateRecordsRequest,
} from './api.ts';
import { BlobPresence } from './blob-presence.ts';
import { CacheServiceError } from './errors.ts';
import {
  buildImportDocument,
  type NamespaceRows,
  type ResultRow,
  type StoredLayer,
} from './import-document.ts';
import { lockNamespace } from './schema.ts';
import type { SqlDatabase, SqlExecutor } from './sql.ts';
import { type WantedOptions, wantedExports } from './wanted.ts';

/** A stored blob row: the blob store committed it for this namespace. */
export interface StoredBlob {
  readonly digest: string;
  readonly size: number;
}

/** A stored cache mount. */
export interface StoredMount {
  readonly name: string;
  readonly digest: string;
  readonly size: number;
}

/** An ImportCache document and the generation of the namespace it shows. */
interface ImportDocument {
  readonly generation: number;
  readonly bytes: Buffer;
}

/** Options of {@link CacheRecords}. */
export interface CacheRecordsOptions {
  /**
   * Bytes of ImportCache documents kept in memory, the least recently served namespace's
   * dropped first; default 256 MiB (a 100k-record namespace takes 12 MB).
   */
  readonly importCacheBytes?: number;
  /** The retention's grace period (default {@link DEFAULT_GRACE_MS}): how long a blob row seen is believed. */
  readonly graceMs?: number;
}

/**
 * How long the retention keeps what was used lately whatever its limits: blobs uploaded or
 * looked up, records an engine was asked to export results of. Default 1 hour.
 */
export const DEFAULT_GRACE_MS = 60 * 60 * 1000;

/**
 * The cache metadata of every namespace in SQL: records, links, results (layer chains), committed
 * blobs and cache mounts. Every write is an upsert or one transaction, so concurrent engines lose
 * no update, and a failed call leaves nothing behind.
 */
export class CacheRecords {
  readonly #db: SqlDatabase;
  /**
   * Blob rows seen, by `ns digest`, each believed for a quarter of the retention's grace period
   * after the lookup that noted its use: the retention deletes only rows unused for the whole
   * period, so a row seen stays true while it is believed.
   */
  readonly #blobs: BlobPresence;
  /** The last ImportCache document built, by namespace. */
  readonly #documents: SizedLru<ImportDocument>;
  readonly #building = new SingleFlight<string, ImportDocument>();

  constructor(db: SqlDatabase, options: CacheRecordsOptions = {}) {
    this.#db = db;
    this.#documents = new SizedLru(options.importCacheBytes ?? 256 * 1024 * 1024);
    this.#blobs = new BlobPresence({ ttlMs: (options.graceMs ?? DEFAULT_GRACE_MS) / 4 });
  }

  /**
   * Add the engine's records and links; answer the records whose result the service wants
   * exported (one result id each): those the namespace has no result of, or only older ones
   * (see {@link wantedExports}). The records asked for are noted as used: the retention keeps
   * them (and what they link to) until their results come.
   */
  async updateRecords(
    ns: string,
    request: UpdateRecordsRequest,
    options: WantedOptions = {},
  ): Promise<ExportRecord[]> {
    const digests = [...new Set(request.records.map((r) => r.digest))];
    const links = request.links ?? [];
    const linked = links.flatMap((l) => [l.source, l.target]);
    const all = [...new Set([...digests, ...linked])];
    return this.#db.transaction(async (tx) => {
      await lockNamespace(tx, ns, 'shared');
      await insertRecords(tx, ns, all);
      if (links.length > 0) {
        await tx.query(
          `insert into cache_links (ns, source, target, input, selector)
           select $1, * from unnest($2::text[], $3::text[], $4::int[], $5::text[])
           on conflict do nothing`,
          [
            ns,
            links.map((l) => l.source),
            links.map((l) => l.target),
            links.map((l) => l.input),
            links.map((l) => l.selector ?? ''),
          ],
        );
      }
      const have = await tx.query<{ record: string; created_at: string }>(
        'select record, created_at from cache_results where ns = $1 and record = any($2::text[])',
        [ns, digests],
      );
      const held = new Map<string, string[]>();
      for (const row of have) {
        const times = held.get(row.record);
        if (times) times.push(row.created_at);
        else held.set(row.record, [row.created_at]);
      }
      const wanted = wantedExports(request.records, held, options);
      if (wanted.length > 0) {
        await tx.query(
          `insert into cache_record_uses (ns, digest) select $1, unnest($2::text[])
           on conflict (ns, digest) do update set touched_at = now()`,
          [ns, wanted.map((w) => w.digest)],
        );
      }
      return wanted;
    });
  }

  /**
   * Add results (layer chains) to known records. Every blob must be committed in the namespace
   * with the reported size (BLOB_UNKNOWN otherwise) and every record known (RECORD_UNKNOWN);
   * nothing is applied unless all are. Returns how many results were new, or renewed: a result
   * held already whose reported `createdAt` is later takes it.
   */
  async updateLayers(ns: string, request: UpdateLayersRequest): Promise<number> {
    const blobs = [...new Set(request.results.flatMap((r) => r.layers.map((l) => l.digest)))];
    const records = [...new Set(request.results.map((r) => r.recordDigest))];
    return this.#db.transaction(async (tx) => {
      await lockNamespace(tx, ns, 'shared');
      const stored = await tx.query<{ digest: string; size: string | number }>(
        'select digest, size from cache_blobs where ns = $1 and digest = any($2::text[])',
        [ns, blobs],
      );
      const sizes = new Map(stored.map((row) => [row.digest, Number(row.size)]));
      for (const layer of request.results.flatMap((r) => r.layers)) {
        const size = sizes.get(layer.digest);
        if (size === undefined) {
          throw new CacheServiceError(
            'BLOB_UNKNOWN',
            `blob ${layer.digest} is not in this namespace; upload it first`,
          );
        }
        if (size !== layer.size) {
          throw new CacheServiceError(
            'BAD_REQUEST',
            `blob ${layer.digest} has ${size} bytes, not the ${layer.size} reported`,
          );
        }
      }
      const known = await tx.query<{ digest: string }>(
        'select digest from cache_records where ns = $1 and digest = any($2::text[])',
        [ns, records],
      );
      const knownSet = new Set(known.map((row) => row.digest));
      const unknown = records.find((digest) => !knownSet.has(digest));
      if (unknown) {
        throw new CacheServiceError(
          'RECORD_UNKNOWN',
          `record ${unknown} was never reported; report it with UpdateCacheRecords first`,
        );
      }
      const rows = request.results.map((result) => ({
        record: result.recordDigest,
        chain: chainDigest(result.layers.map((l) => l.digest)),
        layers: JSON.stringify(result.layers.map(storedLayer)),
        createdAt: result.createdAt ?? new Date().toISOString(),
        dated: result.createdAt !== undefined,
      }));
      const added = await tx.query<{ record: string; chain: string }>(
        `insert into cache_results (ns, record, chain, layers, created_at)
         select $1, * from unnest($2::text[], $3::text[], $4::text[], $5::text[])
         on conflict do nothing returning record, chain`,
        [
          ns,
          rows.map((r) => r.record),
          rows.map((r) => r.chain),
          rows.map((r) => r.layers),
          rows.map((r) => r.createdAt),
        ],
      );
      const inserted = new Set(added.map((row) => `${row.record} ${row.chain}`));
      const held = rows.filter((r) => r.dated && !inserted.has(`${r.record} ${r.chain}`));
      return added.length + (await renewResults(tx, ns, held));
    });
  }

  /**
   * The namespace as cacheconfig v0 bytes (see {@link buildImportDocument}): every record and
   * link, and the results whose blobs are all committed (a result with a missing blob is left
   * out, never served). The document of the namespace's current generation is kept in memory, so
   * an import that follows no change costs one read of the generation; after a change it is built
   * again from one snapshot of the tables (one statement each).
   */
  async importCache(ns: string): Promise<Buffer> {
    const generation = await this.generation(ns);
    for (;;) {
      const kept = this.#documents.get(ns);
      if (kept && kept.generation >= generation) {
        this.#documents.touch(ns);
        return kept.bytes;
      }
      const built = await this.#building.do(ns, () => this.#build(ns));
      // A build that started before `generation` was read may hold an older snapshot.
      if (built.generation >= generation) return built.bytes;
    }
  }

  /** The namespace's generation: bumped (by triggers) in every transaction that changes it. */
  async generation(ns: string, tx: SqlExecutor = this.#db): Promise<number> {
    const rows = await tx.query<{ generation: unknown }>(
      'select generation from cache_namespaces where ns = $1',
      [ns],
    );
    return rows[0] ? Number(rows[0].generation) : 0;
  }

  /**
   * The namespace's rows as ImportCache reads them, read on `tx`, whose transaction holds the
   * namespace's lock: what the retention prunes, as it stands while no call changes it.
   */
  namespaceRows(ns: string, tx: SqlExecutor): Promise<NamespaceRows> {
    return readRows(tx, ns, false);
  }

  async #build(ns: string): Promise<ImportDocument> {
    // The four tables read at once (on PostgreSQL, on as many connections): every change bumps
    // the generation in its own transaction, so when it is the same before and after, no change
    // committed in between and the reads saw one state.
    const before = await this.generation(ns);
    let rows = await readRows(this.#db, ns, true);
    let generation = await this.generation(ns);
    if (generation !== before) {
      // Changed meanwhile: read them again in one snapshot (one connection, one at a time).
      ({ generation, rows } = await this.#db.transaction(async (tx) => {
        await tx.query('set transaction isolation level repeatable read, read only');
        return { generation: await this.generation(ns, tx), rows: await readRows(tx, ns, false) };
      }));
    }
    const document = { generation, bytes: buildImportDocument(rows) };
    const kept = this.#documents.get(ns);
    if (!kept || kept.generation < generation) this.#documents.set(ns, document);
    return document;
  }

  /** Note that the blob store committed `digest` for `ns`, and its use now (idempotent). */
  async addBlob(ns: string, blob: StoredBlob): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await lockNamespace(tx, ns, 'shared');
      await tx.query(
        `insert into cache_blobs (ns, digest, size) values ($1, $2, $3)
         on conflict (ns, digest) do update set size = excluded.size
         where cache_blobs.size <> excluded.size`,
        [ns, blob.digest, blob.size],
      );
      await noteBlobUse(tx, ns, blob.digest);
    });
    this.#blobs.add(`${ns} ${blob.digest}`, blob.size);
  }

  /**
   * The blob's row in `ns`; undefined when the namespace does not hold it. A row looked up is
   * noted as used: the retention keeps it the grace period (an engine told the blob exists then
   * names it in UpdateCacheLayers without uploading it).
   */
  async blob(ns: string, digest: string): Promise<StoredBlob | undefined> {
    const size = await this.#blobs.through(`${ns} ${digest}`, () =>
      this.#db.transaction(async (tx) => {
        await lockNamespace(tx, ns, 'shared');
        const rows = await tx.query<{ size: string | number }>(
          'select size from cache_blobs where ns = $1 and digest = $2',
          [ns, digest],
        );
        if (!rows[0]) return undefined;
        await noteBlobUse(tx, ns, digest);
        return Number(rows[0].size);
      }),
    );
    return size === undefined ? undefined : { digest, size };
  }

  /** Forget what was seen of the blob rows the retention deleted. */
  forgetBlobs(ns: string, digests: readonly string[]): void {
    for (const digest of digests) this.#blobs.delete(`${ns} ${digest}`);
  }

  /** Point cache mount `name` of `ns` at a committed blob (last writer wins). */
  async setMount(ns: string, mount: StoredMount): Promise<void> {
    await this.#db.query(
      `insert into cache_mounts (ns, name, digest, size) values ($1, $2, $3, $4)
       on conflict (ns, name) do update set digest = excluded.digest, size = excluded.size`,
      [ns, mount.name, mount.digest, mount.size],
    );
  }

  /** The namespace's cache mounts, by name. */
  async mounts(ns: string): Promise<StoredMount[]> {
    const rows = await this.#db.query<{ name: string; digest: string; size: string | number }>(
      'select name, digest, size from cache_mounts where ns = $1 order by name',
      [ns],
    );
    return rows.map((row) => ({ name: row.name, digest: row.digest, size: Number(row.size) }));
  }
}

/**
 * Give results the namespace holds already the later `createdAt` an engine reports for the same
 * layers (a step run again with the same output): BuildKit loads a key's newest result, and the
 * service asks again for a result until it holds one as new. Returns how many were renewed.
 */
async function renewResults(
  tx: SqlExecutor,
  ns: string,
  rows: readonly { record: string; chain: string; createdAt: string }[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const newest = new Map<string, (typeof rows)[number]>();
  for (const row of rows) {
    const key = `${row.record} ${row.chain}`;
    const other = newest.get(key);
    if (!other || compareGoTimes(row.createdAt, other.createdAt) > 0) newest.set(key, row);
  }
  const stored = await tx.query<{ record: string; chain: string; created_at: string }>(
    `select c.record, c.chain, c.created_at from cache_results c
     join unnest($2::text[], $3::text[]) u(record, chain) on c.record = u.record and c.chain = u.chain
     where c.ns = $1`,
    [ns, [...newest.values()].map((r) => r.record), [...newest.values()].map((r) => r.chain)],
  );
  const renewed = stored.flatMap((row) => {
    const reported = newest.get(`${row.record} ${row.chain}`);
    return reported && compareGoTimes(reported.createdAt, row.created_at) > 0 ? [reported] : [];
  });
  if (renewed.length === 0) return 0;
  await tx.query(
    `update cache_results c set created_at = u.created_at
     from unnest($2::text[], $3::text[], $4::text[]) u(record, chain, created_at)
     where c.ns = $1 and c.record = u.record and c.chain = u.chain`,
    [
      ns,
      renewed.map((r) => r.record),
      renewed.map((r) => r.chain),
      renewed.map((r) => r.createdAt),
    ],
  );
  return renewed.length;
}

/**
 * The namespace's rows as ImportCache reads them, one statement per table: at once on a pool
 * (`together`), one after the other on a transaction's single connection. Digests (validated
 * `algorithm:hex` when reported) come as comma-separated text: ten times cheaper to split than a
 * JSON array is to parse.
 */
async function readRows(db: SqlExecutor, ns: string, together: boolean): Promise<NamespaceRows> {
  type Lists<K extends string> = Record<K, string | null>;
  // On one connection each statement waits for the one before: pg refuses overlapping queries.
  let previous: Promise<unknown> = Promise.resolve();
  const run = <T>(statement: () => Promise<T>): Promise<T> => {
    if (together) return statement();
    const next = previous.then(statement);
    previous = next.catch(() => undefined);
    return next;
  };
  const [[records], [links], [results], [blobs]] = await Promise.all([
    run(() =>
      db.query<Lists<'list'>>(
        `select string_agg(digest, ',') as list from cache_records where ns = $1`,
        [ns],
      ),
    ),
    run(() =>
      db.query<Lists<'sources' | 'targets' | 'inputs' | 'selectors'>>(
        `select string_agg(source, ',') as sources, string_agg(target, ',') as targets,
              json_agg(input)::text as inputs, json_agg(selector)::text as selectors
       from cache_links where ns = $1`,
        [ns],
      ),
    ),
    // Ordered so that layers are numbered the same way at every build.
    run(() =>
      db.query<Lists<'list'>>(
        `select json_agg(json_build_array(record, layers::json, created_at)
                       order by record, chain)::text as list
       from cache_results where ns = $1`,
        [ns],
      ),
    ),
    run(() =>
      db.query<Lists<'list'>>(
        `select string_agg(digest, ',') as list from cache_blobs where ns = $1`,
        [ns],
      ),
    ),
  ]);
  const split = (text: string | null | undefined) => (text ? text.split(',') : []);
  const parse = <T>(text: string | null | undefined) => JSON.parse(text ?? '[]') as T[];
  return {
    records: split(records?.list),
    sources: split(links?.sources),
    targets: split(links?.targets),
    inputs: parse<number>(links?.inputs),
    selectors: parse<string>(links?.selectors),
    results: parse<ResultRow>(results?.list),
    blobs: split(blobs?.list),
  };
}

/** Note that `ns` uses its row of blob `digest` now. */
async function noteBlobUse(tx: SqlExecutor, ns: string, digest: string): Promise<void> {
  await tx.query(
    `insert into cache_blob_uses (ns, digest) values ($1, $2)
     on conflict (ns, digest) do update set touched_at = now()`,
    [ns, digest],
  );
}

/**
 * The key of a result's layer chain (bottom-up blob digests) in `cache_results`: its digest, not
 * its text, since a key of a long chain outgrows a btree entry.
 */
export function chainDigest(blobs: readonly string[]): string {
  return createHash('sha256').update(blobs.join(',')).digest('hex');
}

async function insertRecords(tx: SqlExecutor, ns: string, digests: string[]): Promise<void> {
  if (digests.length === 0) return;
  await tx.query(
    `insert into cache_records (ns, digest) select $1, unnest($2::text[])
     on conflict do nothing`,
    [ns, digests],
  );
}

function storedLayer(layer: LayerDescriptor): StoredLayer {
  const diffID = layer.annotations?.[UNCOMPRESSED_ANNOTATION];
  return { digest: layer.digest, mediaType: layer.mediaType, size: layer.size, diffID };
}

/** Entries by key, least recently used dropped first once their bytes pass `maxBytes`. */
class SizedLru<T extends { readonly bytes: Buffer }> {
  readonly #entries = new Map<string, T>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get(key: string): T | undefined {
    return this.#entries.get(key);
  }

  /** Mark `key` as the most recently used. */
  touch(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
  }

  set(key: string, entry: T): void {
    this.#delete(key);
    if (entry.bytes.length > this.#maxBytes) return;
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes.length;
    for (const oldest of this.#entries.keys()) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#delete(oldest);
    }
  }

  #delete(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes.length;
  }
}
