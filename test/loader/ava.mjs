// ava's `test` for a test file that shares its test process with others (groups.mjs): the title
// of each test it declares begins with the file's name (`limiter › `, from this module's `prefix`
// query), as ava's own prefix gives it when the file runs alone. The run's tree imports it in
// place of ava (tree.mjs); everything else is ava's.
import test from 'ava';

export * from 'ava';

const prefix = new URL(import.meta.url).searchParams.get('prefix') ?? '';

/** `args` of a declaration with the prefix put where ava takes the title from. */
function withPrefix(args) {
  const [first, ...rest] = args;
  const titleGiven = typeof first === 'string';
  const implementation = titleGiven ? rest[0] : first;
  if (typeof implementation?.title === 'function') {
    // A macro titles the test itself, from the title given (if any) and its arguments.
    const macro = {
      exec: implementation.exec,
      title: (...titleArgs) => prefix + implementation.title(...titleArgs),
    };
    return titleGiven ? [first, macro, ...rest.slice(1)] : [macro, ...rest];
  }
  return titleGiven ? [prefix + first, ...rest] : args;
}

/** `fn`, and each function reached from it (`test.serial.skip`), with titles prefixed. */
function titled(fn) {
  return new Proxy(fn, {
    apply: (target, self, args) => Reflect.apply(target, self, withPrefix(args)),
    get(target, key) {
      const value = Reflect.get(target, key);
      // `test.macro` makes a macro, declares nothing.
      return typeof value === 'function' && key !== 'macro' ? titled(value) : value;
    },
  });
}

export default titled(test);
