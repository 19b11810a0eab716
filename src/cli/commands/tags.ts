import type { Command } from 'commander';
import { formatReference, type Reference, withDigest, withTag } from '../../reference/index.ts';
import { openStore } from '../../remote/index.ts';
import { referenceOperand } from '../args.ts';
import type { CliContext } from '../context.ts';
import type { Run } from './run.ts';

/** `ociferry tags REF`: the tags of a repository or of an OCI layout. */
export function tagsCommand(program: Command, run: Run): void {
  program
    .command('tags')
    .summary('list the tags of a repository or layout')
    .description('List the tags of a repository (all pages) or of an OCI layout directory.')
    .argument('<ref>', 'host/repo or oci:DIR (a tag or digest in REF is ignored)')
    .addHelpText(
      'after',
      `
Prints one tag per line; with --json, {"repository": "host/repo", "tags": [...]}.

Examples:
  $ ociferry tags ghcr.io/org/app
  $ ociferry tags --json localhost:5000/app | jq -r '.tags[]'
  $ ociferry tags oci:./layout`,
    )
    .action((ref: string, _options: unknown, command: Command) => {
      const reference = referenceOperand(command, ref);
      return run(command, (ctx) => tags(ctx, reference));
    });
}

async function tags(ctx: CliContext, ref: Reference): Promise<void> {
  const repository = withDigest(withTag(ref, undefined), undefined);
  ctx.uses(repository);
  const store = await openStore(repository, { client: ctx.client });
  const list = await store.tags({ signal: ctx.signal });
  if (ctx.json) ctx.printJson({ repository: formatReference(repository), tags: list });
  else if (list.length > 0) ctx.print(list.join('\n'));
}
