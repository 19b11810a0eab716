import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseCsvFields } from '../../cache/csv.ts';
import { OciferryError } from '../../errors.ts';
import type { ServiceBlobStore, SigningKey } from '../../service/index.ts';
import { durationArg, positiveIntegerArg, sizeArg, usageError } from '../args.ts';
import type { CliContext } from '../context.ts';
import type { Run } from './run.ts';

interface ServeOptions {
  listen: string;
  data: string;
  database?: string;
  blobs?: string;
  tokens?: string;
  tlsCert?: string;
  tlsKey?: string;
  keepLast?: number;
  keepNewer?: number;
  maxSize?: number;
  maxConfigSize?: number;
  pruneInterval?: number;
  pruneGrace?: number;
}

/** `ociferry cache serve`: the cache service (docs/cache-service.md). */
export function cacheServeCommand(cache: Command, run: Run): void {
  cache
    .command('serve')
    .summary('run a cache service for build engines (HTTP + JSON, signed blob URLs)')
    .description(
      "Serve build engines' caches: records and links in SQL (an embedded PGlite in --data by default, PostgreSQL with --database for several instances), blobs in an OCI layout or a registry, moved over short-lived HMAC-signed URLs minted per transfer. Bearer tokens are bound to one namespace each, read-only or read-write. Logs one JSON line per request on stderr; SIGHUP reloads --tokens, SIGTERM stops after the requests in flight.",
    )
    .option('--listen <addr>', 'HOST:PORT, :PORT or PORT to listen on', '127.0.0.1:7450')
    .option(
      '--data <dir>',
      'data directory (embedded database, default blob store and token)',
      './ociferry-cache',
    )
    .option('--database <url>', 'postgres://USER@HOST:PORT/DB instead of the embedded database')
    .option(
      '--blobs <csv>',
      'blob store: type=local,dest=DIR (default DATA/blobs) or type=registry,ref=HOST/REPO',
    )
    .option('--tokens <file>', 'tokens, one "NAMESPACE rw|ro TOKEN" per line (reloaded on SIGHUP)')
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option(
      '--keep-last <n>',
      'retention: keep the results of the N most recent builds of each namespace',
      positiveIntegerArg,
    )
    .option(
      '--keep-newer <duration>',
      'retention: keep results created less than this long ago',
      durationArg,
    )
    .option(
      '--max-size <size>',
      "retention: keep each namespace's newest results whose layers fit in SIZE",
      sizeArg,
    )
    .option(
      '--max-config-size <size>',
      "retention: then drop the oldest results until a namespace's ImportCache fits (BuildKit refuses over 1MiB)",
      sizeArg,
    )
    .option(
      '--prune-interval <duration>',
      'how often the retention runs (default 1h; 0: only when a client calls prune)',
      (value: string) => (value === '0' ? 0 : durationArg(value)),
    )
    .option(
      '--prune-grace <duration>',
      'keep what was uploaded or used within this long whatever the limits (default 1h)',
      durationArg,
    )
    .addHelpText(
      'after',
      `
Retention: every --prune-interval, each namespace keeps the results the limits keep (those of
ociferry cache prune, with its rules: a result stays when it passes every limit given) and the
records they need; records no kept result needs and blobs nothing names go, then the blobs no
namespace holds leave the blob store. Without limits, only that garbage goes. What was used
within --prune-grace stays whatever the limits: blobs uploaded but not yet named by an engine,
blobs an engine was told exist, records an engine is exporting results of. Make the grace longer
than an export takes. A client prunes its namespace on demand with ociferry cache prune --from
and --to its type=service,... endpoint.

OCIFERRY_SERVICE_KEYS=ID:SECRET[,ID:SECRET]... gives the URL signing keys (secrets of 32 bytes or
more, base64url): the first signs, all verify. Give every instance behind one load balancer the
same keys; rotate by putting a new key first and dropping the old one a URL lifetime later.
Without it, each start makes a random key.

Without --tokens, a read-write token for namespace "default" is made and written to DATA/token
(mode 0600); its path is said on stderr, never the token.

Examples:
  $ ociferry cache serve --data /var/lib/ociferry-cache
  $ ociferry cache serve --data /var/lib/ociferry-cache --keep-newer 7d --max-size 50GB
  $ ociferry cache serve --listen :7450 --database postgres://cache@db:5432/cache --tokens /etc/ociferry/tokens`,
    )
    .action((options: ServeOptions, command: Command) => {
      if (Boolean(options.tlsCert) !== Boolean(options.tlsKey)) {
        usageError(command, '--tls-cert and --tls-key go together');
      }
      if (options.database && !/^postgres(ql)?:\/\//.test(options.database)) {
        usageError(command, '--database wants a postgres://... URL');
      }
      const blobs = options.blobs ? blobsOption(command, options.blobs) : undefined;
      return run(command, (ctx) => serve(ctx, options, blobs));
    });
}

