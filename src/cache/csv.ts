import { CacheOptionsError } from './errors.ts';

/**
 * Split one CSV line into fields as BuildKit's option parser does (`tonistiigi/go-csvvalue`,
 * which follows Go's `encoding/csv`): `,` separates, a field starting with `"` is quoted and
 * `""` inside it is a quote, a quote inside an unquoted field is an error, one trailing newline
 * is dropped, spaces are kept. Throws {@link CacheOptionsError} naming the column.
 */
export function parseCsvFields(line: string): string[] {
  let rest = line.endsWith('\r\n')
    ? line.slice(0, -2)
    : line.endsWith('\n')
      ? line.slice(0, -1)
      : line;
  if (rest === '') throw new CacheOptionsError('empty cache option string');
  const fields: string[] = [];
  let column = 1;
  const fail = (at: number, problem: string): never => {
    throw new CacheOptionsError(`invalid CSV in cache options at column ${at}: ${problem}`);
  };
  for (;;) {
    if (!rest.startsWith('"')) {
      const comma = rest.indexOf(',');
      const field = comma < 0 ? rest : rest.slice(0, comma);
      const quote = field.indexOf('"');
      if (quote >= 0) fail(column + quote, 'bare " in a non-quoted field (quote the whole field)');
      fields.push(field);
      if (comma < 0) return fields;
      rest = rest.slice(comma + 1);
      column += comma + 1;
      continue;
    }
    // Quoted field: runs to the closing quote; `""` stands for one quote.
    const start = column;
    let field = '';
    rest = rest.slice(1);
    column += 1;
    for (;;) {
      const quote = rest.indexOf('"');
      if (quote < 0) fail(start, 'quoted field has no closing "');
      field += rest.slice(0, quote);
      rest = rest.slice(quote + 1);
      column += quote + 1;
      if (rest.startsWith('"')) {
        field += '"';
        rest = rest.slice(1);
        column += 1;
      } else if (rest.startsWith(',')) {
        fields.push(field);
        rest = rest.slice(1);
        column += 1;
        break;
      } else if (rest === '') {
        fields.push(field);
        return fields;
      } else {
        fail(column - 1, 'extraneous " in a quoted field (write "" for a quote)');
      }
    }
  }
}

/**
 * Join fields into one CSV line that {@link parseCsvFields} splits back into the same fields,
 * quoting only the fields that need it.
 */
export function formatCsvFields(fields: readonly string[]): string {
  return fields
    .map((field) =>
      /[",\r\n]/.test(field) || (field === '' && fields.length === 1)
        ? `"${field.replaceAll('"', '""')}"`
        : field,
    )
    .join(',');
}
