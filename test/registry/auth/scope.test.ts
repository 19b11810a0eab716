import test from 'ava';
import fc from 'fast-check';
import { normalizeScopes, repositoryScope, scopesCover } from '../../../src/registry/auth/scope.ts';

const name = fc.stringMatching(/^[a-z0-9]+(\/[a-z0-9]+)?$/);
const scope = fc
  .tuple(
    fc.oneof(name, fc.constant('localhost:5000/x')),
    fc.subarray(['pull', 'push', 'delete'], { minLength: 1 }),
  )
  .map(([n, actions]) => repositoryScope(n, actions));

test('scopes of one repository merge into one entry with the union of actions', (t) => {
  t.deepEqual(normalizeScopes(['repository:a:push', 'repository:a:pull', 'repository:b:pull']), [
    'repository:a:pull,push',
    'repository:b:pull',
  ]);
  t.deepEqual(normalizeScopes(['repository:localhost:5000/x:pull repository:a:delete']), [
    'repository:a:delete',
    'repository:localhost:5000/x:pull',
  ]);
});

test('normalising ignores order and repetition and is idempotent', (t) => {
  fc.assert(
    fc.property(fc.array(scope), (scopes) => {
      const once = normalizeScopes(scopes);
      t.deepEqual(normalizeScopes([...scopes].reverse()), once);
      t.deepEqual(normalizeScopes([...scopes, ...scopes]), once);
      t.deepEqual(normalizeScopes(once), once);
      t.true(scopesCover(once, scopes));
    }),
  );
});

test('a scope set covers what it includes and nothing more', (t) => {
  t.true(scopesCover(['repository:a:pull,push'], ['repository:a:pull']));
  t.false(scopesCover(['repository:a:pull'], ['repository:a:push']));
  t.false(scopesCover(['repository:a:pull'], ['repository:b:pull']));
  t.true(scopesCover(['repository:a:pull'], []));
});
