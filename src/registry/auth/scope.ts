/** `repository:<name>:<actions>`: the token scope for actions on one repository. */
export function repositoryScope(name: string, actions: readonly string[]): string {
  return `repository:${name}:${actions.join(',')}`;
}

/** Actions beyond reading. */
const WRITE_ACTIONS = new Set(['push', 'delete', '*']);

/** True when `scopes` (space-separated) ask for more than reading: `push`, `delete` or `*`. */
export function scopesWrite(scopes: string): boolean {
  return scopes.split(' ').some((scope) =>
    scope
      .slice(scope.lastIndexOf(':') + 1)
      .split(',')
      .some((action) => WRITE_ACTIONS.has(action)),
  );
}

/** The scope `GET /v2/_catalog` needs. */
export const CATALOG_SCOPE = 'registry:catalog:*';

/**
 * Canonical form of a scope set: one entry per `type:name` with the union of its actions, sorted,
 * so that equal sets give equal cache keys. Names may contain `:` (a host with a port).
 */
export function normalizeScopes(scopes: Iterable<string>): string[] {
  const resources = new Map<string, Set<string>>();
  for (const scope of scopes) {
    for (const item of scope.split(' ')) {
      const last = item.lastIndexOf(':');
      if (last <= 0) continue;
      const resource = item.slice(0, last);
      let actions = resources.get(resource);
      if (!actions) {
        actions = new Set();
        resources.set(resource, actions);
      }
      for (const action of item.slice(last + 1).split(',')) if (action !== '') actions.add(action);
    }
  }
  return [...resources]
    .map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`)
    .sort();
}

/** True when every action of every scope in `wanted` is already in `held`. */
export function scopesCover(held: readonly string[], wanted: readonly string[]): boolean {
  const merged = normalizeScopes([...held, ...wanted]);
  const before = normalizeScopes(held);
  return merged.length === before.length && merged.every((scope, i) => scope === before[i]);
}
