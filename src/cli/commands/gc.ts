import type { Command } from 'commander';
import { LayoutStore } from '../../layout/index.ts';
import type { LayoutReference } from '../../reference/index.ts';
import { referenceOperand, usageError } from '../args.ts';
import type { CliContext } from '../context.ts';
import { formatBytes, plural } from '../format.ts';
import type { Run } from './run.ts';

/** `ociferry gc oci:DIR`: garbage-collect an OCI layout. */
export function gcCommand(program: Command, run: Run): void {
  program
    .command('gc')
    .summary('delete what nothing in an OCI layout refers to')
    .description(
      "Delete the blobs of an OCI layout that no index.json entry reaches (through indexes, manifests and subjects), and the temp files of writers that are gone: those of killed processes on this host at once, others after an hour. Runs under the layout's lock, so tags cannot change meanwhile; a blob that another process is copying into the layout and has not tagged yet counts as unreferenced.",
    )
    .argument('<oci:dir>', 'the layout, oci:DIR (no tag or digest)')
    .addHelpText(
      'after',
      `
Prints the digests of the deleted blobs, one per line; with --json,
{"deleted": [...], "bytesFreed", "tempFilesRemoved"}.

Examples:
  $ ociferry gc oci:./layout
  $ ociferry gc --json oci:./cache | jq .bytesFreed`,
    )
    .action((dir: string, _options: unknown, command: Command) => {
      const reference = referenceOperand(command, dir);
      if (reference.kind !== 'layout') {
        usageError(command, `${dir}: gc works on an OCI layout, oci:DIR`);
      }
      if (reference.tag !== undefined || reference.digest !== undefined) {
        usageError(command, `${dir}: gc takes the whole layout, oci:DIR without a tag or digest`);
      }
      return run(command, (ctx) => gc(ctx, reference));
    });
}

async function gc(ctx: CliContext, ref: LayoutReference): Promise<void> {
  ctx.uses(ref);
  const store = await LayoutStore.open(ref.path, { create: false });
  const result = await store.gc({ signal: ctx.signal });
  if (ctx.json) {
    ctx.printJson(result);
    return;
  }
  if (result.deleted.length > 0) ctx.print(result.deleted.join('\n'));
  ctx.info(
    `deleted ${plural(result.deleted.length, 'blob')} and ${plural(result.tempFilesRemoved, 'temp file')}, ${formatBytes(result.bytesFreed)} freed`,
  );
}
