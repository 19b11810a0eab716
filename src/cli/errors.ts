import { type ErrorCode, OciferryError } from '../errors.ts';
import {
  apiHost,
  formatReference,
  isLoopbackRegistry,
  type Reference,
  type RegistryReference,
} from '../reference/index.ts';
import { describeRateLimit, RegistryError, scopesWrite } from '../registry/index.ts';
import type { CliContext } from './context.ts';

/** Exit status of a command that failed. */
export const EXIT_FAILURE = 1;
/** Exit status of a command stopped with Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/**
 * Print a failed command's error: one line saying what failed and one hint line; the stack and
 * causes only with `--debug`. Returns the exit status.
 */
export async function reportError(error: unknown, ctx: CliContext, what: string): Promise<number> {
  const { stderr } = ctx.io;
  if (ctx.signal.aborted) {
    stderr.write(`error: ${what}: interrupted\n`);
    return EXIT_INTERRUPTED;
  }
  if (errnoCode(error) === 'EPIPE') return EXIT_FAILURE;
  // The hint line says what to do; the error line then leaves out advice the error ends with.
  const own = await hintFor(error, ctx);
  const advice = error instanceof OciferryError ? error.hint : undefined;
  const line = own !== undefined || advice !== undefined ? summaryOf(error) : messageOf(error);
  stderr.write(`error: ${what}: ${oneLine(line)}\n`);
  stderr.write(`hint: ${oneLine(own ?? advice ?? 'run again with --debug for details')}\n`);
  if (ctx.options.debug) stderr.write(`${debugDetails(error)}\n`);
  return EXIT_FAILURE;
}

/**
 * The CLI's hint for an error (what to check, which flag to use), or undefined where the error's
 * own advice, if any, is the hint.
 */
async function hintFor(error: unknown, ctx: CliContext): Promise<string | undefined> {
  const code = error instanceof OciferryError ? error.code : undefined;
  const where = registriesFor(error, ctx);
  // Network failures name the host that failed (registry-1.docker.io, a token server), not the registry.
  const hosts =
    (error instanceof RegistryError && URL.canParse(error.url) && new URL(error.url).host) ||
    where.map((ref) => ref.registry).join(' or ') ||
    'the registry';
  switch (code) {
    case 'UNAUTHORIZED':
    case 'DENIED':
      return credentialHint(code, where, ctx, (error as RegistryError).refusedScope);
    case 'MANIFEST_UNKNOWN':
    case 'NAME_UNKNOWN':
    case 'NOT_FOUND':
    case 'BLOB_UNKNOWN':
      return notFoundHint(code, ctx.references);
    case 'TLS_ERROR':
      // A loopback registry that speaks plain HTTP gets it without --plain-http.
      return `the TLS connection to ${hosts} failed: use --insecure to skip certificate verification${isLoopbackRegistry(hosts) ? '' : ', or --plain-http if it serves plain HTTP'}`;
    case 'HTTPS_REQUIRED':
      return `${hosts} serves HTTPS: drop --plain-http (and add --insecure if its certificate is self-signed)`;
    case 'CONNECTION_FAILED':
      return connectionHint(error, hosts);
    case 'TIMEOUT':
      return `${hosts} did not answer in time; check the host name and your network`;
    case 'TOO_MANY_REQUESTS': {
      const quota = error instanceof RegistryError ? error.rateLimit : undefined;
      const limiting = quota
        ? `the registry's quota is ${describeRateLimit(quota)}`
        : 'the registry is rate limiting';
      return `${limiting}: wait, log in, or lower --concurrency`;
    }
    case 'DIGEST_MISMATCH':
    case 'SIZE_MISMATCH':
      return 'the content served does not match its digest: the source is corrupt or was changed while reading';
    case 'DESTINATION_DIGEST_MISMATCH':
      return 'nothing was written: a destination @digest must be the digest the copy produces';
    case 'PLATFORM_NOT_FOUND':
      return 'pick one of the available platforms with --platform os/arch[/variant]';
    case 'LOGIN_REFUSED':
      return 'check the user name and the password (or access token), then log in again';
    case 'CREDENTIAL_CONFIG_INVALID':
      return 'fix or remove the named credentials file';
    case 'CREDENTIAL_HELPER_FAILED':
      return 'check that the credential helper is installed and works, or remove it from the docker config';
    case 'LAYOUT_INVALID':
      return 'an oci: reference needs a directory with an OCI image layout (oci-layout, index.json, blobs/)';
    case 'CACHE_NOT_FOUND':
      return 'check the --from reference: there is no cache manifest there';
    case 'NOT_A_CACHE':
      return 'the reference names an image, not a BuildKit cache; check --from';
    case 'CACHE_EMPTY':
      return 'pass --key for the records to keep, or copy everything with --mode max';
    case 'CACHE_OPTIONS_INVALID':
      return "check the --to options (BuildKit's --export-cache keys)";
    case 'LOCK_TIMEOUT':
      return 'another process is writing to the layout; wait for it or remove a stale lock';
    default:
      return undefined;
  }
}

