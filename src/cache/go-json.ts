/**
 * Small pieces of Go's `encoding/json` behaviour that the cache config codec must reproduce to
 * read what BuildKit reads and write what BuildKit writes, byte for byte.
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: Go escapes control characters, so must we.
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;
const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/**
 * `s` as a JSON string the way Go's `json.Marshal` writes it: HTML-safe (`<`, `>`, `&` as
 * `\u003c`...), U+2028/U+2029 escaped, other control characters as `\u00XX` (lower-case hex)
 * except the short escapes Go 1.22+ uses, and unpaired surrogates (invalid UTF-8 to Go) as `\ufffd`.
 */
export function goJsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let escaped: string | undefined;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      escaped = '\\ufffd';
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      escaped = '\\ufffd';
    } else if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) {
      escaped = SHORT_ESCAPES[s.charAt(i)] ?? `\\u00${c.toString(16).padStart(2, '0')}`;
    } else if (c === 0x2028 || c === 0x2029) {
      escaped = `\\u${c.toString(16)}`;
    }
    if (escaped !== undefined) {
      out += s.slice(start, i) + escaped;
      start = i + 1;
    }
  }
  return `${out}${s.slice(start)}"`;
}

/**
 * Fold an object key the way Go matches JSON keys to struct fields (`foldName`): ASCII letters
 * case-insensitively, plus the two non-ASCII runes whose simple fold reaches an ASCII letter
 * (U+212A KELVIN SIGN is `k`, U+017F LONG S is `s`).
 */
export function foldGoJsonKey(key: string): string {
  return /^\p{ASCII}*$/u.test(key) ? key.toUpperCase() : Array.from(key, foldRune).join('');
}

function foldRune(ch: string): string {
  if (ch.length === 1 && ch.charCodeAt(0) < 0x80) return ch.toUpperCase();
  if (ch === '\u212a') return 'K';
  if (ch === '\u017f') return 'S';
  return ch;
}

/**
 * Compare strings the way Go compares them: by their UTF-8 bytes, which is code-point order.
 * JavaScript's `<` compares UTF-16 units and would put U+E000..U+FFFF after supplementary
 * characters.
 */
export function compareGoStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Maps UTF-16 units so that surrogates (code points above U+FFFF) sort after U+E000..U+FFFF. */
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}
