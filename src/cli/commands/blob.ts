import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { DigestMismatchError, parseDigest, SizeMismatchError } from '../../digest/index.ts';
import { OciferryError } from '../../errors.ts';
import type { Reference } from '../../reference/index.ts';
import { BlobNotFoundError, openStore } from '../../remote/index.ts';
import { replaceFile } from '../../util/replace-file.ts';
import { referenceOperand, usageError } from '../args.ts';
import type { CliContext } from '../context.ts';
import { formatBytes } from '../format.ts';
import type { Run } from './run.ts';

interface BlobGetOptions {
  output?: string;
}

/** `ociferry blob get REF@DIGEST`: one blob, streamed and verified. */
export function blobCommand(program: Command, run: Run): void {
  const blob = program.command('blob').description('Read blobs (layers, configs) by digest.');
  blob
    .command('get')
    .summary('stream one blob to stdout or a file, verified')
    .description(
      'Stream one blob to stdout or a file, verifying its digest on the way. With -o, the file appears only once the digest has been checked. To stdout, the last chunk is held back until then: a blob that does not match its digest never reaches stdout whole.',
    )
    .argument('<ref@digest>', 'host/repo@sha256:… or oci:DIR@sha256:…')
    .option('-o, --output <file>', 'write to FILE instead of stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ ociferry blob get ghcr.io/org/app@sha256:… -o layer.tar.gz
  $ ociferry blob get localhost:5000/app@sha256:… | tar -tzf -
  $ ociferry blob get oci:./layout@sha256:… | jq .`,
    )
    .action((ref: string, options: BlobGetOptions, command: Command) => {
      const reference = referenceOperand(command, ref);
      const digest = reference.digest;
      if (digest === undefined) usageError(command, missingDigest(ref));
      return run(command, (ctx) => blobGet(ctx, reference, digest, options));
    });
}

/**
 * Why `ref` names no digest: a text after its last `@` that is not a digest (an `oci:` path takes
 * `@sha256:../..` as part of the directory), or no `@digest` at all.
 */
function missingDigest(ref: string): string {
  const at = ref.lastIndexOf('@');
  const suffix = at < 0 ? '' : ref.slice(at + 1);
  if (/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(suffix)) {
    try {
      parseDigest(suffix);
    } catch (error) {
      return `${ref}: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  return `${ref}: expected REF@DIGEST`;
}

async function blobGet(
  ctx: CliContext,
  ref: Reference,
  digest: string,
  options: BlobGetOptions,
): Promise<void> {
  ctx.uses(ref);
  const source = await openBlob(ctx, ref, digest);
  if (options.output === undefined) {
    await writeHoldingLast(source, ctx.io.stdout);
    return;
  }
  const file = options.output;
  const bytes = await replaceFile(file, source, { signal: ctx.signal }).catch((error) => {
    throw withOutcome(error, `${file} was not written`);
  });
  if (ctx.json) ctx.printJson({ digest, size: bytes, file: options.output });
  else ctx.info(`wrote ${digest} to ${options.output} (${formatBytes(bytes)})`);
}

/**
 * Write `source` to `out` one chunk behind: the last chunk goes out only once the source has
 * ended without an error, that is once a verified source has checked the digest. A corrupt blob
 * never reaches the reader whole, so a consumer (`| tar -x`) sees it cut short, not complete and
 * wrong. Resolves with the bytes written; a failure carries the count `out` took.
 */
async function writeHoldingLast(source: Readable, out: Writable): Promise<number> {
  let written = 0;
  let held: Buffer | undefined;
  const pass = async (chunk: Buffer): Promise<void> => {
    await new Promise<void>((resolve, reject) =>
      out.write(chunk, (error) => (error ? reject(error) : resolve())),
    );
    written += chunk.length;
  };
  try {
    for await (const chunk of source) {
      if (held !== undefined) await pass(held);
      held = chunk as Buffer;
    }
    if (held !== undefined) await pass(held);
  } catch (error) {
    throw withOutcome(error, `stdout got only its first ${written} bytes: discard them`);
  }
  return written;
}

/** A verification failure of the blob, saying what became of the output; other errors as they are. */
function withOutcome(error: unknown, outcome: string): unknown {
  if (!(error instanceof DigestMismatchError || error instanceof SizeMismatchError)) return error;
  return new OciferryError(error.code, `${error.message}; ${outcome}`, { cause: error });
}

/** A verified stream of the whole blob, from its store (a registry repository or a layout). */
async function openBlob(ctx: CliContext, ref: Reference, digest: string): Promise<Readable> {
  const store = await openStore(ref, { client: ctx.client });
  const info = await store.info(digest, { signal: ctx.signal });
  if (info === undefined) throw new BlobNotFoundError(digest, store.description);
  const descriptor = { mediaType: 'application/octet-stream', ...info };
  return store.fetch(descriptor, { signal: ctx.signal });
}
