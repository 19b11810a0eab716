import type { Command } from 'commander';
import { buildIndex, indexMediaType } from '../../copy/index.ts';
import { DOCKER_MANIFEST_LIST } from '../../oci/index.ts';
import { formatReference, type Reference } from '../../reference/index.ts';
import { resolve } from '../../remote/index.ts';
import { annotationArg, referenceOperand, repeatedArg, usageError } from '../args.ts';
import type { CliContext } from '../context.ts';
import { checkTags } from './copy.ts';
import { runCopy } from './copy-result.ts';
import type { Run } from './run.ts';

interface IndexCreateOptions {
  ociMediatypes?: boolean;
  annotation?: Record<string, string>;
  allowDuplicatePlatforms?: boolean;
  tag?: string[];
}

/** `ociferry index create DST SRC...`: a manifest list from remote images, no layer pulled. */
export function indexCommand(program: Command, run: Run): void {
  const index = program.command('index').description('Build image indexes (manifest lists).');
  index
    .command('create')
    .summary('push an index (manifest list) of remote images')
    .description(
      'Push an index of the given images (indexes among them are flattened in) to DST. Each image is copied into DST by digest (blobs mounted when they are on the same registry), its platform read from its index entry or else its config.',
    )
    .argument('<dst>', 'host/repo[:tag] or oci:DIR[:tag]')
    .argument('<src...>', 'the images: host/repo[:tag][@digest] or oci:DIR[:tag][@digest]')
    .option('--oci-mediatypes', 'build an OCI index (and rewrite Docker manifests as OCI)')
    .option(
      '--annotation <key=value>',
      'annotation of the index (repeatable; OCI index only)',
      annotationArg,
    )
    .option('--allow-duplicate-platforms', 'allow two images of the same platform')
    .option('--tag <tag>', 'also tag the index as TAG (repeatable)', repeatedArg)
    .addHelpText(
      'after',
      `
The result is a Docker manifest list when every image is a Docker manifest (unless
--oci-mediatypes), an OCI index otherwise. With --json, prints the same object as copy.

Examples:
  $ ociferry index create registry.example/app:1.2 registry.example/app:1.2-amd64 registry.example/app:1.2-arm64
  $ ociferry index create --oci-mediatypes --annotation org.opencontainers.image.version=1.2 \\
      ghcr.io/org/app:1.2 ghcr.io/org/app@sha256:… ghcr.io/org/app@sha256:…`,
    )
    .action((dstArg: string, srcArgs: string[], options: IndexCreateOptions, command: Command) => {
      const dst = referenceOperand(command, dstArg);
      const srcs = srcArgs.map((arg) => referenceOperand(command, arg));
      checkTags(command, dst, options.tag);
      return run(command, (ctx) => createIndex(ctx, command, dst, srcs, options));
    });
}

async function createIndex(
  ctx: CliContext,
  command: Command,
  dst: Reference,
  srcs: Reference[],
  options: IndexCreateOptions,
): Promise<void> {
  ctx.uses(dst, ...srcs);
  const remotes = await Promise.all(
    srcs.map((src) => resolve(src, { context: ctx.library, signal: ctx.signal })),
  );
  if (options.annotation) {
    const { ociMediatypes } = options;
    const type = await indexMediaType(remotes, { ociMediatypes, signal: ctx.signal });
    if (type === DOCKER_MANIFEST_LIST) {
      usageError(
        command,
        '--annotation needs an OCI index, and these images make a Docker manifest list (which has no annotations): add --oci-mediatypes',
      );
    }
  }
  await runCopy(
    ctx,
    `pushed index ${formatReference(dst)}`,
    (onEvent) =>
      buildIndex(dst, remotes, {
        context: ctx.library,
        ociMediatypes: options.ociMediatypes,
        annotations: options.annotation,
        allowDuplicatePlatforms: options.allowDuplicatePlatforms,
        tags: options.tag,
        signal: ctx.signal,
        onEvent,
      }),
    undefined,
    dst.kind === 'layout',
  );
}
