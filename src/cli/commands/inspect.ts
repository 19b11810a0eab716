import type { Command } from 'commander';
import { type Descriptor, formatPlatform, type Platform } from '../../oci/index.ts';
import type { Reference } from '../../reference/index.ts';
import { type Remote, resolve } from '../../remote/index.ts';
import { platformArg, referenceOperand } from '../args.ts';
import type { CliContext } from '../context.ts';
import { formatBytes } from '../format.ts';
import type { Run } from './run.ts';

interface InspectOptions {
  platform?: Platform;
  raw?: boolean;
}

/** `ociferry inspect REF`: what a reference points at, from its manifest alone. */
export function inspectCommand(program: Command, run: Run): void {
  program
    .command('inspect')
    .summary('show what a reference points at, from its manifest alone')
    .description(
      'Show the digest, media type and size of an image or index, with its platforms or layers. Reads manifests only: no blob, not even the image config, is downloaded (except with --platform on a single image, whose config says its platform).',
    )
    .argument('<ref>', 'host/repo[:tag][@digest] or oci:DIR[:tag][@digest]')
    .option(
      '--platform <os/arch[/variant]>',
      'inspect the image of this platform (a single image must be of it)',
      platformArg,
    )
    .option('--raw', 'print the manifest bytes exactly as stored')
    .addHelpText(
      'after',
      `
With --json, prints one object: {"reference", "kind": "image"|"index", "digest", "mediaType",
"size"} plus, for an image, "platform" (when the index names it), "config", "layers" and, for
an index, "manifests" (descriptors as listed, with their platforms); "artifactType", "subject"
and "annotations" when the manifest has them.

Examples:
  $ ociferry inspect ghcr.io/org/app:1.2
  $ ociferry inspect --platform linux/arm64 docker.io/library/alpine:3.20
  $ ociferry inspect --raw localhost:5000/app@sha256:… | jq .
  $ ociferry inspect --json oci:./layout:v1`,
    )
    .action((ref: string, options: InspectOptions, command: Command) => {
      const reference = referenceOperand(command, ref);
      return run(command, (ctx) => inspect(ctx, reference, options));
    });
}

async function inspect(ctx: CliContext, ref: Reference, options: InspectOptions): Promise<void> {
  ctx.uses(ref);
  const remote = await resolve(ref, {
    context: ctx.library,
    platform: options.platform,
    signal: ctx.signal,
  });
  if (options.raw) ctx.io.stdout.write(remote.bytes);
  else if (ctx.json) ctx.printJson(inspectJson(remote));
  else ctx.print(inspectText(remote));
}

/** The `--json` object; see the command's help. */
function inspectJson(remote: Remote): Record<string, unknown> {
  const { descriptor } = remote;
  const head = {
    reference: remote.ref,
    kind: remote.kind,
    digest: descriptor.digest,
    mediaType: descriptor.mediaType,
    size: descriptor.size,
  };
  const body = remote.kind === 'image' ? remote.manifest : remote.index;
  const tail = {
    ...(body.artifactType === undefined ? {} : { artifactType: body.artifactType }),
    ...(body.subject === undefined ? {} : { subject: body.subject }),
    ...(body.annotations === undefined ? {} : { annotations: body.annotations }),
  };
  if (remote.kind === 'index') return { ...head, manifests: remote.manifests, ...tail };
  return {
    ...head,
    ...(descriptor.platform === undefined ? {} : { platform: descriptor.platform }),
    config: remote.manifest.config,
    layers: remote.manifest.layers,
    ...tail,
  };
}

function inspectText(remote: Remote): string {
  const { descriptor } = remote;
  const rows: Array<[string, string]> = [
    ['Reference', remote.ref],
    ['Digest', descriptor.digest],
    ['Media type', descriptor.mediaType],
    ['Size', formatBytes(descriptor.size)],
  ];
  const body = remote.kind === 'image' ? remote.manifest : remote.index;
  if (body.artifactType !== undefined) rows.push(['Artifact type', body.artifactType]);
  if (body.subject !== undefined) rows.push(['Subject', body.subject.digest]);
  const lines: string[] = [];
  if (remote.kind === 'image') {
    if (descriptor.platform) rows.push(['Platform', formatPlatform(descriptor.platform)]);
    const { config, layers } = remote.manifest;
    rows.push(['Config', `${config.digest}  ${formatBytes(config.size)}  ${config.mediaType}`]);
    const total = layers.reduce((sum, layer) => sum + layer.size, 0);
    rows.push(['Layers', `${layers.length} (${formatBytes(total)})`]);
    lines.push(...layers.map((layer) => descriptorLine(layer)));
  } else {
    rows.push(['Manifests', String(remote.manifests.length)]);
    lines.push(...remote.manifests.map((child) => descriptorLine(child, platformLabel(child))));
  }
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const text = rows.map(([label, value]) => `${label.padEnd(width)}${value}`);
  text.push(...lines);
  const annotations = Object.entries(body.annotations ?? {});
  if (annotations.length > 0) {
    text.push('Annotations');
    text.push(...annotations.map(([key, value]) => `  ${key}=${value}`));
  }
  return text.join('\n');
}

function platformLabel(descriptor: Descriptor): string {
  return descriptor.platform ? formatPlatform(descriptor.platform) : '-';
}

function descriptorLine(descriptor: Descriptor, label?: string): string {
  const columns = [
    descriptor.digest,
    ...(label === undefined ? [] : [label.padEnd(16)]),
    formatBytes(descriptor.size).padStart(9),
    descriptor.mediaType,
  ];
  return `  ${columns.join('  ')}`;
}
