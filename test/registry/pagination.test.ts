import test from 'ava';
import { RegistryError } from '../../src/registry/errors.ts';
import { nextLink } from '../../src/registry/pagination.ts';

const base = new URL('https://r.example/v2/a/tags/list?n=2');

test('the next Link is resolved against the request URL', (t) => {
  t.is(
    nextLink(['</v2/a/tags/list?n=2&last=b>; rel="next"'], base)?.href,
    'https://r.example/v2/a/tags/list?n=2&last=b',
  );
  t.is(
    nextLink(['<list?last=b>; rel=next'], base)?.href,
    'https://r.example/v2/a/tags/list?last=b',
  );
  t.is(
    nextLink(['<https://cdn.example/p?x=1>;rel="next"'], base)?.href,
    'https://cdn.example/p?x=1',
  );
});

test('only rel=next counts, among several links and header lines', (t) => {
  t.is(nextLink(['</first>; rel="first", </v2/x?last=c>; rel="next"'], base)?.pathname, '/v2/x');
  t.is(nextLink(['</prev>; rel="prev"', '</n>; rel="prev next"'], base)?.pathname, '/n');
  t.is(nextLink(['</p>; rel="prev"'], base), undefined);
  t.is(nextLink(['</p>; rel="nextpage"'], base), undefined);
  t.is(nextLink([], base), undefined);
});

test('a rel=next Link that cannot be read fails with LINK_INVALID instead of ending the list', (t) => {
  for (const value of [
    '<http://[oops/v2/a/tags/list?last=b>; rel="next"',
    '/v2/a/tags/list?last=b; rel="next"',
    '<http://r.example/v2/a/tags/list?last=b; rel=next',
  ]) {
    const error = t.throws(() => nextLink([value], base), { instanceOf: RegistryError }, value);
    t.is(error?.code, 'LINK_INVALID', value);
  }
  t.is(nextLink(['</p?rel=next>; rel="prev"'], base), undefined);
});