type BlobsOption = { type: 'local'; dest: string } | { type: 'registry'; ref: string };

function blobsOption(command: Command, csv: string): BlobsOption {
  let fields: Map<string, string>;
  try {
    fields = new Map(
      parseCsvFields(csv).map((field) => {
        const at = field.indexOf('=');
        return at < 0 ? [field, ''] : [field.slice(0, at), field.slice(at + 1)];
      }),
    );
  } catch (error) {
    usageError(command, `--blobs: ${(error as Error).message}`);
  }
  const type = fields.get('type');
  const dest = fields.get('dest') ?? fields.get('src');
  const ref = fields.get('ref');
  if (type === 'local' && dest) return { type, dest };
  if (type === 'registry' && ref) return { type, ref };
  usageError(command, '--blobs wants type=local,dest=DIR or type=registry,ref=HOST/REPO');
}

async function serve(
  ctx: CliContext,
  options: ServeOptions,
  blobsOption?: BlobsOption,
): Promise<void> {
  const stderr = ctx.io.stderr;
  // Loaded here: the database drivers cost every other command nothing.
  const { StoreBlobStore, startCacheServer } = await import('../../service/index.ts');
  let blobs: ServiceBlobStore | undefined;
  if (blobsOption?.type === 'local') blobs = await StoreBlobStore.open(`oci:${blobsOption.dest}`);
  if (blobsOption?.type === 'registry') {
    blobs = await StoreBlobStore.open(blobsOption.ref, { client: ctx.client });
  }
  const tls =
    options.tlsCert && options.tlsKey
      ? {
          cert: await readFile(options.tlsCert, 'utf8'),
          key: await readFile(options.tlsKey, 'utf8'),
        }
      : undefined;
  const keys = signingKeys(ctx.io.env.OCIFERRY_SERVICE_KEYS);
  const server = await startCacheServer({
    keys,
    listen: options.listen,
    dataDir: options.data,
    database: options.database,
    blobs,
    tokensFile: options.tokens,
    tls,
    retention: {
      limits: {
        keepLast: options.keepLast,
        keepNewer: options.keepNewer,
        maxSize: options.maxSize,
        maxConfigSize: options.maxConfigSize,
      },
      intervalMs: options.pruneInterval,
      graceMs: options.pruneGrace,
    },
    log: (line) => stderr.write(`${JSON.stringify(line)}\n`),
    event: (event) => stderr.write(`${JSON.stringify(event)}\n`),
    notice: (message) => stderr.write(`${message}\n`),
  });
  const onHup = () => {
    server.reloadTokens().then(
      () =>
        stderr.write(
          `${JSON.stringify({ time: new Date().toISOString(), event: 'tokens reloaded' })}\n`,
        ),
      (error: Error) => stderr.write(`tokens not reloaded, the old ones stay: ${error.message}\n`),
    );
  };
  process.on('SIGHUP', onHup);
  stderr.write(
    `serving the cache service at ${server.url} (data ${join(options.data)}${options.database ? ', PostgreSQL' : ''})\n`,
  );
  try {
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    process.removeListener('SIGHUP', onHup);
    await server.close();
    stderr.write('cache service stopped\n');
  }
}

/** `ID:SECRET,...` from OCIFERRY_SERVICE_KEYS; never quotes a secret in its errors. */
function signingKeys(value: string | undefined): SigningKey[] | undefined {
  if (!value?.trim()) return undefined;
  return value.split(',').map((entry, i) => {
    const [id, secret] = entry.trim().split(':');
    const bytes = secret ? Buffer.from(secret, 'base64url') : Buffer.alloc(0);
    if (!id || !/^[A-Za-z0-9._-]{1,32}$/.test(id) || bytes.length < 32) {
      throw new OciferryError(
        'SERVICE_KEYS_INVALID',
        `OCIFERRY_SERVICE_KEYS entry ${i + 1} is not ID:SECRET with a base64url secret of 32 bytes or more`,
      );
    }
    return { id, secret: bytes };
  });
}
