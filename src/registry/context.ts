import { repositoryScope } from './auth/scope.ts';
import type { RetryPolicy } from './retry.ts';
import type { Transport } from './transport.ts';

/** What every operation on one repository needs: where it is, how to reach it, its limits. */
export interface RepositoryContext {
  readonly transport: Transport;
  /** Registry as in a reference (`docker.io`, `host:port`). */
  readonly registry: string;
  /** Repository name (`library/alpine`). */
  readonly name: string;
  readonly retry: RetryPolicy;
  /** Largest manifest (or referrers/tag list page) read into memory, in bytes. */
  readonly manifestSizeLimit: number;
}

/** Token scopes for `actions` on the context's repository. */
export function scopes(context: RepositoryContext, ...actions: string[]): string[] {
  return [repositoryScope(context.name, actions)];
}
