/**
 * Query parameters that are safe to show. Every other value is replaced, because registries and
 * storage back ends put signatures and tokens in query strings (`X-Amz-Signature`, `sig`, `token`,
 * `_state`, CDN tickets, ...).
 */
const SAFE_PARAMS = new Set([
  'n',
  'last',
  'digest',
  'mount',
  'from',
  'tag',
  'artifactType',
  'service',
  'scope',
  'ns',
]);

/** `url` without user info and with every query value outside a short safe list replaced by `REDACTED`. */
export function redactUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(invalid URL)';
  }
  parsed.username = '';
  parsed.password = '';
  parsed.hash = '';
  if (parsed.search === '') return parsed.href;
  const pairs = parsed.search
    .slice(1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      if (eq < 0 || SAFE_PARAMS.has(safeDecode(name))) return pair;
      return `${name}=REDACTED`;
    });
  return `${parsed.origin}${parsed.pathname}?${pairs.join('&')}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
