import type { Command } from 'commander';
import { copy } from '../../copy/index.ts';
import type { Platform } from '../../oci/index.ts';
import { formatReference, type Reference, withTag } from '../../reference/index.ts';
import { resolve } from '../../remote/index.ts';
import {
  platformArg,
  positiveIntegerArg,
  referenceOperand,
  repeatedArg,
  usageError,
} from '../args.ts';
import type { CliContext } from '../context.ts';
import { runCopy } from './copy-result.ts';
import type { Run } from './run.ts';

interface CopyCommandOptions {
  platform?: Platform;
  ociMediatypes?: boolean;
  concurrency?: number;
  tag?: string[];
  referrers?: boolean;
}

/** `ociferry copy SRC DST`: an image or index between registries and layouts. */
export function copyCommand(program: Command, run: Run): void {
  program
    .command('copy')
    .summary('copy an image or index between registries and OCI layouts')
    .description(
      'Copy an image or a whole index between registries and OCI layouts. Blobs already at the destination are skipped, blobs on the same registry are mounted, the rest stream from source to destination without touching the disk.',
    )
    .argument('<src>', 'host/repo[:tag][@digest] or oci:DIR[:tag][@digest]')
    .argument('<dst>', 'host/repo[:tag] or oci:DIR[:tag]; without a tag the copy is by digest')
    .option(
      '--platform <os/arch[/variant]>',
      'copy only the image of this platform (a single image must be of it)',
      platformArg,
    )
    .option('--oci-mediatypes', 'rewrite Docker manifests and lists with OCI media types')
    .option('--concurrency <n>', 'blob transfers at once (default 8)', positiveIntegerArg)
    .option('--tag <tag>', 'also tag the copy as TAG (repeatable)', repeatedArg)
    .option('--referrers', 'also copy signatures, SBOMs and other referrers')
    .addHelpText(
      'after',
      `
With --json, prints {"digest", "mediaType", "blobs": {"mounted", "skipped", "uploaded",
"bytesUploaded", "bytesDownloaded"}, "requests", "size", "tags"}. Otherwise prints the digest
of the copy on stdout.

Examples:
  $ ociferry copy docker.io/library/alpine:3.20 ghcr.io/org/alpine:3.20
  $ ociferry copy --platform linux/arm64 ghcr.io/org/app:1.2 oci:./app-arm64:1.2
  $ ociferry copy --tag latest --tag 1.2 oci:./build:1.2.0 registry.example/app:1.2.0
  $ ociferry copy --json --referrers ghcr.io/org/app@sha256:… registry.example/app`,
    )
    .action((srcArg: string, dstArg: string, options: CopyCommandOptions, command: Command) => {
      const src = referenceOperand(command, srcArg);
      const dst = referenceOperand(command, dstArg);
      checkTags(command, dst, options.tag);
      return run(command, (ctx) => copyImage(ctx, src, dst, options));
    });
}

/** Fail with a usage error when an extra tag is not a valid tag. */
export function checkTags(
  command: Command,
  destination: Reference,
  tags: readonly string[] = [],
): void {
  for (const tag of tags) {
    try {
      withTag(destination, tag);
    } catch (error) {
      usageError(command, error instanceof Error ? error.message : String(error));
    }
  }
}

async function copyImage(
  ctx: CliContext,
  src: Reference,
  dst: Reference,
  options: CopyCommandOptions,
): Promise<void> {
  ctx.uses(src, dst);
  const remote = await resolve(src, {
    context: ctx.library,
    platform: options.platform,
    signal: ctx.signal,
  });
  await runCopy(
    ctx,
    `copied ${formatReference(src)} to ${formatReference(dst)}`,
    (onEvent) =>
      copy(remote, dst, {
        context: ctx.library,
        concurrency: options.concurrency,
        ociMediatypes: options.ociMediatypes,
        tags: options.tag,
        referrers: options.referrers,
        signal: ctx.signal,
        onEvent,
      }),
    undefined,
    dst.kind === 'layout',
  );
}