/** Which credential source was used (or looked at) for each registry, and how to log in. */
async function credentialHint(
  code: ErrorCode,
  registries: RegistryReference[],
  ctx: CliContext,
  refusedScope: string | undefined,
): Promise<string> {
  if (registries.length === 0) return 'check the credentials (ociferry login HOST)';
  const parts: string[] = [];
  for (const ref of registries) {
    const login = `'ociferry login ${ref.registry}' or 'docker login ${ref.registry}'`;
    try {
      const found = await ctx.credentials.lookup(ref.registry, ref.repository);
      if (found.credential === undefined) {
        const looked = found.tried.length > 0 ? ` (looked in ${found.tried.join(', ')})` : '';
        parts.push(`no credentials for ${ref.registry}${looked}; run ${login}`);
      } else if (refusedScope !== undefined) {
        // A token was issued for these credentials, without the access asked for.
        parts.push(
          `the credentials for ${ref.registry} from ${found.source} do not grant ${refusedScope}${scopesWrite(refusedScope) ? '' : ' (or the repository does not exist)'}; log in as a user that has this permission`,
        );
      } else if (code === 'DENIED') {
        parts.push(
          `the credentials for ${ref.registry} from ${found.source} lack permission for ${ref.repository}`,
        );
      } else {
        parts.push(
          `${ref.registry} refused the credentials from ${found.source}; run ${login} to renew them`,
        );
      }
    } catch (lookupError) {
      parts.push(`the credentials for ${ref.registry} cannot be read: ${messageOf(lookupError)}`);
    }
  }
  return parts.join('; ');
}

function notFoundHint(code: ErrorCode, references: Reference[]): string {
  const [ref] = references;
  if (!ref) return 'check the reference';
  if (ref.kind === 'layout') {
    return `check the tag or digest; 'ociferry tags ${formatReference({ kind: 'layout', path: ref.path })}' lists the layout's tags`;
  }
  const repository = `${ref.registry}/${ref.repository}`;
  switch (code) {
    case 'NAME_UNKNOWN':
      return `check the repository name: ${ref.registry} has no repository ${ref.repository}`;
    case 'BLOB_UNKNOWN':
      return `check the digest: ${repository} has no such blob`;
    default:
      return `check the repository and tag (${formatReference(ref)}); 'ociferry tags ${repository}' lists the tags`;
  }
}

function connectionHint(error: unknown, hosts: string): string {
  const cause = errnoCode(error);
  if (cause === 'ENOTFOUND' || cause === 'EAI_AGAIN') {
    return `the host name of ${hosts} does not resolve; check the registry name and your DNS`;
  }
  if (cause === 'ECONNREFUSED') {
    return `nothing accepts connections at ${hosts}; check the host and port`;
  }
  return `the connection to ${hosts} failed; check the host, port and network (--plain-http for a plain-HTTP registry)`;
}

/**
 * The registries an error concerns: the one whose API host the failed request went to, else
 * every registry the command uses (a token server answers from its own host).
 */
function registriesFor(error: unknown, ctx: CliContext): RegistryReference[] {
  const registries = ctx.references.filter(
    (ref): ref is RegistryReference => ref.kind === 'registry',
  );
  const byRegistry = [...new Map(registries.map((ref) => [ref.registry, ref])).values()];
  if (error instanceof RegistryError && URL.canParse(error.url)) {
    const host = new URL(error.url).host;
    const matching = byRegistry.filter((ref) => apiHost(ref.registry) === host);
    if (matching.length > 0) return matching;
  }
  return byRegistry;
}

/** The first errno-style `code` along the cause chain (`ENOTFOUND`, `EPIPE`, ...). */
function errnoCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The message without the advice it ends with, when the error keeps them apart. */
function summaryOf(error: unknown): string {
  return error instanceof OciferryError ? error.summary : messageOf(error);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/** Stack and causes, for `--debug`. Our errors never hold credentials. */
function debugDetails(error: unknown): string {
  const lines: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 10; depth++) {
    lines.push(
      depth === 0
        ? String((e as Error)?.stack ?? e)
        : `caused by: ${String((e as Error)?.stack ?? e)}`,
    );
    e = e instanceof Error ? e.cause : undefined;
  }
  return lines.join('\n');
}
