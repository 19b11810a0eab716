import type { TestFn } from 'ava';

// ava.mjs as the tree gives it to a test file sharing a process: declared with it, a test's title
// begins with the prefix.
const url = new URL('ava.mjs', import.meta.url);
url.searchParams.set('prefix', 'member › ');
const { default: titled } = (await import(url.href)) as { default: TestFn };

titled('a test declared with it has the prefix before its title', (t) => {
  t.is(t.title, 'member › a test declared with it has the prefix before its title');
});

titled.serial('so has one declared through the chain', (t) => {
  t.is(t.title, 'member › so has one declared through the chain');
});

const titledByMacro = titled.macro({
  exec: (t, expected: string) => t.is(t.title, expected),
  title: (given = '') => `a macro's title ${given}`.trim(),
});
titled('given', titledByMacro, "member › a macro's title given");

titled(
  titled.macro({
    exec: (t) => t.is(t.title, "member › a macro's own title"),
    title: () => "a macro's own title",
  }),
);
